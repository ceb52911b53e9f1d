"""The model table: every fact about every model, in one entry per model.

One module per family (``model_table/resnet.py``, ...) defines its
:class:`ModelInfo` entries: constructor, sizes, preprocessing mode, the
official weight files (URL path and md5 or sha256, per ``include_top`` and per
variant argument), feature levels, freeze stages and the published
figures. The registry, weight loading, freeze, ``check``, ``bench``,
``table``, the docs and the tests read these entries; nothing here is
written anywhere else.

This package is a leaf: it imports neither Keras nor a backend nor any
model code (constructors are found by name, on first use), so
``keras-zoo-plus list`` and ``info`` stay light.

Example:
    >>> from keras_zoo_plus import model_table
    >>> entry = model_table.get("resnet50")
    >>> entry.default_size, entry.preprocess
    (224, 'caffe')
    >>> entry.weight_file(include_top=False).fname
    'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import os

#: Family modules, in the order entries are listed.
FAMILY_MODULES = (
    "vgg",
    "resnet",
    "resnet_v2",
    "xception",
    "inception_v3",
    "inception_resnet_v2",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3",
    "densenet",
    "nasnet",
    "convnext",
    "efficientnet",
    "efficientnet_v2",
    "regnet",
    "resnet_rs",
)

#: ``preprocess_input`` modes (``"none"``: the graph preprocesses itself).
PREPROCESS_MODES = ("caffe", "tf", "torch", "none")

DEFAULT_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
BASE_URL_ENV = "KERAS_ZOO_PLUS_WEIGHTS_URL"


def base_url():
    """The base URL of the weight files (``KERAS_ZOO_PLUS_WEIGHTS_URL``
    mirror override honoured), with a trailing slash."""
    url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One official weight file.

    Attributes:
        fname: file name in the cache (the official name).
        path: path relative to the base URL.
        file_hash: the hex digest keras.applications publishes for the
            file: an md5 (32 hex digits) for most files, a sha256 (64 hex
            digits) for some (ConvNeXt); None where Keras publishes none
            (MobileNet). The algorithm follows from the length, as in
            ``keras.utils.get_file`` (:attr:`hash_algorithm`).
        include_top: whether the file holds the classifier.
        variant: ``((argument, value), ...)``: the constructor arguments
            (besides ``include_top``) this file is for, e.g.
            ``(("alpha", 0.25), ("rows", 128))``; empty for most models.
        root: the URL ``path`` is relative to, for files published outside
            :data:`DEFAULT_BASE_URL` (EfficientNet B0-B7 are under
            ``https://storage.googleapis.com/keras-applications/``); None
            for the default. A mirror (``KERAS_ZOO_PLUS_WEIGHTS_URL``)
            replaces either and holds every file at its ``path``.

    Raises:
        ValueError: when ``file_hash`` is neither None, 32 nor 64 hex digits.
    """

    fname: str
    path: str
    file_hash: str | None
    include_top: bool = True
    variant: tuple = ()
    root: str | None = None

    def __post_init__(self):
        if self.file_hash is not None:
            WeightFile.algorithm_of(self.file_hash)

    @staticmethod
    def algorithm_of(file_hash):
        """``"sha256"`` for 64 hex digits, ``"md5"`` for 32 (Keras' rule).

        Raises:
            ValueError: for anything else (None included), naming the value.
        """
        if isinstance(file_hash, str) and all(c in "0123456789abcdefABCDEF" for c in file_hash):
            if len(file_hash) == 64:
                return "sha256"
            if len(file_hash) == 32:
                return "md5"
        raise ValueError(
            "A file hash must be an md5 (32 hex digits) or a sha256 (64 hex digits). "
            f"Received: file_hash={file_hash!r}"
        )

    @property
    def hash_algorithm(self):
        """``"md5"``, ``"sha256"`` or None (no published hash)."""
        return None if self.file_hash is None else WeightFile.algorithm_of(self.file_hash)

    @property
    def md5(self):
        """The hash when it is an md5, else None (read-only; see :attr:`file_hash`)."""
        return self.file_hash if self.hash_algorithm == "md5" else None

    @property
    def url(self):
        if self.root is not None and not os.environ.get(BASE_URL_ENV):
            return self.root + self.path
        return base_url() + self.path


@dataclasses.dataclass(frozen=True)
class FeatureLevel:
    """One level of a model's feature pyramid.

    Attributes:
        name: ``"P1"`` ... ``"P5"``: ``Pn`` has output stride ``2**n``.
        layer: the layer whose output is the level (the last layer of the
            network at that stride).
        stride: output stride relative to the input.
        channels: channel count of the level (for the table's default
            variant arguments).
    """

    name: str
    layer: str
    stride: int
    channels: int


def levels(*pairs):
    """``levels(("conv1_relu", 64), ...)``: :class:`FeatureLevel` s at strides
    2, 4, 8, 16, 32 in that order; None for a stride the network skips
    (ConvNeXt's stride-4 stem has no ``P1``)."""
    return tuple(
        FeatureLevel(f"P{n}", pair[0], 2**n, pair[1])
        for n, pair in enumerate(pairs, 1)
        if pair is not None
    )


def official_files(subdir, top=None, notop=None, *, variant=(), root=None):
    """The top / no-top :class:`WeightFile` pair of one model (or variant):
    ``top`` and ``notop`` are ``(fname, file_hash)`` or None, the hash an
    md5 or a sha256 as keras.applications publishes it; ``subdir`` is the
    folder under the base URL ("" for none), ``root`` the base URL where
    it is not :data:`DEFAULT_BASE_URL` (see :class:`WeightFile`)."""
    out = []
    for include_top, spec in ((True, top), (False, notop)):
        if spec is not None:
            fname, file_hash = spec
            path = f"{subdir}/{fname}" if subdir else fname
            out.append(WeightFile(fname, path, file_hash, include_top, tuple(variant), root))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one model: its entry in the model table.

    Attributes:
        name: registry name, lower case (``"resnet50"``).
        constructor_name: the public constructor's name (``"ResNet50"``),
            in ``keras_zoo_plus.applications.<module>``.
        module: the family module under ``keras_zoo_plus.applications``.
        family: family name (``"resnet"``).
        default_size: default input height/width.
        min_size: smallest accepted input height/width.
        preprocess: ``preprocess_input`` mode, one of :data:`PREPROCESS_MODES`.
        params: parameter count with the ImageNet top (1000 classes).
        top1, top5: published ImageNet accuracy of the official weights.
        size_mb: published size of the official top weights file, in MB.
        depth: published depth (as in the seed table), or None.
        weights: the official :class:`WeightFile` s, top and no-top, for
            every variant that has them.
        feature_levels: :class:`FeatureLevel` s, stride 2 to 32.
        stages: ``((stage_name, layer_name_regex), ...)`` in network order,
            used by the freeze utilities (a layer belongs to the first stage
            whose regex ``re.search``-matches its name; the stage named
            ``"top"``, the classifier, is not counted by
            ``unfreeze(stages=N)``).
        require_static: with ``weights="imagenet"`` the input shape may
            have no ``None`` entry (NASNet).
    """

    name: str
    constructor_name: str
    module: str
    family: str
    default_size: int
    min_size: int
    preprocess: str
    params: int
    top1: float | None = None
    top5: float | None = None
    size_mb: float | None = None
    depth: int | None = None
    weights: tuple = ()
    feature_levels: tuple = ()
    stages: tuple = ()
    require_static: bool = False

    def __post_init__(self):
        if self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"{self.name}: unknown preprocess mode {self.preprocess!r}")
        if self.name != self.name.lower():
            raise ValueError(f"Registry names are lower case. Received: {self.name!r}")

    @property
    def constructor(self):
        """The public constructor (imports its family module, and Keras)."""
        module = importlib.import_module(f"keras_zoo_plus.applications.{self.module}")
        return getattr(module, self.constructor_name)

    @property
    def is_large(self):
        """Over 50M parameters: the test matrix checks it at reduced size."""
        return self.params > 50_000_000

    def weight_file(self, include_top=True, **variant):
        """The official :class:`WeightFile` for ``include_top`` and the
        variant arguments (``alpha=0.25, rows=128`` for MobileNet; none for
        most models).

        Raises:
            ValueError: when no official file exists for them.
        """
        want = tuple(sorted(variant.items()))
        for wf in self.weights:
            if wf.include_top == include_top and tuple(sorted(wf.variant)) == want:
                return wf
        known = sorted(
            {", ".join(f"{k}={v!r}" for k, v in sorted(wf.variant)) or "(default)"
             for wf in self.weights}
        )
        args = ", ".join([f"include_top={include_top}"]
                         + [f"{k}={v!r}" for k, v in sorted(variant.items())])
        raise ValueError(
            f"No official imagenet weights for {self.name} with {args}. "
            + (f"Variants with official files: {'; '.join(known)}." if known
               else "This model has no official weight files.")
        )

    def weight_files(self):
        """``{"top": WeightFile, "notop": WeightFile}`` of the default
        variant (the first listed), where they exist."""
        if not self.weights:
            return {}
        variant = self.weights[0].variant
        return {
            "top" if wf.include_top else "notop": wf
            for wf in self.weights
            if wf.variant == variant
        }

    def feature_level(self, name):
        for level in self.feature_levels:
            if level.name == name:
                return level
        raise ValueError(
            f"Unknown feature level {name!r} for {self.name}. "
            f"Levels: {', '.join(lv.name for lv in self.feature_levels)}"
        )


_ENTRIES: dict[str, ModelInfo] | None = None


def _load():
    global _ENTRIES
    if _ENTRIES is None:
        entries = {}
        for family in FAMILY_MODULES:
            module = importlib.import_module(f"keras_zoo_plus.model_table.{family}")
            for entry in module.ENTRIES:
                if entry.name in entries:
                    raise ValueError(f"Model {entry.name!r} is in the model table twice.")
                entries[entry.name] = entry
        _ENTRIES = entries
    return _ENTRIES


def entries():
    """Every :class:`ModelInfo`, sorted by name."""
    table = _load()
    return [table[n] for n in sorted(table)]


def names(pattern="*"):
    """Sorted names matching a shell-style wildcard (case-insensitive)."""
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string. Received: pattern={pattern!r}")
    pattern = pattern.lower()
    return sorted(n for n in _load() if fnmatch.fnmatchcase(n, pattern))


def get(name):
    """The entry of ``name`` (registry name or constructor name, any case).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no such model; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}")
    table = _load()
    key = name.lower()
    if key in table:
        return table[key]
    for entry in table.values():
        if entry.constructor_name.lower() == key:
            return entry
    raise ValueError(f"Unknown model name: {name!r}. Known models: {', '.join(sorted(table))}")


def family_entries(module):
    """The entries built by ``keras_zoo_plus.applications.<module>``."""
    return [e for e in entries() if e.module == module]


def smallest_of_each_family(among=None):
    """``{family: entry}``: the entry with the fewest parameters of each
    family, families sorted by name. The model that stands for its family
    where a check runs once per family (``check --quick``, the loader and
    ``.keras`` round-trip tests, Keras' suite in the backend sessions).
    ``among``: the entries to choose from (default: the whole table)."""
    smallest = {}
    for entry in entries() if among is None else among:
        best = smallest.get(entry.family)
        if best is None or entry.params < best.params:
            smallest[entry.family] = entry
    return {family: smallest[family] for family in sorted(smallest)}
