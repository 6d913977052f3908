"""An export's signature called in-process: what TF Serving runs, without the server.

Options: `signature`: `xla` or `graph` (the export's XLA or graph forward
pass, whichever is its default) or a signature name; `savedmodel`: a version
directory to time. Without `savedmodel` the arm exports the case's model with
`vswin export`'s code to `case.export_dir` (once: arms of one run share it),
warmed up for the case's batch only. Inputs are the case's uint8 frames
(float clips for float signatures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vswin import contract
from vswin.bench.backends import Forward, keras_model
from vswin.bench.case import Case, clips, frames, normalize

EXPORT_NAME = "bench"


def prepare(case: Case, options: dict[str, Any], write_weights: bool = False) -> Forward:
    import tensorflow as tf

    from vswin.bench.model import xla_and_graph
    from vswin.bench.transport import missing_signature, read_export_metadata

    if case.stage is not None:
        raise ValueError("an export runs the whole model: per-stage timing needs model arms (tf_*, jax_jit, pytorch)")
    directory = options.get("savedmodel") or _export(case, options.get("precision", "float32"), write_weights)
    loaded = tf.saved_model.load(str(directory))
    name = options.get("signature", contract.SERVING_DEFAULT)
    if name in (contract.XLA, contract.GRAPH):
        meta = read_export_metadata(directory) or {}
        xla, graph = xla_and_graph(meta.get("signatures") or list(loaded.signatures))
        name = xla if name == contract.XLA else graph
    if name not in loaded.signatures:
        raise missing_signature(directory, name, loaded.signatures)
    signature = loaded.signatures[name]
    _, specs = signature.structured_input_signature
    (input_name, spec), = specs.items()
    inputs = tf.constant(_inputs(case, tuple(spec.shape[1:4]), spec.dtype == tf.uint8))
    return lambda: signature(**{input_name: inputs})[contract.FEATURES].numpy()


def _inputs(case: Case, clip_shape: tuple[int, int, int], uint8: bool) -> np.ndarray:
    """The case's frames (or clips) when the export has the case's geometry, else seeded ones of its own."""
    if clip_shape != (case.frames, case.size, case.size):
        rng = np.random.default_rng(case.seed)
        data = rng.integers(0, 256, size=(case.batch, *clip_shape, 3), dtype=np.uint8)
        return data if uint8 else normalize(data)
    return frames(case) if uint8 else clips(case)


def _export(case: Case, precision: str, write_weights: bool) -> Path:
    """The case's model exported once to case.export_dir/bench/1 (an existing export there is reused)."""
    from vswin.export import export_model

    if not case.export_dir:
        raise ValueError("an export arm needs the case's export_dir (or a savedmodel option)")
    version = Path(case.export_dir) / EXPORT_NAME / "1"
    if not (version / "saved_model.pb").is_file():
        model = keras_model.load(case, precision, write_weights)
        export_model(model, Path(case.export_dir), EXPORT_NAME, version=1, frames=case.frames,
                     size=(case.size, case.size), precision=precision, batch_sizes=(case.batch,))  # fmt: skip
    return version
