"""Image preprocessing as the official Swin evaluation does it (torchvision's Resize and CenterCrop on PIL images)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vswin import contract
from vswin.client import ImageError
from vswin.client.image import (
    ImageCrop,
    center_offset,
    is_image_file,
    load_image,
    preprocess_image,
    read_image,
    resized_size,
)

AT_224 = contract.image_preprocessing(224)  # resize the short side to 256, crop 224
AT_384 = contract.image_preprocessing(384)  # resize to 384 x 384


@pytest.mark.parametrize("shape, expected", [
    ((480, 640), (256, 341)),  # landscape: long side int(256 * 640 / 480) = int(341.33)
    ((640, 480), (341, 256)),  # portrait
    ((500, 375), (341, 256)),  # int(256 * 500 / 375) = int(341.33)
    ((256, 300), (256, 300)),  # already there
    ((100, 100), (256, 256)),  # upscaled
])  # fmt: skip
def test_short_side_resize_keeps_the_ratio_and_truncates_the_long_side_like_torchvision(shape, expected):
    assert resized_size(*shape, AT_224) == expected


def test_the_384_evaluation_squashes_to_a_square_without_a_crop():
    assert resized_size(480, 640, AT_384) == (384, 384)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert preprocess_image(image, AT_384).shape == (384, 384, 3)


def test_center_crop_rounds_the_margin_like_torchvision():
    assert center_offset(256, 341, 224) == (16, 58)  # margins 32 and 117: 58.5 rounds to even
    assert center_offset(259, 256, 224) == (18, 16)  # 17.5 rounds to even: 18
    assert center_offset(257, 256, 224) == (16, 16)  # 16.5 rounds to even: 16
    with pytest.raises(ValueError, match="larger than the resized image"):
        center_offset(200, 300, 224)


def test_preprocess_is_pillow_bicubic_resize_then_the_center_crop():
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(image).resize((341, 256), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(preprocess_image(image, AT_224), resized[16:240, 58:282])
    bilinear = contract.Preprocessing(family=contract.IMAGE, size=224, crop_ratio=0.875, interpolation="bilinear",
                                      clip_len=1, num_clips=1, num_crops=1)  # fmt: skip
    assert not np.array_equal(preprocess_image(image, bilinear), preprocess_image(image, AT_224))


def test_frames_of_a_video_get_the_same_preprocessing_as_an_image():
    frame = np.random.default_rng(2).integers(0, 256, (272, 640, 3), dtype=np.uint8)
    views = ImageCrop(AT_224)
    resized = views.resize(frame)
    [(top, left)] = views.offsets(*resized.shape[:2])
    np.testing.assert_array_equal(resized[top : top + 224, left : left + 224], preprocess_image(frame, AT_224))
    assert (views.crop, views.num_crops) == ((224, 224), 1)


def test_images_decode_to_rgb_whatever_their_mode(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "gray.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])
    gray = read_image(tmp_path / "gray.webp")
    assert gray.shape == (20, 30, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    view = load_image(tmp_path / "a.png", contract.image_preprocessing(16))
    assert (view.view.shape, view.height, view.width, view.path) == ((16, 16, 3), 20, 30, str(tmp_path / "a.png"))


def test_unreadable_images_are_image_errors_naming_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    good = tmp_path / "cut.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    for name, reason in (("missing.jpg", "no such file"), ("empty.jpg", "file is empty"),
                         ("text.png", "cannot decode it"), ("cut.jpg", "cannot decode it")):  # fmt: skip
        with pytest.raises(ImageError, match=reason) as err:
            read_image(tmp_path / name)
        assert err.value.path == str(tmp_path / name)
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess_image(np.zeros((10, 10), np.uint8), AT_224)


def test_images_are_told_from_videos_by_their_suffix():
    assert all(is_image_file(name) for name in ("a.jpg", "b.JPEG", "c.png", "d.webp", "http://x/e.jpg?size=2"))
    assert not any(is_image_file(name) for name in ("a.mp4", "b.avi", "c", "d.jpg.mp4"))
