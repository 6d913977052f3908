"""Presets of the collection, construction from JSON, and config round trips."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import vswin.model
from vswin.model.backbone import VideoSwin, VideoSwinBackbone

# Parameters reported in the Video Swin paper (with the K400 head), rounded there to 0.1M.
PAPER_PARAMS_M = {
    "swin_tiny_patch244_window877_kinetics400_1k": 28.2,
    "swin_small_patch244_window877_kinetics400_1k": 49.8,
    "swin_base_patch244_window877_kinetics400_1k": 88.1,
}


def test_collection_has_the_six_models():
    assert len(vswin.model.PRESETS) == 6
    dims = {name: config.features_dim for name, config in vswin.model.PRESETS.items()}
    assert dims["swin_tiny_patch244_window877_kinetics400_1k"] == 768
    assert dims["swin_base_patch244_window1677_sthv2"] == 1024
    assert vswin.model.PRESETS["swin_base_patch244_window1677_sthv2"].window_size == (16, 7, 7)
    assert vswin.model.PRESETS["swin_base_patch244_window877_kinetics600_22k"].num_classes == 600


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS_M))
def test_preset_parameter_counts_match_the_paper(name):
    model = vswin.model.build(name)
    assert abs(model.count_params() / 1e6 - PAPER_PARAMS_M[name]) <= 0.1


def test_config_from_fixture_json(micro_arch):
    config = vswin.model.get_config(micro_arch)
    data = json.loads(micro_arch.read_text())
    assert config.embed_dim == data["embed_dim"]
    assert config.features_dim == data["features_dim"]
    assert config.window_size == tuple(data["window_size"])


def test_unknown_architecture_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture 'swin_huge'"):
        vswin.model.get_config("swin_huge")
    bad = tmp_path / "arch.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        vswin.model.get_config(bad)
    bad.write_text(json.dumps({"embed_dim": 24, "depths": [2, 2], "num_heads": [1, 5]}))
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        vswin.model.get_config(bad)


def test_get_config_round_trips(micro_arch):
    model = vswin.model.build(micro_arch)
    clone = VideoSwin.from_config(model.get_config())
    clone.build((1, 2, 64, 64, 3))
    clone.set_weights(model.get_weights())
    assert clone.config == model.config
    clips = np.random.default_rng(1).normal(size=(1, 4, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(clone(clips)["features"]), np.asarray(model(clips)["features"]), atol=1e-6)

    backbone = model.backbone
    config = backbone.get_config()
    rebuilt = VideoSwinBackbone.from_config(config)
    assert rebuilt.get_config() == config
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(backbone)).get_config() == config


def test_custom_window_and_mixed_precision(micro_arch):
    config = vswin.model.get_config(micro_arch)
    custom = vswin.model.VideoSwinConfig.from_dict({**config.to_dict(), "window_size": (4, 3, 5)})
    model = vswin.model.build(custom, dtype="mixed_bfloat16")
    out = model(np.zeros((1, 8, 64, 96, 3), "float32"))
    assert out["features"].dtype == "float32" and out["logits"].dtype == "float32"
    assert tuple(out["feature_map"].shape) == (1, 4, 2, 3, 192)
