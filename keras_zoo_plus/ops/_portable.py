"""The portable backend module: the defaults every backend module inherits
for the hooks it does not define, and the whole module for a backend
without one of its own (its kernels are ``keras.ops``).

A backend module (``_jax``, ``_torch``, ``_tensorflow``) may define any of
these names; whatever it leaves out is taken from here. It may also
define a kernel hook named like a public function of
:mod:`keras_zoo_plus.ops` or like any ``keras.ops`` function; a kernel
missing there means the portable formulation (``keras.ops``). Framework
imports stay inside the functions, so that importing a backend module
imports no framework (the error messages read every module's
``IMPLEMENTATIONS``).
"""

from __future__ import annotations

# The formulations besides "auto" and "native" this backend offers by name
# (``implementation=...``); its kernel hooks only ever receive one of them.
IMPLEMENTATIONS = ()


def select_implementation(x=None, data_format=None, op=None):
    """The formulation ``implementation="auto"`` picks for ``op`` (a
    public function's name; ``None`` for the rule of
    :func:`keras_zoo_plus.ops.select_implementation`) on input ``x`` in
    ``data_format``: ``"native"`` or one of ``IMPLEMENTATIONS``."""
    return "native"


def fused_inference_supported():
    """Whether the backend has a fused inference path at all."""
    return False


def fused_inference_active(x):
    """Whether the fused inference path runs for the model input ``x``."""
    return False
