"""Official weight files, their download and cache, and weight loading.

* ``OFFICIAL_WEIGHTS`` is the one table of the official Keras weight files
  (file name, path under the base URL, md5).
* :func:`fetch_file` downloads through ``keras.utils.get_file`` with the
  md5 verified, into a private temporary folder first, and moves the file
  into the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``)
  only once it is complete and verified, so the cache never holds a
  partial or wrong file.
* :func:`load_weights` applies ``weights=`` of a constructor: ``None``,
  ``"imagenet"`` or a path (legacy ``.h5``, ``.weights.h5``, ``.keras``).
  Legacy files are matched by layer name (``/`` normalised to ``_``) and
  otherwise by order of weighted layers, with shape checks; nothing is
  assigned unless every array fits.

Environment:
    KERAS_ZOO_PLUS_WEIGHTS_URL: base URL of a mirror that has the official
        files under the same relative paths (``vgg16/vgg16_weights_...h5``).
    KERAS_ZOO_PLUS_OFFLINE: when ``1``/``true``, never touch the network;
        a missing file raises an error saying where to place it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile

import keras
import numpy as np

DEFAULT_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
BASE_URL_ENV = "KERAS_ZOO_PLUS_WEIGHTS_URL"
OFFLINE_ENV = "KERAS_ZOO_PLUS_OFFLINE"
CACHE_SUBDIR = "models"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One official weight file.

    Attributes:
        fname: file name in the cache (the official name).
        path: path relative to the base URL.
        md5: md5 hex digest, or None where Keras publishes none (MobileNet).
    """

    fname: str
    path: str
    md5: str | None

    @property
    def url(self):
        return base_url() + self.path


def _table():
    t = {}

    def add(key, subdir, fname, md5):
        t[key] = WeightFile(fname, f"{subdir}/{fname}", md5)

    tf = "_weights_tf_dim_ordering_tf_kernels"
    add("vgg16", "vgg16", f"vgg16{tf}.h5", "64373286793e3c8b2b4e3219cbf3544b")
    add("vgg16_notop", "vgg16", f"vgg16{tf}_notop.h5", "6d6bbae143d832006294945121d1f1fc")
    add("vgg19", "vgg19", f"vgg19{tf}.h5", "cbe5617147190e668d6c5d5026f83318")
    add("vgg19_notop", "vgg19", f"vgg19{tf}_notop.h5", "253f8cb515780f3b799900260a226db6")
    for name, top, notop in (
        ("resnet50", "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
        ("resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
        ("resnet152", "100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    ):
        add(name, "resnet", f"{name}{tf}.h5", top)
        add(f"{name}_notop", "resnet", f"{name}{tf}_notop.h5", notop)
    add("xception", "xception", f"xception{tf}.h5", "0a58e3b7378bc2990ea3b43d5981f1f6")
    add("xception_notop", "xception", f"xception{tf}_notop.h5", "b0042744bf5b25fce3cb969f33bebb97")
    add("inception_v3", "inception_v3", f"inception_v3{tf}.h5", "9a0d58056eeedaa3f26cb7ebd46da564")
    add(
        "inception_v3_notop",
        "inception_v3",
        f"inception_v3{tf}_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    )
    add(
        "inception_resnet_v2",
        "inception_resnet_v2",
        f"inception_resnet_v2{tf}.h5",
        "e693bd0210a403b3192acc6073ad2e96",
    )
    add(
        "inception_resnet_v2_notop",
        "inception_resnet_v2",
        f"inception_resnet_v2{tf}_notop.h5",
        "d19885ff4a710c122648d3b5c3b684e4",
    )
    for name, top, notop in (
        ("densenet121", "9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738"),
        ("densenet169", "d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b"),
        ("densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1"),
    ):
        add(name, "densenet", f"{name}{tf}.h5", top)
        add(f"{name}_notop", "densenet", f"{name}{tf}_notop.h5", notop)
    add("nasnet_mobile", "nasnet", "NASNet-mobile.h5", "020fb642bf7360b370c678b08e0adf61")
    add("nasnet_mobile_notop", "nasnet", "NASNet-mobile-no-top.h5", "1ed92395b5b598bdda52abe5c0dbfd63")
    add("nasnet_large", "nasnet", "NASNet-large.h5", "11577c9a518f0070763c2b964a382f17")
    add("nasnet_large_notop", "nasnet", "NASNet-large-no-top.h5", "d81d89dc07e6e56530c4e77faddd61b5")
    # MobileNet v1: one file per (alpha, rows); Keras publishes no hashes.
    for alpha_text in ("1_0", "7_5", "5_0", "2_5"):
        for rows in (128, 160, 192, 224):
            key = f"mobilenet_{alpha_text}_{rows}"
            add(key, "mobilenet", f"mobilenet_{alpha_text}_{rows}_tf.h5", None)
            add(f"{key}_notop", "mobilenet", f"mobilenet_{alpha_text}_{rows}_tf_no_top.h5", None)
    return t


OFFICIAL_WEIGHTS: dict[str, WeightFile] = _table()


def official_weight_file(key, include_top):
    """The :class:`WeightFile` for a model key (``"resnet50"``) and top flag."""
    full = key if include_top else f"{key}_notop"
    try:
        return OFFICIAL_WEIGHTS[full]
    except KeyError:
        raise ValueError(
            f"No official imagenet weights for {full!r}. Known files: "
            f"{', '.join(sorted(OFFICIAL_WEIGHTS))}"
        ) from None


def base_url():
    """The base URL of the weight files (mirror override honoured)."""
    url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def offline():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir():
    """The folder files are cached in (Keras' rules: ``$KERAS_HOME`` or
    ``~/.keras``, falling back to ``/tmp/.keras`` when not writable)."""
    base = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    for root in (os.path.expanduser(base), os.path.join(tempfile.gettempdir(), ".keras")):
        path = os.path.join(root, CACHE_SUBDIR)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise ValueError(f"No writable cache folder: tried {base} and the temporary folder.")


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _place_hint(fname, url, md5, target):
    hash_text = f"md5 {md5}" if md5 else "no published hash"
    return (
        f"Download {url} ({hash_text}) by other means and place it at {target}, "
        f"or set {BASE_URL_ENV} to a mirror holding the official files."
    )


def fetch_file(fname, url, md5, *, what="weights file"):
    """Return the cached path of ``fname``, downloading ``url`` if needed.

    The download goes through ``keras.utils.get_file`` with ``file_hash``
    into a temporary folder beside the cache, and is moved into place with
    an atomic rename only when complete and verified. A cached file whose
    md5 does not match is not trusted: it is downloaded again (or, offline,
    reported).

    Raises:
        ValueError: offline with no valid cached file, or when the download
            fails or the hash does not match; the message gives the URL, the
            expected hash and the exact cache path to place the file at.
    """
    folder = cache_dir()
    target = os.path.join(folder, fname)
    if os.path.exists(target) and (md5 is None or md5sum(target) == md5):
        return target
    stale = os.path.exists(target)
    if offline():
        state = "holds a file whose md5 does not match" if stale else "is missing"
        raise ValueError(
            f"The {what} {fname} {state} in the cache and "
            f"{OFFLINE_ENV} is set, so it is not downloaded. "
            + _place_hint(fname, url, md5, target)
        )
    tmp = tempfile.mkdtemp(prefix=f".{fname}.", dir=folder)
    try:
        try:
            got = keras.utils.get_file(
                fname, url, cache_dir=tmp, cache_subdir="", file_hash=md5
            )
        except Exception as exc:  # get_file raises bare Exception on URL errors
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "corrupted" in detail or "hash" in detail:
                reason = f"its md5 does not match {md5}"
            else:
                reason = f"the download failed ({detail})"
            raise ValueError(
                f"Could not get the {what} {fname} from {url}: {reason}. "
                "Nothing was written to the cache. "
                + _place_hint(fname, url, md5, target)
            ) from None
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_official(key, include_top):
    """Download (or find in the cache) an official weight file."""
    wf = official_weight_file(key, include_top)
    return fetch_file(wf.fname, wf.url, wf.md5, what="weights file")


# --------------------------------------------------------------------------
# Loading


def _norm(name):
    return name.replace("/", "_")


def weighted_layers(model):
    """Layers of ``model`` that own weights, in ``model.layers`` order."""
    return [layer for layer in model.layers if layer.weights]


def _decode(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_legacy_h5(path):
    """Read a legacy (Keras 1/2, tf_keras) HDF5 weights or model file.

    Returns:
        A list of ``(layer_name, [arrays])`` for layers with weights, in file
        order.
    """
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise ValueError(
                f"{path} is not a legacy Keras HDF5 weights file "
                "(no 'layer_names' attribute)."
            )
        out = []
        for raw in group.attrs["layer_names"]:
            lname = _decode(raw)
            g = group[lname]
            names = [_decode(n) for n in g.attrs.get("weight_names", [])]
            if names:
                out.append((lname, [np.asarray(g[n]) for n in names]))
        return out


def is_legacy_h5(path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            return "layer_names" in group.attrs
    except OSError:
        return False


def assign_legacy(model, entries, *, source="weights file"):
    """Assign ``entries`` from :func:`read_legacy_h5` to ``model``.

    Match by normalised layer name when every file layer has a counterpart,
    otherwise by order of weighted layers. Every shape is checked before
    anything is assigned.

    Raises:
        ValueError: listing the mismatches (first mismatching layer first).
    """
    layers = weighted_layers(model)
    by_name = {_norm(layer.name): layer for layer in layers}
    file_names = [_norm(n) for n, _ in entries]
    if all(n in by_name for n in file_names) and len(set(file_names)) == len(file_names):
        pairs = [(by_name[_norm(n)], n, arrays) for n, arrays in entries]
        missing = [layer.name for layer in layers if _norm(layer.name) not in set(file_names)]
        mode = "name"
    else:
        if len(entries) != len(layers):
            raise ValueError(
                f"The {source} holds weights for {len(entries)} layers but the model "
                f"{model.name!r} has {len(layers)} layers with weights, and their names "
                "do not match either: it was saved from another architecture or with "
                "a different include_top. First file layers: "
                f"{[n for n, _ in entries[:3]]}; first model layers: "
                f"{[layer.name for layer in layers[:3]]}."
            )
        pairs = [(layer, n, arrays) for layer, (n, arrays) in zip(layers, entries)]
        missing = []
        mode = "order"
    if missing:
        raise ValueError(
            f"The {source} has no weights for {len(missing)} layers of model "
            f"{model.name!r} (first: {missing[0]!r}); was it saved with a different "
            "include_top?"
        )
    problems = []
    for layer, fname, arrays in pairs:
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            problems.append(f"layer {layer.name!r} (file: {fname!r}) expects {want}, file has {got}")
    if problems:
        raise ValueError(
            f"Cannot load the {source} into model {model.name!r} (matched by {mode}): "
            f"{len(problems)} shape mismatch(es); first: {problems[0]}"
            + ("" if len(problems) == 1 else f"; others: {'; '.join(problems[1:4])}")
        )
    for layer, _, arrays in pairs:
        layer.set_weights(arrays)
    return mode


def _assign_by_order(model, source_model, source):
    src = weighted_layers(source_model)
    entries = [(layer.name, [np.asarray(w) for w in layer.get_weights()]) for layer in src]
    return assign_legacy(model, entries, source=source)


def load_weights(model, weights, *, key=None, include_top=True):
    """Apply a constructor's ``weights`` argument to a freshly built model.

    Args:
        model: the model.
        weights: ``None``, ``"imagenet"`` or a path.
        key: the model's key in :data:`OFFICIAL_WEIGHTS` (``"resnet50"``).
        include_top: selects the top or no-top official file.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        path = fetch_official(key, include_top)
        assign_legacy(model, read_legacy_h5(path), source=f"official weights file {path}")
        return model
    path = os.fspath(weights)
    if path.endswith(".keras"):
        src = keras.saving.load_model(path, compile=False)
        _assign_by_order(model, src, f"model file {path}")
    elif path.endswith(".weights.h5"):
        try:
            model.load_weights(path)
        except ValueError as exc:
            raise ValueError(
                f"Cannot load the weights file {path} into model {model.name!r}: {exc}"
            ) from None
    elif is_legacy_h5(path):
        assign_legacy(model, read_legacy_h5(path), source=f"weights file {path}")
    else:
        raise ValueError(
            f"`weights` file {path!r} is not a legacy Keras .h5 file, a .weights.h5 "
            "file or a .keras file."
        )
    return model
