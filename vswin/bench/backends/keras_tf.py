"""Keras on TensorFlow: `tf.function` graph, or XLA with `jit_compile=True` (options: jit, precision)."""

from __future__ import annotations

from typing import Any

from vswin import contract
from vswin.bench.backends import Forward, keras_model
from vswin.bench.case import Case, clips


def prepare(case: Case, options: dict[str, Any], write_weights: bool = False) -> Forward:
    import tensorflow as tf

    model = keras_model.load(case, options.get("precision", "float32"), write_weights)
    function = tf.function(lambda x: model(x)[contract.FEATURES], jit_compile=bool(options.get("jit")),
                           autograph=False)  # fmt: skip
    inputs = tf.constant(clips(case))
    return lambda: function(inputs).numpy()
