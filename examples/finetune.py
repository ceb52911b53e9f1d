"""Two-phase fine-tuning with keras-zoo-plus (the README example).

Phase 1 trains a new head on a frozen base; phase 2 also trains the last
stage of the base at a low learning rate, BatchNormalization kept frozen
(in inference mode). tests/test_freeze.py runs this very code on synthetic
data.
"""

import keras

import keras_zoo_plus as kzp


def fine_tune(x_train, y_train, classes, model_name="resnet50", weights="imagenet",
              input_shape=(224, 224, 3), epochs=(5, 5)):
    base = kzp.create_model(model_name, weights=weights, include_top=False,
                            pooling="avg", input_shape=input_shape)
    model = keras.Sequential([
        base,
        keras.layers.Dropout(0.2, name="head_dropout"),
        keras.layers.Dense(classes, activation="softmax", name="head"),
    ])

    # Phase 1: only the new head trains.
    kzp.freeze(base)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs[0], verbose=0)

    # Phase 2: unfreeze the last stage (conv5 of ResNet50, block5 of VGG16);
    # its BatchNormalization layers stay frozen. Recompile: Keras reads
    # trainability when it builds the train step.
    kzp.unfreeze(model, stages=1)
    model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")
    print(kzp.trainable_summary(model))
    model.fit(x_train, y_train, epochs=epochs[1], verbose=0)
    return model
