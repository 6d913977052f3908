"""What flows between the pipeline's steps: views to infer, their features, per-file metadata, failures."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from vswin.client.metadata import ModelInfo

# Pipeline stages a failure is reported from (the `stage` of a dead-letter record).
DECODE = "decode"
INFERENCE = "inference"
ASSEMBLE = "assemble"


@dataclass(frozen=True)
class View:
    """One model input: view `index` (clip-major, crops inner, as vswin.client.extract.flat_views orders them)
    of the file `key`: a clip uint8 [T, H, W, 3], or an image or video frame [H, W, 3] for an image model.
    Lives only inside the fused decode -> inference stage."""

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
class FileMeta:
    """Everything but the pixels of a file that decoded completely: enough to assemble its features.

    `info` is the model as the decode step saw it (row_info): its preprocessing
    is the one that cut the file, so the result records what was used. A video
    has frame_indices [clips, T], num_frames and fps; an image its original
    (height, width) in `image_size`.
    """

    key: str
    info: ModelInfo
    num_views: int
    frame_indices: np.ndarray | None = None
    num_frames: int = 0
    fps: float = 0.0
    image_size: tuple[int, int] | None = None


def row_info(info: ModelInfo) -> ModelInfo:
    """`info` as every file's FileMeta carries it: only the called signature, and the export's metadata
    without its labels (up to 21841 names that would otherwise travel with every file through the shuffle)."""
    export = None if info.export is None else {k: v for k, v in info.export.items() if k != "labels"}
    return dataclasses.replace(info, signatures={info.signature: info.signatures[info.signature]}, export=export)


@dataclass(frozen=True)
class Failure:
    """A file that produced no features: the dead-letter record (key, stage, error)."""

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
