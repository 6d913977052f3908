"""Images to uint8 model input the way the official Swin evaluation makes it (Pillow, as torchvision does).

The evaluation (Swin-Transformer's data/build.py, timm's eval transform) is
`Resize(int(size / crop_ratio), bicubic)` on the short side, keeping the
ratio, then `CenterCrop(size)`; the 384 models resize to size x size without a
crop. Both run on PIL images, so this module decodes and resizes with Pillow
(antialiased, unlike OpenCV's bicubic) and rounds sizes and crop offsets as
torchvision does. Normalisation happens in the exported graph: the result
stays uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vswin import contract
from vswin.client.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def is_image_file(path: str | Path) -> bool:
    """Whether `path` names an image (by its suffix: jpg, jpeg, png, webp) rather than a video."""
    return Path(str(path).split("?")[0]).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 RGB [H, W, 3] (Pillow, `.convert("RGB")` as the original loader)."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise ImageError(path, "file is empty")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise ImageError(path, f"cannot decode it: {err}") from None


def _resample(interpolation: str) -> int:
    from PIL import Image

    return {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[interpolation]


def resized_size(height: int, width: int, preprocessing: contract.Preprocessing) -> tuple[int, int]:
    """(H, W) after the evaluation's Resize: the short side to `resize_to` with the long side truncated
    (torchvision's rule), or size x size for `squash`."""
    if preprocessing.resize_mode == "squash":
        return preprocessing.size, preprocessing.size
    short, long = min(height, width), max(height, width)
    new_short, new_long = preprocessing.resize_to, int(preprocessing.resize_to * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize_image(image: np.ndarray, preprocessing: contract.Preprocessing) -> np.ndarray:
    """uint8 RGB [H, W, 3] resized as the evaluation does, with Pillow and the preprocessing's interpolation."""
    from PIL import Image

    height, width = resized_size(image.shape[0], image.shape[1], preprocessing)
    if (height, width) == image.shape[:2]:
        return image
    resample = _resample(preprocessing.interpolation)
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), resample))


def center_offset(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of torchvision's CenterCrop of size x size: int(round(margin / 2)) on each axis."""
    if size > height or size > width:
        raise ValueError(f"crop {size}x{size} is larger than the resized image {height}x{width}")
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def preprocess_image(image: np.ndarray, preprocessing: contract.Preprocessing) -> np.ndarray:
    """uint8 RGB [H, W, 3] of any size -> the model's uint8 input [size, size, 3]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"an image must be uint8 RGB [H, W, 3], got {image.dtype} {list(image.shape)}")
    resized = resize_image(image, preprocessing)
    size = preprocessing.size
    top, left = center_offset(resized.shape[0], resized.shape[1], size)
    return resized[top : top + size, left : left + size]


@dataclass(frozen=True)
class ImageCrop:
    """The image evaluation as `video.FrameViews`: what each frame of a video sent to an image model gets."""

    preprocessing: contract.Preprocessing

    @property
    def crop(self) -> tuple[int, int]:
        return self.preprocessing.size, self.preprocessing.size

    num_crops = 1

    def resize(self, frame: np.ndarray) -> np.ndarray:
        return resize_image(frame, self.preprocessing)

    def offsets(self, height: int, width: int) -> list[tuple[int, int]]:
        return [center_offset(height, width, self.preprocessing.size)]


@dataclass(frozen=True)
class ImageView:
    """One image ready to send: `view` uint8 [size, size, 3]; `height`/`width` of the original."""

    path: str
    view: np.ndarray
    height: int
    width: int


def load_image(source: str | Path | np.ndarray, preprocessing: contract.Preprocessing) -> ImageView:
    """An image file, or a uint8 RGB array [H, W, 3], preprocessed for the model."""
    if isinstance(source, np.ndarray):
        image, path = source, "<array>"
    else:
        image, path = read_image(source), str(source)
    return ImageView(path, preprocess_image(image, preprocessing), image.shape[0], image.shape[1])
