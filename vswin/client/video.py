"""Video files to uint8 clips: OpenCV decode of only the needed frames, short-side resize, crops.

Frames are skipped with `grab()` and only kept frames are `retrieve()`d
(converted to pixels): `CAP_PROP_POS_FRAMES` seeking is inexact on many
containers (opencv issues 9053, 4890). Each kept frame is converted BGR->RGB and
resized as soon as it is decoded, so a 4K video never sits in memory at full size.
Preprocessing follows the official test pipeline: Resize(short side, keep
ratio, bilinear, mmcv rounding) then CenterCrop or ThreeCrop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vswin.client.errors import VideoError
from vswin.client.sampling import Sampling, frame_indices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame count (may be wrong or 0 for streams), fps, frame size."""

    path: str
    num_frames: int
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class VideoClips:
    """Clips cut from one video, ready to send.

    clips: uint8 RGB [num_clips, num_crops, T, H, W, 3]; frame_indices [num_clips, T]
    (0-based, looped); starts/ends: each clip's first frame and the end of its
    last frame, in seconds.
    """

    path: str
    clips: np.ndarray
    frame_indices: np.ndarray
    num_frames: int
    fps: float

    @property
    def starts(self) -> np.ndarray:
        return self.frame_indices.min(axis=1) / self.fps

    @property
    def ends(self) -> np.ndarray:
        return (self.frame_indices.max(axis=1) + 1) / self.fps


def _open(path: str | Path) -> cv2.VideoCapture:
    source = str(path)
    if "://" not in source and not Path(source).exists():
        raise VideoError(path, "no such file")
    if "://" not in source and Path(source).is_file() and Path(source).stat().st_size == 0:
        raise VideoError(path, "file is empty")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise VideoError(path, "OpenCV cannot open it (not a video, unsupported codec, or corrupt container)")
    return capture


def probe(path: str | Path) -> VideoInfo:
    """Read the container's header: frame count, fps and size."""
    capture = _open(path)
    try:
        return VideoInfo(
            path=str(path),
            num_frames=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
            fps=float(capture.get(cv2.CAP_PROP_FPS)) or 25.0,
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()


def count_frames(path: str | Path) -> int:
    """Count frames by walking the stream with grab(): for streams whose header has no count."""
    capture = _open(path)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


class _EndedEarly(Exception):
    def __init__(self, frames_seen: int) -> None:
        self.frames_seen = frames_seen


def read_frames(path: str | Path, indices: np.ndarray, short_side: int | None = None) -> dict[int, np.ndarray]:
    """Decode the given frame indices (any order, repeats allowed) as RGB, resized to `short_side` if given.

    Returns {index: frame}. Raises _EndedEarly(n) when the stream has only n
    frames, fewer than an index asked for (the header's count was wrong).
    """
    wanted = sorted(set(int(i) for i in np.asarray(indices).reshape(-1)))
    capture = _open(path)
    frames: dict[int, np.ndarray] = {}
    try:
        position = 0
        for index in wanted:
            while position <= index:
                if not capture.grab():
                    raise _EndedEarly(position)
                position += 1
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                raise VideoError(path, f"frame {index} could not be decoded")
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frames[index] = frame if short_side is None else resize_short_side(frame, short_side)
    finally:
        capture.release()
    return frames


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Resize so the shorter side is `short_side`, keeping the aspect ratio (mmcv rescale rounding, bilinear)."""
    height, width = frame.shape[:2]
    scale = short_side / min(height, width)
    size = (int(width * scale + 0.5), int(height * scale + 0.5))
    if size == (width, height):
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def crop_offsets(height: int, width: int, crop: tuple[int, int], num_crops: int) -> list[tuple[int, int]]:
    """(top, left) of each crop: CenterCrop, or ThreeCrop's left/right/middle (top/bottom/middle if portrait)."""
    crop_h, crop_w = crop
    if crop_h > height or crop_w > width:
        raise ValueError(f"crop {crop_h}x{crop_w} is larger than the resized frame {height}x{width}")
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if num_crops == 1:
        return [(top, left)]
    if num_crops != 3:
        raise ValueError(f"crops must be 1 (center) or 3 (three along the long side), got {num_crops}")
    if width - crop_w >= height - crop_h:
        step = (width - crop_w) // 2
        return [(top, 0), (top, 2 * step), (top, step)]
    step = (height - crop_h) // 2
    return [(0, left), (2 * step, left), (step, left)]


def load_clips(
    path: str | Path,
    sampling: Sampling,
    crop: tuple[int, int],
    num_crops: int = 1,
    short_side: int | None = None,
) -> VideoClips:
    """Decode, sample, resize and crop one video into uint8 clips of the model's geometry.

    `crop` is (H, W) from the model; `short_side` defaults to the smallest
    that covers the crop (min(H, W) for the square crops of the official
    pipeline: Resize(-1, 224) + ThreeCrop(224)).
    """
    short_side = short_side or max(crop)
    info = probe(path)
    num_frames = info.num_frames or count_frames(path)
    if num_frames == 0:
        raise VideoError(path, "no frames could be decoded (empty or corrupt stream)")
    indices = frame_indices(num_frames, sampling)
    try:
        decoded = read_frames(path, indices, short_side)
    except _EndedEarly as ended:
        if ended.frames_seen == 0:
            raise VideoError(path, "no frames could be decoded (empty, truncated or corrupt stream)") from None
        log.warning("%s: header says %d frames, only %d decode (truncated?); sampling those", path, num_frames, ended.frames_seen)
        num_frames = ended.frames_seen
        indices = frame_indices(num_frames, sampling)
        decoded = read_frames(path, indices, short_side)
    first = decoded[int(indices[0, 0])]
    offsets = crop_offsets(first.shape[0], first.shape[1], crop, num_crops)
    clips = np.empty((indices.shape[0], num_crops, indices.shape[1], crop[0], crop[1], 3), dtype=np.uint8)
    for (k, t), index in np.ndenumerate(indices):  # one copy per view frame, straight into the batch
        frame = decoded[int(index)]
        for c, (y, x) in enumerate(offsets):
            clips[k, c, t] = frame[y : y + crop[0], x : x + crop[1]]
    return VideoClips(
        path=str(path),
        clips=clips,
        frame_indices=indices,
        num_frames=num_frames,
        fps=info.fps,
    )
