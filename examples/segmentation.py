"""A small segmentation model on a zoo feature pyramid (FPN-style decoder).

``keras_zoo_plus.feature_extractor`` gives the backbone's levels P2-P5
(strides 4-32) as a dict; the decoder projects each to a common width,
adds them top-down (upsampling the coarser level), predicts a mask at
stride 4 and upsamples it to the input size. The backbone takes any
number of input channels: here 4 (RGB + depth, say), with pretrained
weights adapted from RGB (the first convolution's kernel repeated and
scaled; see the README).

Run it (random data, a few steps; prints the loss per step):

    KERAS_BACKEND=jax python examples/segmentation.py

tests/test_examples.py runs ``train`` on every backend at a tiny size and
checks that the loss decreases.
"""

import keras
import numpy as np

import keras_zoo_plus as kzp


def make_data(n, size, channels, seed=0):
    """Images of noise with a brighter rectangle; the mask is the rectangle."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, size, size, channels)).astype("float32")
    y = np.zeros((n, size, size, 1), "float32")
    for i in range(n):
        r0, c0 = rng.integers(0, size // 2, 2)
        h, w = rng.integers(size // 4, size // 2 + 1, 2)
        x[i, r0:r0 + h, c0:c0 + w, :] += 1.5
        y[i, r0:r0 + h, c0:c0 + w, 0] = 1.0
    return x, y


def build_segmenter(model_name="mobilenet", weights="imagenet", size=128, channels=4,
                    width=32, **model_kwargs):
    """Backbone levels P2-P5 + an FPN-style decoder: a 1-channel logit mask
    at the input size. Returns ``(segmenter, backbone)``."""
    backbone = kzp.create_model(
        model_name, features_only=True, levels=["P2", "P3", "P4", "P5"], weights=weights,
        input_shape=(size, size, channels), data_format="channels_last", **model_kwargs)
    df = "channels_last"
    features = backbone.output
    x = keras.layers.Conv2D(width, 1, data_format=df, name="lateral_P5")(features["P5"])
    for level in ("P4", "P3", "P2"):
        lateral = keras.layers.Conv2D(width, 1, data_format=df,
                                      name=f"lateral_{level}")(features[level])
        # Upsample the coarser map to the lateral's size (static sizes).
        scale = (lateral.shape[1] // x.shape[1], lateral.shape[2] // x.shape[2])
        x = keras.layers.UpSampling2D(scale, data_format=df, name=f"up_{level}")(x)
        x = keras.layers.Add(name=f"merge_{level}")([x, lateral])
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", data_format=df,
                                name=f"smooth_{level}")(x)
    x = keras.layers.Conv2D(1, 1, data_format=df, name="mask_logits")(x)
    x = keras.layers.UpSampling2D(4, data_format=df, interpolation="bilinear",
                                  name="to_input_size")(x)
    return keras.Model(backbone.input, x, name=f"{model_name}_fpn_segmenter"), backbone


def train(model_name="mobilenet", weights="imagenet", size=128, channels=4, steps=20,
          batch=8, learning_rate=3e-3, seed=0, **model_kwargs):
    """Train the decoder (the backbone frozen, its BatchNormalization in
    inference mode) on one generated batch for ``steps`` steps. Returns the
    loss of each step (on that batch, before the step's update)."""
    model, backbone = build_segmenter(model_name, weights, size, channels, **model_kwargs)
    kzp.freeze(backbone)
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = make_data(batch, size, channels, seed)
    return [float(np.asarray(model.train_on_batch(x, y))) for _ in range(steps)]


if __name__ == "__main__":
    for step, loss in enumerate(train()):
        print(f"step {step:2d}  loss {loss:.4f}")
