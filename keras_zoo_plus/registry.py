"""Model registry: what each constructor is, never how it is built.

``@register(...)`` records a :class:`ModelInfo` beside a public constructor;
:func:`list_models`, :func:`create_model` and :func:`model_info` read it.
"""

from __future__ import annotations

import dataclasses
import fnmatch

_REGISTRY: dict[str, ModelInfo] = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one model.

    Attributes:
        name: registry name, lower case (``"resnet50"``).
        constructor: the public constructor (``ResNet50``).
        family: family module name (``"resnet"``).
        default_size: default input height/width.
        min_size: smallest accepted input height/width.
        preprocess: ``preprocess_input`` mode: ``"caffe"``, ``"tf"`` or ``"torch"``.
        weights_key: key prefix in ``weights.OFFICIAL_WEIGHTS`` or None.
        params: parameter count with the ImageNet top (1000 classes).
        top1, top5: published ImageNet accuracy of the official weights.
        size_mb: published size of the official top weights file, in MB.
        depth: published depth (as in the seed table), or None.
        stages: ``((stage_name, layer_name_regex), ...)`` in network order,
            used by the freeze utilities (a layer belongs to the first stage
            whose regex ``re.search``-matches its name; the stage named
            ``"top"``, the classifier, is not counted by
            ``unfreeze(stages=N)``).
    """

    name: str
    constructor: object
    family: str
    default_size: int
    min_size: int
    preprocess: str
    weights_key: str | None
    params: int
    top1: float | None = None
    top5: float | None = None
    size_mb: float | None = None
    depth: int | None = None
    stages: tuple = ()

    @property
    def constructor_name(self):
        return self.constructor.__name__

    def weight_files(self):
        """The official weight files (top and no-top) for this model."""
        from keras_zoo_plus import weights

        if self.weights_key is None:
            return {}
        out = {}
        for top in (True, False):
            key = self.weights_key if top else f"{self.weights_key}_notop"
            if key in weights.OFFICIAL_WEIGHTS:
                out["top" if top else "notop"] = weights.OFFICIAL_WEIGHTS[key]
        return out


def register(name, **info):
    """Decorator recording a constructor under ``name`` (lower case)."""

    def wrap(fn):
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key].constructor is not fn:
            raise ValueError(f"Model {key!r} is registered twice.")
        _REGISTRY[key] = ModelInfo(name=key, constructor=fn, **info)
        return fn

    return wrap


def _ensure_loaded():
    import keras_zoo_plus.applications  # noqa: F401  (registers every family)


def list_models(pattern="*"):
    """Sorted registry names matching a shell-style wildcard (case-insensitive).

    Example:
        >>> list_models("resnet*")
        ['resnet101', 'resnet152', 'resnet50']
    """
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string. Received: pattern={pattern!r}")
    _ensure_loaded()
    pattern = pattern.lower()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_info(name):
    """The :class:`ModelInfo` of ``name`` (registry or constructor name)."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}")
    key = name.lower()
    if key not in _REGISTRY:
        for info in _REGISTRY.values():
            if info.constructor_name.lower() == key:
                return info
        raise ValueError(
            f"Unknown model name: {name!r}. Known models: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def create_model(name, **kwargs):
    """Build a registered model: ``create_model("resnet50", weights=None)``."""
    return model_info(name).constructor(**kwargs)


def all_models():
    """Every :class:`ModelInfo`, sorted by name."""
    _ensure_loaded()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]
