"""One benchmark case: the model, the clip geometry, the batch, the shared weights and the inputs.

Every arm of a case computes the same function on the same data: the same
weights file (written once by one arm, read by the others) and the same
seeded uint8 frames, normalised with the contract's MEAN/STD for the arms
that take float clips. So outputs can be compared across arms.
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

    @property
    def label(self) -> str:
        return f"{self.arch}@{self.batch}x{self.frames}x{self.size}x{self.size}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
