"""The Keras model of a case with the case's shared weights, on whichever Keras backend this process runs."""

from __future__ import annotations

from vswin.bench.case import Case
from vswin.export.options import PRECISIONS


def load(case: Case, precision: str = "float32", write_weights: bool = False):
    """`VideoSwin` without head; with `write_weights`, seeded random weights are first saved to case.weights."""
    import keras

    import vswin.model
    from vswin.model.convert import save_weights_atomically

    if write_weights:
        if not case.weights.endswith(".weights.h5"):
            raise ValueError(f"a Keras arm writes .weights.h5, not {case.weights}")
        keras.utils.set_random_seed(case.seed)
        save_weights_atomically(vswin.model.build(case.arch, include_head=False), case.weights)
    return vswin.model.load(case.weights, case.arch, dtype=PRECISIONS[precision])
