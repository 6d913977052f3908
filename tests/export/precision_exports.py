"""Reduced-precision exports of the fixture: `python -m tests.export.precision_exports FIXTURES OUT PRECISION...`.

Run by tests/export/test_precision.py, in a process of its own so that it can run ahead of its test
(tests/prefetch.py). For each precision: the fixture model built in it, exported, loaded back, and
`features_float` run on the fixture's clips; OUT/PRECISION.npz holds the features and their dtype.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def run(fixtures: Path, out: Path, precision: str) -> None:
    import tensorflow as tf

    import vswin.model
    from vswin.export import dtype_policy, export_model

    model = vswin.model.load(fixtures / "vswin_micro_w877.pth", fixtures / "vswin_micro_w877.json",
                             dtype=dtype_policy(precision))  # fmt: skip
    path = export_model(model, out / precision, "m", frames=16, size=(64, 64), precision=precision)
    with np.load(fixtures / "vswin_micro_w877.npz") as reference:
        clips = np.transpose(reference["input_ncthw"], (0, 2, 3, 4, 1))
    features = tf.saved_model.load(str(path)).signatures["features_float"](clips=tf.constant(clips))["features"]
    np.savez(out / f"{precision}.npz", features=features.numpy(), dtype=features.dtype.name)


if __name__ == "__main__":
    for name in sys.argv[3:]:
        run(Path(sys.argv[1]), Path(sys.argv[2]), name)
