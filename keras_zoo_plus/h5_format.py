"""Reading the legacy Keras (1/2, tf_keras) HDF5 layout, without Keras.

Imports neither Keras nor a backend: the oracle process
(tests/golden/generate.py, tf_keras) loads this file too.
"""

from __future__ import annotations


def decode(value):
    """An HDF5 string attribute value as ``str``."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def list_attribute(group, name):
    """A list attribute of a legacy Keras HDF5 group (``layer_names``,
    ``weight_names``) as strings, or None if absent.

    HDF5 keeps attributes in the object header, at most 64 KiB, so Keras 2
    writes a longer list in chunks ``name0``, ``name1``, ... (the official
    ResNetRS350 and ResNetRS420 files: over 2,000 layer names).
    """
    if name in group.attrs:
        return [decode(v) for v in group.attrs[name]]
    out, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(decode(v) for v in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out if chunk else None
