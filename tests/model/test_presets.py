"""Presets of the collection, architecture JSON files, and parameter counts against the papers."""

from __future__ import annotations

import gc
import json

import keras
import pytest

import vswin.model
from vswin import contract
from vswin.model.presets import PRESETS, get_preset

# Parameters reported in the Video Swin paper (with the K400 head), rounded there to 0.1M.
VIDEO_PAPER_PARAMS_M = {
    "swin_tiny_patch244_window877_kinetics400_1k": 28.2,
    "swin_small_patch244_window877_kinetics400_1k": 49.8,
    "swin_base_patch244_window877_kinetics400_1k": 88.1,
}
# Swin (Liu et al. 2021, Table 1) and Swin-S3 (Chen et al. 2022) with the ImageNet-1k head, rounded to 1M.
IMAGE_PAPER_PARAMS_M = {
    "swin_tiny_patch4_window7_224": 28, "swin_small_patch4_window7_224": 50, "swin_base_patch4_window7_224": 88,
    "swin_base_patch4_window12_384": 88, "swin_large_patch4_window7_224": 197, "swin_large_patch4_window12_384": 197,
    "swin_s3_tiny_224": 28, "swin_s3_small_224": 50, "swin_s3_base_224": 71,
}
IN22K_CLASSES = 21841


def test_collection_has_six_video_and_thirteen_image_models():
    families = [preset.family for preset in PRESETS.values()]
    assert families.count(contract.VIDEO) == 6 and families.count(contract.IMAGE) == 13
    assert PRESETS["swin_tiny_patch244_window877_kinetics400_1k"].features_dim == 768
    assert PRESETS["swin_base_patch244_window1677_sthv2"].backbone["window_size"] == (16, 7, 7)
    assert PRESETS["swin_base_patch244_window877_kinetics600_22k"].num_classes == 600
    assert PRESETS["swin_large_patch4_window12_384_in22k"].num_classes == IN22K_CLASSES
    assert PRESETS["swin_s3_small_224"].backbone["window_size"] == (14, 14, 14, 7)
    assert all(preset.source and preset.dataset and preset.classes for preset in PRESETS.values())


def test_presets_carry_the_original_test_preprocessing():
    kinetics = PRESETS["swin_tiny_patch244_window877_kinetics400_1k"].preprocessing
    assert (kinetics.sampling, kinetics.clip_len, kinetics.frame_interval, kinetics.num_clips, kinetics.num_crops) == (
        "uniform", 32, 2, 4, 3)
    # configs/recognition/swin/swin_base_patch244_window1677_sthv2.py: one frame_uniform clip of 32, three crops.
    ssv2 = PRESETS["swin_base_patch244_window1677_sthv2"].preprocessing
    assert (ssv2.sampling, ssv2.clip_len, ssv2.num_clips, ssv2.num_crops, ssv2.size) == ("segments", 32, 1, 3, 224)
    assert PRESETS["swin_tiny_patch4_window7_224"].preprocessing == contract.image_preprocessing(224)
    assert PRESETS["swin_base_patch4_window12_384"].preprocessing == contract.image_preprocessing(384)


def build_uninitialized(name: str):
    """The full-size model with every weight created at its shape and none initialised: Keras defers the
    initialisers of variables made in a StatelessScope (and, told so, does not run them when it ends), and a
    parameter count needs only the shapes."""
    with keras.StatelessScope(initialize_variables=False):
        return vswin.model.build(name)


@pytest.mark.slow  # builds full-size models
@pytest.mark.parametrize("name", sorted(VIDEO_PAPER_PARAMS_M))
def test_video_parameter_counts_match_the_paper(name):
    model = build_uninitialized(name)
    assert abs(model.count_params() / 1e6 - VIDEO_PAPER_PARAMS_M[name]) <= 0.1


@pytest.mark.slow  # builds full-size models
@pytest.mark.parametrize("name", sorted(IMAGE_PAPER_PARAMS_M))
def test_image_parameter_counts_match_the_papers(name):
    model = build_uninitialized(name)
    params = model.count_params()
    assert abs(params / 1e6 - IMAGE_PAPER_PARAMS_M[name]) <= 0.5, params
    in22k = PRESETS.get(f"{name}_in22k")
    if in22k is not None:  # the same network with the 21841-class head
        assert build_uninitialized(in22k).count_params() == params + (IN22K_CLASSES - 1000) * (model.features_dim + 1)
    del model
    keras.backend.clear_session()
    gc.collect()


def test_video_arch_json_from_the_fixture(micro_arch):
    preset = get_preset(micro_arch)
    data = json.loads(micro_arch.read_text())
    assert preset.family == contract.VIDEO and preset.name == "vswin_micro_w877"
    assert preset.backbone["embed_dim"] == data["embed_dim"] and preset.features_dim == data["features_dim"]
    assert preset.backbone["window_size"] == tuple(data["window_size"])
    assert preset.preprocessing == contract.video_preprocessing()


def test_image_arch_json_uses_the_original_constructor_names(tmp_path):
    path = tmp_path / "swin_micro.json"
    path.write_text(json.dumps({"img_size": 192, "patch_size": 4, "embed_dim": 24, "depths": [2, 2, 2, 2],
                                "num_heads": [1, 2, 3, 6], "window_size": [12, 8, 12, 7], "num_classes": 10}))
    preset = get_preset(path)
    assert (preset.family, preset.name, preset.num_classes) == (contract.IMAGE, "swin_micro", 10)
    assert preset.preprocessing == contract.image_preprocessing(192)
    backbone = vswin.model.build(path).backbone
    # Tables sized as the original sizes them at img_size: stages of 48, 24, 12, 6 patches.
    assert backbone.stage_windows == [(1, 12, 12), (1, 8, 8), (1, 12, 12), (1, 6, 6)]
    assert get_preset(preset.to_arch()) == preset


@pytest.mark.parametrize(("arch", "message"), [
    ({"embed_dim": 24, "depths": [2, 2], "num_heads": [1, 5]}, "not divisible by 5 heads"),
    ({"embed_dim": 24, "depths": [2, 2], "num_heads": [1]}, "one entry per stage"),
    ({"img_size": 224, "embed_dim": 24, "depths": [2, 2], "num_heads": [1, 2], "window_size": [7]},
     "one entry per stage"),
    ({"embed_dim": 24, "depths": [2], "num_heads": [1], "window_size": [7, 7]}, "needs 3 entries"),
    ({"family": "audio", "embed_dim": 24, "depths": [2], "num_heads": [1]}, "family must be one of"),
    ({"depths": [2], "num_heads": [1]}, "lacks"),
])
def test_bad_architectures_are_clear_errors(tmp_path, arch, message):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    with pytest.raises(ValueError, match=message):
        get_preset(path)


def test_unknown_architecture_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture 'swin_huge'"):
        get_preset("swin_huge")
    bad = tmp_path / "arch.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        get_preset(bad)
    with pytest.raises(ValueError, match="does not exist"):
        get_preset(tmp_path / "absent.json")
