"""Keras on JAX: `jax.jit` with the weights as arguments (options: precision)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vswin import contract
from vswin.bench.backends import Forward, keras_model
from vswin.bench.case import Case, clips


def prepare(case: Case, options: dict[str, Any], write_weights: bool = False) -> Forward:
    import jax

    from vswin.model.jax_jit import jit_forward

    model = keras_model.load(case, options.get("precision", "float32"), write_weights)
    forward, weights = jit_forward(model)
    inputs = jax.device_put(clips(case))
    return lambda: np.asarray(forward(weights, inputs)[contract.FEATURES])
