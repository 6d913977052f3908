"""Video files to uint8 views: OpenCV decode of only the needed frames, a resize, crops.

Frames are skipped with `grab()` and only kept frames are `retrieve()`d
(converted to pixels): `CAP_PROP_POS_FRAMES` seeking is inexact on many
containers (opencv issues 9053, 4890). Each kept frame is converted BGR->RGB and
resized as soon as it is decoded, so a 4K video never sits in memory at full size.
For a video model (`ClipCrops`) preprocessing follows the official test
pipeline: Resize(short side, keep ratio, bilinear, mmcv rounding) then
CenterCrop or ThreeCrop; frames for an image model get the image evaluation's
(`vswin.client.image.ImageCrop`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


class FrameViews(Protocol):
    """How a decoded RGB frame becomes views: `resize` once per frame, then `num_crops` crops of `crop`
    (H, W) at `offsets`."""

    crop: tuple[int, int]
    num_crops: int

    def resize(self, frame: np.ndarray) -> np.ndarray: ...

    def offsets(self, height: int, width: int) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class ClipCrops:
    """The video test pipeline: short side to `short_side` (default: the crop's longer side), bilinear with
    mmcv's rounding, then CenterCrop (1) or ThreeCrop (3) of `crop`."""

    crop: tuple[int, int]
    num_crops: int = 1
    short_side: int | None = None

    def resize(self, frame: np.ndarray) -> np.ndarray:
        return resize_short_side(frame, self.short_side or max(self.crop))

    def offsets(self, height: int, width: int) -> list[tuple[int, int]]:
        return crop_offsets(height, width, self.crop, self.num_crops)


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


class _FrameCache:
    """Walks the stream forward once, keeping each frame from its decode until the last clip group using it.

    `last_use` maps every needed frame index to the last group that needs it;
    frames passed on the way to another index are retrieved too when a later
    group needs them, so the stream never has to be reopened.
    """

    def __init__(self, path: str | Path, last_use: dict[int, int], resize: Callable[[np.ndarray], np.ndarray]) -> None:
        self.path = path
        self.last_use = last_use
        self.resize = resize
        self.capture = _open(path)
        self.position = 0
        self.frames: dict[int, np.ndarray] = {}

    def get(self, index: int) -> np.ndarray:
        while index not in self.frames:
            if self.position > index:
                raise AssertionError(f"frame {index} was passed without being kept")  # last_use is complete
            if not self.capture.grab():
                raise _EndedEarly(self.position)
            if self.position in self.last_use:
                ok, frame = self.capture.retrieve()
                if not ok or frame is None:
                    raise VideoError(self.path, f"frame {self.position} could not be decoded")
                self.frames[self.position] = self.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            self.position += 1
        return self.frames[index]

    def release(self, group: int) -> None:
        """Forget the frames no group after `group` needs."""
        for index in [i for i in self.frames if self.last_use[i] <= group]:
            del self.frames[index]

    def close(self) -> None:
        self.capture.release()


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


def iter_clip_batches(
    path: str | Path,
    sampling: Sampling,
    crop: tuple[int, int],
    num_crops: int = 1,
    short_side: int | None = None,
    batch_clips: int | None = None,
) -> Iterator[VideoClips]:
    """Decode, sample, resize and crop one video into uint8 clips of the model's geometry, in groups.

    `crop` is (H, W) from the model; `short_side` defaults to the smallest that
    covers the crop (min(H, W) for the square crops of the official pipeline:
    Resize(-1, 224) + ThreeCrop(224)). See iter_views.
    """
    return iter_views(path, sampling, ClipCrops(crop, num_crops, short_side), batch_clips)


def iter_views(
    path: str | Path, sampling: Sampling, views: FrameViews, batch_clips: int | None = None
) -> Iterator[VideoClips]:
    """Decode and sample one video and make each sampled frame into `views`, in groups of clips.

    Yields consecutive groups of at most `batch_clips` clips (default: all in
    one group), decoding the stream once and holding only the frames that
    pending groups need, so sliding windows over a long video run in bounded
    memory.

    If the container promises more frames than decode (a truncated file), the
    video is resampled over the frames that exist when that shows up before the
    first group; later, VideoError.
    """
    info = probe(path)
    num_frames = info.num_frames or count_frames(path)
    if num_frames == 0:
        raise VideoError(path, "no frames could be decoded (empty or corrupt stream)")
    groups = _groups(path, sampling, views, batch_clips, num_frames, info.fps)
    try:
        first = next(groups)
    except _EndedEarly as ended:
        if ended.frames_seen == 0:
            raise VideoError(path, "no frames could be decoded (empty, truncated or corrupt stream)") from None
        log.warning("%s: header says %d frames, only %d decode (truncated?); sampling those", path, num_frames, ended.frames_seen)
        groups = _groups(path, sampling, views, batch_clips, ended.frames_seen, info.fps)
        first = next(groups)
    yield first
    try:
        yield from groups
    except _EndedEarly as ended:
        raise VideoError(path, f"stream ended at frame {ended.frames_seen} of {num_frames} (truncated?)") from None


def _groups(
    path: str | Path,
    sampling: Sampling,
    views: FrameViews,
    batch_clips: int | None,
    num_frames: int,
    fps: float,
) -> Iterator[VideoClips]:
    indices = frame_indices(num_frames, sampling)
    size = batch_clips or len(indices)
    groups = [indices[start : start + size] for start in range(0, len(indices), size)]
    last_use = {int(i): g for g, group in enumerate(groups) for i in np.unique(group)}
    cache = _FrameCache(path, last_use, views.resize)
    crop, num_crops = views.crop, views.num_crops
    try:
        for g, group in enumerate(groups):
            first = cache.get(int(group[0, 0]))
            offsets = views.offsets(first.shape[0], first.shape[1])
            clips = np.empty((group.shape[0], num_crops, group.shape[1], crop[0], crop[1], 3), dtype=np.uint8)
            for (k, t), index in np.ndenumerate(group):  # one copy per view frame, straight into the batch
                frame = cache.get(int(index))
                for c, (y, x) in enumerate(offsets):
                    clips[k, c, t] = frame[y : y + crop[0], x : x + crop[1]]
            cache.release(g)
            yield VideoClips(path=str(path), clips=clips, frame_indices=group, num_frames=num_frames, fps=fps)
    finally:
        cache.close()


def load_clips(
    path: str | Path,
    sampling: Sampling,
    crop: tuple[int, int],
    num_crops: int = 1,
    short_side: int | None = None,
) -> VideoClips:
    """All clips of one video at once: iter_clip_batches with a single group."""
    return next(iter_clip_batches(path, sampling, crop, num_crops, short_side))
