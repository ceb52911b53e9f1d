"""Official weight files, their download and cache, and weight loading.

* The official Keras weight files (file name, path under the base URL,
  hash: md5, or sha256 where keras.applications publishes one) are listed
  in the model table (:mod:`keras_zoo_plus.model_table`), in each model's
  entry.
* :func:`fetch_file` downloads through ``keras.utils.get_file`` with the
  hash verified (the algorithm follows from its length, as in Keras:
  :func:`hash_algorithm`), into a private temporary folder first, and
  moves the file into the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``)
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
    KERAS_ZOO_PLUS_TIMEOUT: seconds a download may wait on the network for
        any single connect or read (default 60). ``keras.utils.get_file``
        takes no timeout, so :func:`fetch_file` sets the process-wide
        ``socket`` default timeout for the duration of the download only,
        under a lock, and restores it afterwards.

Cache integrity: a file appears under its final name only once complete
and verified (temporary folder + atomic ``os.replace``), so concurrent
processes downloading the same file each end with the same good file and
an interrupted download leaves nothing behind but its own temporary
folder, which is removed (a process killed outright leaves it; the next fetch
of that file removes such folders once they are a day old).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import warnings

import keras
import numpy as np

from keras_zoo_plus import h5_format, model_table
from keras_zoo_plus.model_table import BASE_URL_ENV, DEFAULT_BASE_URL, WeightFile, base_url

__all__ = [
    "Adaptation",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "WeightFile",
    "adapt_kernel",
    "base_url",
    "fetch_file",
    "fetch_official",
    "file_digest",
    "hash_algorithm",
    "load_weights",
    "official_weight_files",
]

OFFLINE_ENV = "KERAS_ZOO_PLUS_OFFLINE"
TIMEOUT_ENV = "KERAS_ZOO_PLUS_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
CACHE_SUBDIR = "models"


def official_weight_files():
    """Every official :class:`WeightFile` of the model table, by file name."""
    return {wf.fname: wf for entry in model_table.entries() for wf in entry.weights}


def offline():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def timeout():
    """Download timeout in seconds (``KERAS_ZOO_PLUS_TIMEOUT``, default 60).

    Raises:
        ValueError: when the variable is set to anything but a positive number.
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(
            f"{TIMEOUT_ENV} must be a positive number of seconds. Received: {TIMEOUT_ENV}={raw!r}"
        )
    return value


# Serialises the window in which the socket default timeout is changed.
_DOWNLOAD_LOCK = threading.Lock()


def _get_file_with_timeout(fname, url, file_hash, folder, seconds):
    """``keras.utils.get_file`` into ``folder`` with a network timeout.

    ``get_file`` (``urllib.request.urlretrieve``) has no timeout argument
    and its sockets use ``socket.getdefaulttimeout()``; the default is set
    for the duration of this download only and always restored, so no
    global state outlives the call. The lock keeps two threads of one
    process from restoring each other's value.
    """
    with _DOWNLOAD_LOCK:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds)
        try:
            return keras.utils.get_file(
                fname, url, cache_dir=folder, cache_subdir="", file_hash=file_hash,
                hash_algorithm=hash_algorithm(file_hash) if file_hash else "auto",
            )
        finally:
            socket.setdefaulttimeout(previous)


def _failure_reason(exc, file_hash, seconds):
    """A short, human reason for a failed download.

    ``get_file`` re-raises urllib errors as a bare ``Exception``; the
    original error is found on the ``__context__`` chain.
    """
    import urllib.error

    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for err in chain:
        if isinstance(err, urllib.error.HTTPError):
            return f"the server answered HTTP {err.code} ({err.reason})"
        if isinstance(err, urllib.error.ContentTooShortError):
            return f"the connection closed before the end of the file ({err})"
    for err in chain:
        reason = getattr(err, "reason", err)
        if isinstance(err, (TimeoutError, socket.timeout)) or isinstance(
            reason, (TimeoutError, socket.timeout)
        ) or "timed out" in str(err).lower():
            return f"the server sent nothing for {seconds:g} s ({TIMEOUT_ENV} sets the timeout)"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if file_hash and ("corrupted" in detail or "hash does not match" in detail):
        return f"its {hash_algorithm(file_hash)} does not match the expected {file_hash}"
    for err in chain:
        if isinstance(err, urllib.error.URLError):
            return f"the server cannot be reached ({err.reason})"
    return f"the download failed ({type(exc).__name__}: {detail})"


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


def hash_algorithm(file_hash):
    """The algorithm of a published file hash, by Keras' rule
    (``keras.utils.get_file``): 64 hex digits are a sha256, 32 an md5.

    Raises:
        ValueError: for anything else, naming the value.

    Example:
        >>> hash_algorithm("c2c37ea517e94d9795004a39431a14cb")
        'md5'
    """
    return WeightFile.algorithm_of(file_hash)


def file_digest(path, algorithm, chunk=1 << 20):
    """The hex digest of the file at ``path`` (``algorithm``: ``"md5"`` or
    ``"sha256"``)."""
    if algorithm not in ("md5", "sha256"):
        raise ValueError(f"`algorithm` must be 'md5' or 'sha256'. Received: algorithm={algorithm!r}")
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def md5sum(path, chunk=1 << 20):
    """The md5 hex digest of the file at ``path``."""
    return file_digest(path, "md5", chunk)


def _matches(path, file_hash):
    """Whether the file at ``path`` has the digest ``file_hash`` (in the
    algorithm its length says)."""
    return file_digest(path, hash_algorithm(file_hash)) == file_hash.lower()


def _place_hint(fname, url, file_hash, target):
    hash_text = f"{hash_algorithm(file_hash)} {file_hash}" if file_hash else "no published hash"
    return (
        f"Download {url} ({hash_text}) by other means and place it at {target}, "
        f"or set {BASE_URL_ENV} to a mirror holding the official files."
    )


ABANDONED_AFTER_S = 24 * 3600


def _remove_abandoned_parts(folder, fname):
    """Remove temporary download folders of ``fname`` left by processes
    killed outright, once they are a day old (a live download never is)."""
    import time

    prefix = f".{fname}."
    now = time.time()
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if entry.startswith(prefix) and entry.endswith(".part") and os.path.isdir(path):
            try:
                if now - os.path.getmtime(path) > ABANDONED_AFTER_S:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def fetch_file(fname, url, file_hash, *, what="weights file"):
    """Return the cached path of ``fname``, downloading ``url`` if needed.

    The download goes through ``keras.utils.get_file`` with ``file_hash``
    into a private temporary folder inside the cache folder, with the
    ``KERAS_ZOO_PLUS_TIMEOUT`` network timeout, and is moved into place
    with an atomic ``os.replace`` only when complete and verified. A cached
    file whose hash does not match is not trusted: it is downloaded again
    (or, offline, reported). Several processes may fetch the same file at
    once: each downloads to its own folder and the last rename wins with
    an identical, verified file.

    Args:
        fname: file name in the cache.
        url: where to download it from.
        file_hash: expected hex digest, an md5 (32 hex digits) or a sha256
            (64), as keras.applications publishes it; None to skip
            verification.
        what: how error messages call the file.

    Returns:
        The path of the verified file in the cache.

    Raises:
        ValueError: for a ``file_hash`` that is neither an md5 nor a
            sha256; offline with no valid cached file, or when the download
            fails (HTTP error, unreachable host, connection dropped,
            timeout) or the hash does not match; the message gives the URL,
            the algorithm and expected hash and the exact cache path to
            place the file at.

    Example:
        >>> wf = model_table.get("vgg16").weight_file(include_top=False)
        >>> path = fetch_file(wf.fname, wf.url, wf.file_hash)  # doctest: +SKIP
    """
    algorithm = None if file_hash is None else hash_algorithm(file_hash)
    folder = cache_dir()
    target = os.path.join(folder, fname)
    if os.path.exists(target) and (file_hash is None or _matches(target, file_hash)):
        return target
    stale = os.path.exists(target)
    if offline():
        state = f"holds a file whose {algorithm} does not match" if stale else "is missing"
        raise ValueError(
            f"The {what} {fname} {state} in the cache and "
            f"{OFFLINE_ENV} is set, so it is not downloaded. "
            + _place_hint(fname, url, file_hash, target)
        )
    seconds = timeout()
    _remove_abandoned_parts(folder, fname)
    tmp = tempfile.mkdtemp(prefix=f".{fname}.", suffix=".part", dir=folder)
    try:
        try:
            got = _get_file_with_timeout(
                fname, url, None if file_hash is None else file_hash.lower(), tmp, seconds
            )
            # Belt and braces: get_file verifies too, but the file must
            # never reach the cache unverified.
            if file_hash is not None and not _matches(got, file_hash):
                raise ValueError("file hash does not match")
        except Exception as exc:  # get_file raises bare Exception on URL errors
            reason = _failure_reason(exc, file_hash, seconds)
            raise ValueError(
                f"Could not get the {what} {fname} from {url}: {reason}. "
                "Nothing was written to the cache. "
                + _place_hint(fname, url, file_hash, target)
            ) from None
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_official(wf):
    """Download (or find in the cache) the official :class:`WeightFile` ``wf``."""
    return fetch_file(wf.fname, wf.url, wf.file_hash, what="weights file")


# --------------------------------------------------------------------------
# Loading


def _norm(name):
    return name.replace("/", "_")


def weighted_layers(model):
    """Layers of ``model`` that own weights, in ``model.layers`` order."""
    return [layer for layer in model.layers if layer.weights]


def read_legacy_h5(path):
    """Read a legacy (Keras 1/2, tf_keras) HDF5 weights or model file.

    Returns:
        A list of ``(layer_name, [arrays])`` for layers with weights, in file
        order.
    """
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        layer_names = h5_format.list_attribute(group, "layer_names")
        if layer_names is None:
            raise ValueError(
                f"{path} is not a legacy Keras HDF5 weights file "
                "(no 'layer_names' attribute)."
            )
        out = []
        for lname in layer_names:
            g = group[lname]
            names = h5_format.list_attribute(g, "weight_names") or []
            if names:
                out.append((lname, [np.asarray(g[n]) for n in names]))
        return out


def is_legacy_h5(path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            return h5_format.list_attribute(group, "layer_names") is not None
    except OSError:
        return False


def _shapes(arrays):
    return [tuple(int(d) for d in a.shape) for a in arrays]


def _first_order_mismatch(layers, entries):
    """Describe the first position where file and model differ by order."""
    for i, (layer, (fname, arrays)) in enumerate(zip(layers, entries)):
        want, got = _shapes(layer.weights), _shapes(arrays)
        if want != got:
            return (
                f"weighted layer #{i}: model layer {layer.name!r} expects {want}, "
                f"file layer {fname!r} has {got}"
            )
    n = min(len(layers), len(entries))
    if len(layers) > n:
        layer = layers[n]
        return (
            f"weighted layer #{n}: model layer {layer.name!r} expects "
            f"{_shapes(layer.weights)}, the file has no more layers"
        )
    fname, arrays = entries[n]
    return (
        f"weighted layer #{n}: file layer {fname!r} has {_shapes(arrays)}, "
        "the model has no more layers"
    )


@dataclasses.dataclass(frozen=True)
class Adaptation:
    """What a constructor tells the loader about a model that differs from
    the pretrained files in its input channels or its classes.

    Attributes:
        first_conv: the model's first convolution, whose kernel the files
            hold for 3 (RGB) input channels; when the model's has
            ``channels`` instead, the file's kernel is adapted
            (:func:`adapt_kernel`). None: the model takes 3 channels.
        channels: the model's input channels.
        head: the classifier layer of a model with ``classes != 1000``:
            when the file's arrays for it do not fit (the 1000 ImageNet
            classes), it is not loaded but initialised afresh with its own
            initializers, and a ``UserWarning`` names it. None: no such
            layer.

    Every other layer loads unchanged, and any other mismatch raises as
    without an adaptation.
    """

    first_conv: str | None = None
    channels: int = 3
    head: str | None = None


def adapt_kernel(kernel, channels):
    """An RGB convolution kernel ``(rows, cols, 3, filters)`` adapted to
    ``channels`` input channels.

    * 1: the sum over R, G and B (a grey image ``g`` gives what the RGB
      kernel gives on ``(g, g, g)``);
    * 2: the R and G slices, scaled by 3/2;
    * 3: unchanged;
    * more than 3: R, G, B repeated cyclically (R, G, B, R, ...), scaled by
      ``3 / channels`` (the response to equal inputs on every channel is
      kept).

    Returns:
        A new array of the kernel's dtype.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(
            f"Expected an RGB kernel (rows, cols, 3, filters). Received shape {kernel.shape}"
        )
    if channels == 3:
        return kernel.copy()
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True, dtype=kernel.dtype)
    if channels == 2:
        return (kernel[:, :, :2, :] * (3.0 / 2.0)).astype(kernel.dtype)
    return (kernel[:, :, np.arange(channels) % 3, :] * (3.0 / channels)).astype(kernel.dtype)


def adapt_statistics(array, channels):
    """Per-channel RGB input statistics (an adapted ``Normalization``'s
    mean or variance, shape ``(3,)``) for ``channels`` input channels, as
    :func:`adapt_kernel` maps the channels: 1, the mean over R, G and B;
    2, R and G; more than 3, R, G, B repeated cyclically."""
    array = np.asarray(array)
    if channels == 1:
        return array.mean(keepdims=True).astype(array.dtype)
    return array[np.arange(channels) % 3].astype(array.dtype)


def _adapt_pairs(pairs, adaptation):
    """``pairs`` of :func:`assign_legacy` with the first convolution's kernel
    (and the statistics of an input ``Normalization`` before it, as in
    EfficientNet) adapted and the head left out where ``adaptation`` says
    so.

    Returns:
        ``(pairs, fresh)``: ``fresh`` is ``(layer, file_shapes)`` for a head
        left out, or None.
    """
    if adaptation is None:
        return pairs, None
    out, fresh = [], None
    for layer, fname, arrays in pairs:
        want, got = _shapes(layer.weights), _shapes(arrays)
        if want != got and layer.name == adaptation.head:
            fresh = (layer, got)
            continue
        if (
            want != got
            and layer.name == adaptation.first_conv
            and arrays
            and len(got[0]) == 4
            and got[0][2] == 3
            and want[0] == (*got[0][:2], adaptation.channels, got[0][3])
        ):
            arrays = [adapt_kernel(arrays[0], adaptation.channels), *arrays[1:]]
        elif (
            want != got
            and isinstance(layer, keras.layers.Normalization)
            and adaptation.channels != 3
            and got[:2] == [(3,), (3,)]
            and want[:2] == [(adaptation.channels,)] * 2
        ):
            arrays = [adapt_statistics(arrays[0], adaptation.channels),
                      adapt_statistics(arrays[1], adaptation.channels), *arrays[2:]]
        out.append((layer, fname, arrays))
    return out, fresh


def _initialise_afresh(layer):
    """Give ``layer``'s kernel and bias their initializers' values (the
    layer may have been built with zeros, keras_zoo_plus.deferred)."""
    for attribute in ("kernel", "bias"):
        variable = getattr(layer, attribute, None)
        initializer = getattr(layer, f"{attribute}_initializer", None)
        if variable is None or initializer is None:
            continue
        initializer = keras.initializers.get(initializer)
        variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))


def assign_legacy(model, entries, *, source="weights file", adaptation=None):
    """Assign ``entries`` from :func:`read_legacy_h5` to ``model``.

    Match by normalised layer name when every file layer has a counterpart,
    otherwise by order of weighted layers. Every shape is checked before
    anything is assigned, so a failed load leaves the model untouched.

    Args:
        model: the model to fill.
        entries: ``[(layer_name, [arrays]), ...]`` in file order.
        source: how error messages call the file.
        adaptation: an :class:`Adaptation` from the constructor (other
            input channels, a classifier for other classes), or None.

    Returns:
        ``"name"`` or ``"order"``: how layers were matched.

    Raises:
        ValueError: naming the first mismatching layer and the shapes on
            both sides (another architecture, a different include_top).

    Example:
        >>> assign_legacy(model, read_legacy_h5("vgg16.h5"))  # doctest: +SKIP
        'name'
    """
    layers = weighted_layers(model)
    by_name = {_norm(layer.name): layer for layer in layers}
    file_names = [_norm(n) for n, _ in entries]
    if all(n in by_name for n in file_names) and len(set(file_names)) == len(file_names):
        pairs = [(by_name[_norm(n)], n, arrays) for n, arrays in entries]
        known = set(file_names)
        missing = [layer for layer in layers if _norm(layer.name) not in known]
        mode = "name"
    else:
        if len(entries) != len(layers):
            raise ValueError(
                f"Cannot load the {source} into model {model.name!r}: the file holds "
                f"weights for {len(entries)} layers, the model has {len(layers)} layers "
                "with weights and their names do not match either, so it was saved from "
                "another architecture or with a different include_top. First mismatch: "
                f"{_first_order_mismatch(layers, entries)}. Nothing was loaded."
            )
        pairs = [(layer, n, arrays) for layer, (n, arrays) in zip(layers, entries)]
        missing = []
        mode = "order"
    if missing:
        first = missing[0]
        raise ValueError(
            f"Cannot load the {source} into model {model.name!r}: the file has no "
            f"weights for {len(missing)} layers of the model; first: layer {first.name!r} "
            f"expects {_shapes(first.weights)}. Was it saved with a different "
            "include_top or from another architecture? Nothing was loaded."
        )
    pairs, fresh = _adapt_pairs(pairs, adaptation)
    problems = []
    for layer, fname, arrays in pairs:
        want, got = _shapes(layer.weights), _shapes(arrays)
        if want != got:
            problems.append(f"layer {layer.name!r} (file: {fname!r}) expects {want}, file has {got}")
    if problems:
        raise ValueError(
            f"Cannot load the {source} into model {model.name!r} (matched by {mode}): "
            f"{len(problems)} shape mismatch(es); first: {problems[0]}"
            + ("" if len(problems) == 1 else f"; others: {'; '.join(problems[1:4])}")
            + ". Nothing was loaded."
        )
    done = []
    try:
        for layer, _, arrays in pairs:
            old = layer.get_weights()
            layer.set_weights(arrays)
            done.append((layer, old))
        if fresh is not None:
            old = fresh[0].get_weights()
            _initialise_afresh(fresh[0])
            done.append((fresh[0], old))
    except Exception:
        # Shapes were checked, but never leave a half-loaded model behind.
        for layer, old in done:
            layer.set_weights(old)
        raise
    if fresh is not None:
        layer, got = fresh
        warnings.warn(
            f"Layer {layer.name!r} of model {model.name!r} was not loaded from the {source}: "
            f"the file holds {got} for it and the layer has {_shapes(layer.weights)} "
            f"(classes={_shapes(layer.weights)[0][-1]}). It is freshly initialised with its "
            "initializers.",
            UserWarning,
            stacklevel=2,
        )
    return mode


_KERAS_MISMATCH = re.compile(
    r"name=(?P<layer>[^,>]+).*?variable\.shape=(?P<want>\([^)]*\)).*?"
    r"value\.shape=(?P<got>\([^)]*\))",
    re.S,
)


def _keras_weights_groups(path):
    """``[(group_path, [shapes])]`` of a Keras 3 ``.weights.h5`` file: one
    entry per object that stores variables (its ``vars`` group)."""
    import h5py

    out = []
    try:
        with h5py.File(path, "r") as f:

            def visit(name, obj):
                if isinstance(obj, h5py.Group) and name.split("/")[-1] == "vars" and len(obj):
                    keys = sorted(obj.keys(), key=lambda k: int(k) if k.isdigit() else k)
                    out.append((name[: -len("/vars")], [tuple(obj[k].shape) for k in keys]))

            f.visititems(visit)
    except OSError as exc:
        raise ValueError(f"Cannot read the weights file {path}: {exc}") from None
    return out


def _check_keras_weights_file(model, path):
    """Reject a ``.weights.h5`` file holding arrays the model has no place
    for (the first such layer in file order, alphabetical, is named). Keras
    skips them with a warning (e.g. a top file loaded into a
    no-top model), which would load a different network than the file's
    without an error."""
    groups = _keras_weights_groups(path)
    free = [tuple(_shapes(layer.weights)) for layer in weighted_layers(model)]
    for gpath, shapes in groups:
        if tuple(shapes) in free:
            free.remove(tuple(shapes))
            continue
        raise ValueError(
            f"Cannot load the weights file {path} into model {model.name!r}: the file's "
            f"layer {gpath!r} holds {shapes} and the model has no layer with these shapes "
            "left; the file was saved from another architecture or with a different "
            "include_top. Nothing was loaded (the model keeps its previous weights)."
        )


def _load_keras_weights_atomic(model, path):
    """``model.load_weights`` for ``.weights.h5``, all or nothing.

    Keras 3 assigns layer by layer and raises only at the end, leaving a
    half-loaded model; the current values are kept and restored on any
    failure.
    """
    _check_keras_weights_file(model, path)
    snapshot = [np.array(v) for v in model.get_weights()]
    try:
        model.load_weights(path)
    except Exception as exc:
        model.set_weights(snapshot)
        text = str(exc)
        found = _KERAS_MISMATCH.search(text)
        if found:
            detail = (
                f"first mismatching layer {found['layer'].strip()!r}: model expects "
                f"{found['want']}, file has {found['got']}"
            )
        else:
            detail = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
        raise ValueError(
            f"Cannot load the weights file {path} into model {model.name!r}: {detail}. "
            "Nothing was loaded (the model keeps its previous weights)."
        ) from None


def _assign_by_order(model, source_model, source, adaptation=None):
    src = weighted_layers(source_model)
    entries = [(layer.name, [np.asarray(w) for w in layer.get_weights()]) for layer in src]
    return assign_legacy(model, entries, source=source, adaptation=adaptation)


def _read_keras_weights(path, model):
    """``[(layer_name, [arrays])]`` of a Keras 3 ``.weights.h5`` file saved
    from a model with ``model``'s layers, in ``model.layers`` order, or None
    where the file's layout is not understood.

    Keras stores the layers of a functional model under keys made of the
    snake-cased class name and a per-class counter in ``model.layers``
    order (``layers/conv2d_3/vars/0``), not under the layers' names; the
    keys are derived here the same way.
    """
    import h5py

    try:
        from keras.src.utils.naming import to_snake_case
    except ImportError:  # another Keras layout
        return None
    by_key, used = {}, {}
    for layer in model.layers:
        key = to_snake_case(type(layer).__name__)
        used[key] = used.get(key, -1) + 1
        by_key[key if used[key] == 0 else f"{key}_{used[key]}"] = layer
    out = []
    try:
        with h5py.File(path, "r") as f:
            group = f.get("layers")
            if not isinstance(group, h5py.Group):
                return None
            for key in group:
                held = group[key].get("vars")
                if not isinstance(held, h5py.Group) or any(not k.isdigit() for k in held):
                    return None
                if not len(held):
                    continue
                if key not in by_key:
                    return None
                out.append((by_key[key].name, [np.asarray(held[k]) for k in sorted(held, key=int)]))
    except OSError as exc:
        raise ValueError(f"Cannot read the weights file {path}: {exc}") from None
    position = {layer.name: i for i, layer in enumerate(model.layers)}
    return sorted(out, key=lambda entry: position[entry[0]])


def load_weights(model, weights, *, official=None, adaptation=None):
    """Apply a constructor's ``weights`` argument to a freshly built model.

    Args:
        model: the model.
        weights: ``None``, ``"imagenet"`` or a path.
        official: with ``"imagenet"``, the official :class:`WeightFile`
            (from the model's table entry) to fetch and load.
        adaptation: an :class:`Adaptation` (the constructor's input
            channels and classes, where they differ from the files'), or
            None: every array must fit as it is.

    Returns:
        ``model``, with its weights replaced.

    Raises:
        ValueError: when the file cannot be fetched or read, or does not fit
            the model (the message names the first mismatching layer and the
            shapes). Loading is all or nothing: after an error the model
            keeps the weights it had.

    Example:
        >>> load_weights(model, "vgg16_notop.h5")  # doctest: +SKIP
    """
    if weights is None:
        return model
    if weights == "imagenet":
        if official is None:
            raise ValueError(f'Model {model.name!r} has no official `weights="imagenet"` file.')
        path = fetch_official(official)
        assign_legacy(model, read_legacy_h5(path), source=f"official weights file {path}",
                      adaptation=adaptation)
        return model
    path = os.fspath(weights)
    if path.endswith(".keras"):
        try:
            src = keras.saving.load_model(path, compile=False)
        except Exception as exc:
            raise ValueError(
                f"Cannot read the model file {path}: {type(exc).__name__}: "
                f"{str(exc).strip()[:300]}"
            ) from None
        _assign_by_order(model, src, f"model file {path}", adaptation)
    elif path.endswith(".weights.h5"):
        entries = _read_keras_weights(path, model) if adaptation is not None else None
        if entries is None:
            _load_keras_weights_atomic(model, path)
        else:
            assign_legacy(model, entries, source=f"weights file {path}", adaptation=adaptation)
    elif is_legacy_h5(path):
        assign_legacy(model, read_legacy_h5(path), source=f"weights file {path}",
                      adaptation=adaptation)
    else:
        raise ValueError(
            f"`weights` file {path!r} is not a legacy Keras .h5 file, a .weights.h5 "
            "file or a .keras file."
        )
    return model
