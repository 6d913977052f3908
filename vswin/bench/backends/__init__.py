"""Forward passes a benchmark worker can time: one module per arm kind (vswin.bench.arms.KINDS).

Each module has `prepare(case, options, write_weights) -> Forward`: it builds
the model with the case's shared weights (writing them first when
`write_weights`), places the case's inputs where the model runs, and returns
a function that runs one forward pass and returns the features as numpy, so
a timed call includes the wait for the device. Frameworks are imported only
by the module of the kind that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np

from vswin.bench.arms import KINDS
from vswin.bench.case import Case

Forward = Callable[[], np.ndarray]


def prepare(kind: str, case: Case, options: dict[str, Any], write_weights: bool = False) -> Forward:
    if kind not in KINDS:
        raise ValueError(f"unknown arm kind {kind!r}: expected one of {KINDS}")
    return importlib.import_module(f"vswin.bench.backends.{kind}").prepare(case, options, write_weights)
