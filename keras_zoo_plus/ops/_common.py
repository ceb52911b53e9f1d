"""Convolution geometry shared by the public functions and the backend
kernels: plain Python on shapes, no backend."""

from __future__ import annotations

import contextlib
import contextvars

# Set by keras_zoo_plus.export around the exporter's trace (export_scope).
_EXPORTING = contextvars.ContextVar("keras_zoo_plus_exporting", default=False)


@contextlib.contextmanager
def export_scope():
    """Within it, kernels that a trace would capture in a form an exporter
    cannot convert take an exportable one (TensorFlow's grouped
    convolution, JAX's native convolutions, torch's plain graph, the
    static-padding max pool of ``keras_zoo_plus.layers.MaxPooling2D``).
    ``keras_zoo_plus.export`` traces the model inside it; a context
    variable, not global state."""
    token = _EXPORTING.set(True)
    try:
        yield
    finally:
        _EXPORTING.reset(token)


def in_export_scope():
    """Whether :func:`export_scope` is active."""
    return _EXPORTING.get()


def pair(value, name):
    """``(value, value)`` for an int, the pair itself for a pair of ints."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"`{name}` must be an int or a pair of ints; received {value!r}.")
    return value


def same_padding(size, kernel, stride, dilation):
    """``(before, after)`` padding of Keras' ``padding="same"`` for one axis.

    The output has ``ceil(size / stride)`` positions; any odd total padding
    puts the extra pixel after (bottom/right), as TensorFlow, JAX and Keras'
    torch backend all do.
    """
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def output_size(size, kernel, stride, dilation, padding):
    """Output positions along one axis for ``"same"`` or ``"valid"``."""
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)
    return (size - effective) // stride + 1
