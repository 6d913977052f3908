"""Backbones of both families: keyword arguments, config round trips, dtypes, input shapes, wrong families."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vswin.model.backbone import Backbone, SwinBackbone, VideoSwinBackbone

VIDEO_ARGS = {"embed_dim": 12, "depths": (2, 1), "num_heads": (1, 2), "window_size": (4, 3, 5), "patch_size": (2, 4, 4),
              "mlp_ratio": 2.0, "qkv_bias": False, "patch_norm": False}
IMAGE_ARGS = {"img_size": 64, "patch_size": 4, "embed_dim": 12, "depths": (2, 1), "num_heads": (1, 2),
              "window_size": (5, 7), "mlp_ratio": 2.0, "qkv_bias": False, "patch_norm": False}


@pytest.mark.parametrize(("cls", "args", "shape"), [
    (VideoSwinBackbone, VIDEO_ARGS, (1, 4, 40, 48, 3)),
    (SwinBackbone, IMAGE_ARGS, (1, 40, 56, 3)),
])
def test_get_config_round_trips_every_argument(cls, args, shape):
    backbone = cls(**args)
    config = backbone.get_config()
    assert {key: config[key] for key in args} == args
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(backbone))
    assert type(again) is cls and again.get_config() == config
    rebuilt.set_weights(backbone.get_weights())
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(backbone(x)), atol=1e-6)


def test_image_windows_per_stage_are_clamped_at_img_size():
    # img_size 64 -> 16 and 8 patches per side: window 5 stays, window 7 fits the 8x8 stage and stays.
    assert SwinBackbone(**IMAGE_ARGS).stage_windows == [(1, 5, 5), (1, 7, 7)]
    # A window larger than a stage is clamped to it, as the original sizes its table.
    clamped = SwinBackbone(**{**IMAGE_ARGS, "window_size": 12})
    assert clamped.stage_windows == [(1, 12, 12), (1, 8, 8)]
    assert tuple(clamped.stages[1].blocks[0].attn.relative_position_bias_table.shape) == (15 * 15, 2)


@pytest.mark.parametrize(("cls", "args", "shape", "expected"), [
    # Non-square and sizes that are multiples of nothing: padding in patch embedding, windows and merging.
    (VideoSwinBackbone, VIDEO_ARGS, (2, 5, 37, 61, 3), (2, 3, 5, 8, 24)),
    (SwinBackbone, IMAGE_ARGS, (2, 37, 61, 3), (2, 5, 8, 24)),
])
def test_any_input_size_and_mixed_precision(cls, args, shape, expected):
    backbone = cls(**args, dtype="mixed_bfloat16")
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    out, attention = backbone(x, return_attention=True)
    assert tuple(out.shape) == expected and out.dtype == "bfloat16"
    assert [tuple(a.shape) for a in attention] == backbone.attention_shapes(shape)
    assert all(a.dtype == "float32" for a in attention)
    assert np.isfinite(np.asarray(out, dtype="float32")).all()


def test_an_image_is_refused_by_a_video_backbone_and_the_reverse():
    with pytest.raises(ValueError, match=r"VideoSwinBackbone takes clips \[B, T, H, W, 3\].*use an image model"):
        VideoSwinBackbone(**VIDEO_ARGS)(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"SwinBackbone takes images \[B, H, W, 3\].*use a video model"):
        SwinBackbone(**IMAGE_ARGS)(np.zeros((1, 2, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match="got shape"):
        SwinBackbone(**IMAGE_ARGS)(np.zeros((1, 32, 32, 4), "float32"))


def test_from_preset_picks_the_family_and_refuses_the_other():
    backbone = Backbone.from_preset("swin_tiny_patch4_window7_224")
    assert type(backbone) is SwinBackbone and backbone.features_dim == 768
    with pytest.raises(ValueError, match="is a video model; build it with VideoSwinBackbone"):
        SwinBackbone.from_preset("swin_tiny_patch244_window877_kinetics400_1k")


def test_from_preset_loads_the_backbone_of_a_checkpoint(micro_checkpoint, micro_arch, micro_reference):
    backbone = VideoSwinBackbone.from_preset(micro_arch, checkpoint=micro_checkpoint)
    clips = np.transpose(micro_reference["input_ncthw"], (0, 2, 3, 4, 1))
    feature_map = np.transpose(micro_reference["backbone_ncdhw"], (0, 2, 3, 4, 1))
    assert np.abs(np.asarray(backbone(clips)) - feature_map).max() <= 1e-4
