"""What flows between the pipeline's steps: views to infer, their features, per-video metadata, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

# Pipeline stages a failure is reported from (the `stage` of a dead-letter record).
DECODE = "decode"
INFERENCE = "inference"
ASSEMBLE = "assemble"


@dataclass(frozen=True)
class View:
    """One model input: clip `index` (clip-major, crops inner, as vswin.client.extract.flat_views orders them)
    of the video `key`, uint8 [T, H, W, 3]. Lives only inside the fused decode -> inference stage."""

    key: str
    index: int
    pixels: np.ndarray


@dataclass(frozen=True)
class ViewFeatures:
    """The model's features [C] for one view, and the model version that computed them."""

    key: str
    index: int
    features: np.ndarray
    version: int


@dataclass(frozen=True)
class VideoMeta:
    """Everything but the pixels of a video that decoded completely: enough to assemble its features."""

    key: str
    model: str
    signature: str
    num_views: int
    frame_indices: np.ndarray  # [clips, T]
    num_frames: int
    fps: float


@dataclass(frozen=True)
class Failure:
    """A video that produced no features: the dead-letter record (key, stage, error)."""

    key: str
    stage: str
    error: str

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "stage": self.stage, "error": self.error})


def describe_error(error_info: tuple) -> str:
    """Beam's dead-letter payload (type, repr, formatted traceback) -> 'module.Type: message'."""
    exc_type, exc_repr, trace = error_info
    last = "".join(trace).strip().splitlines()[-1] if trace else ""
    return last or f"{exc_type.__name__}: {exc_repr}"
