"""One benchmark case: the model, the clip geometry, the batch, the shared weights and the inputs.

Every arm of a case computes the same function on the same data: the same
weights file (written once by one arm, read by the others) and the same
seeded uint8 frames, normalised with the contract's MEAN/STD for the arms
that take float clips. So outputs can be compared across arms. A case with
a `stage` times that stage of the backbone alone, on what the stages before
it make of the same clip, and compares its output mean-pooled over T/H/W.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vswin import contract


@dataclasses.dataclass(frozen=True)
class Case:
    """`arch`: preset name or architecture JSON; `weights`: .pth (original layout) or .weights.h5."""

    arch: str
    frames: int
    size: int
    batch: int
    weights: str
    seed: int = 0
    device: str = "cpu"
    export_dir: str | None = None  # where the export arms write (or find) their SavedModel
    stage: int | None = None  # time this stage of the backbone (counted from 0) instead of the whole model

    def __post_init__(self) -> None:
        if self.stage is not None and self.stage < 0:
            raise ValueError(f"stage must be >= 0, got {self.stage}")

    @property
    def label(self) -> str:
        where = "" if self.stage is None else f":stage{self.stage}"
        return f"{self.arch}@{self.batch}x{self.frames}x{self.size}x{self.size}{where}"

    def to_dict(self) -> dict[str, Any]:
        """The case as JSON; `stage` only when set, so workers of revisions without stages read whole-model cases."""
        data = dataclasses.asdict(self)
        if self.stage is None:
            del data["stage"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        return cls(**data)


def frames(case: Case) -> np.ndarray:
    """Seeded uint8 RGB frames [B, T, H, W, 3]: what a client sends."""
    rng = np.random.default_rng(case.seed)
    return rng.integers(0, 256, size=(case.batch, case.frames, case.size, case.size, 3), dtype=np.uint8)


def clips(case: Case) -> np.ndarray:
    """The same frames normalised as the export's graph does: float32 [B, T, H, W, 3]."""
    return normalize(frames(case))


def normalize(data: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 with the contract's MEAN/STD."""
    mean = np.asarray(contract.MEAN, dtype=np.float32)
    std = np.asarray(contract.STD, dtype=np.float32)
    return (data.astype(np.float32) - mean) / std
