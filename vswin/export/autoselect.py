"""`--default-signature auto`: time the XLA and graph forward passes here, serve the faster one by default.

Which pass wins depends on the device and on the process settings: on GPUs
XLA's fusions pay; on CPUs TensorFlow's graph with oneDNN can beat XLA, whose
softmax makes several passes over the attention scores. So the choice is
measured where the export runs, at the export's clip geometry and batch 1,
with the two passes alternating after their first (compiling) calls, and the
measurement is recorded in vswin.json. It speaks for the device this
process sees (a GPU if TensorFlow has one, else the CPU) under this
process's settings (vswin export applies `vswin serve`'s, see
vswin.runtime): export on the serving hardware, or name `xla`/`graph`.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from vswin import contract

RESOLUTION_DIGITS = 6  # seconds to the microsecond: what vswin.json records and the choice compares
CALLS = 3  # timed calls per pass after the first: enough to see a 10% difference on a quiet machine


def measure(task, geometry, calls: int = CALLS) -> dict[str, Any]:
    """Time both passes of `task` at `geometry` on this device and pick the faster: {'chosen', 'xla_s', ...}."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    pixels = np.random.default_rng(0).integers(0, 256, size=(1, *geometry.shape), dtype=np.uint8)
    inputs = task.preprocessor(tf.constant(pixels))
    passes = {mode: tf.function(lambda x: task.extract(x)[contract.FEATURES], jit_compile=mode == contract.XLA,
                                autograph=False)
              for mode in (contract.XLA, contract.GRAPH)}  # fmt: skip
    first_call = {mode: _seconds(lambda: fn(inputs).numpy()) for mode, fn in passes.items()}
    times: dict[str, list[float]] = {mode: [] for mode in passes}
    for index in range(calls):
        order = (contract.XLA, contract.GRAPH) if index % 2 == 0 else (contract.GRAPH, contract.XLA)
        for mode in order:
            times[mode].append(_seconds(lambda: passes[mode](inputs).numpy()))
    # The choice is made on the figures recorded (to the microsecond), so that vswin.json always justifies it:
    # medians under 0.1 ms apart once chose the graph while both were recorded as the same 4-digit time.
    xla_s, graph_s = (round(statistics.median(times[mode]), RESOLUTION_DIGITS)
                      for mode in (contract.XLA, contract.GRAPH))
    gpus = tf.config.list_logical_devices("GPU")
    return {
        "chosen": contract.XLA if xla_s <= graph_s else contract.GRAPH,
        "device": "GPU" if gpus else "CPU",
        "device_name": gpus[0].name if gpus else "/device:CPU:0",
        "xla_s": xla_s,
        "graph_s": graph_s,
        "xla_over_graph": round(xla_s / graph_s, 3),
        "first_call_s": {mode: round(value, 2) for mode, value in first_call.items()},
        "calls": calls,
        "batch_size": 1,
        "onednn_enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "environment": {key: os.environ[key] for key in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC",
                                                         "XLA_FLAGS", "TF_XLA_FLAGS") if key in os.environ},
    }  # fmt: skip


def explain(choice: dict[str, Any]) -> str:
    """One sentence for vswin.json and the log: what was chosen and why."""
    if choice["chosen"] == contract.XLA:
        return (f"XLA won on this {choice['device']} ({choice['xla_s']:.3f} s vs graph {choice['graph_s']:.3f} s "
                f"at batch 1): serving_default is XLA-compiled")  # fmt: skip
    return (f"XLA lost on this {choice['device']} ({choice['xla_s']:.3f} s vs graph {choice['graph_s']:.3f} s "
            f"at batch 1): serving_default is the graph pass; features_xla keeps XLA")  # fmt: skip


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
