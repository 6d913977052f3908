"""Tasks and preprocessor: outputs, heads, from_preset with and without checkpoints, config round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import vswin.model
from vswin import contract
from vswin.model import SwinClassifier, SwinFeatureExtractor, SwinPreprocessor
from vswin.model.backbone import SwinBackbone

IMAGE_ARCH = {"name": "swin_nano", "img_size": 64, "embed_dim": 12, "depths": [2, 2], "num_heads": [1, 2],
              "window_size": 4, "num_classes": 5}


def test_image_extractor_returns_pooled_features_map_and_logits():
    model = vswin.model.build(IMAGE_ARCH)
    images = np.random.default_rng(0).normal(size=(3, 64, 48, 3)).astype("float32")
    out = model(images)
    assert set(out) == {"features", "feature_map", "logits"}
    assert tuple(out["feature_map"].shape) == (3, 8, 6, 24)  # H/8, W/8 after one merge of this 2-stage net
    np.testing.assert_allclose(np.asarray(out["features"]), np.asarray(out["feature_map"]).mean(axis=(1, 2)),
                               atol=1e-6)
    assert tuple(out["logits"].shape) == (3, 5)
    assert model.name == "swin_nano" and model.family == contract.IMAGE


def test_extractor_without_head_and_classifier_with_new_classes(micro_checkpoint, micro_arch, micro_reference):
    headless = SwinFeatureExtractor.from_preset(micro_arch, checkpoint=micro_checkpoint, include_head=False)
    assert not headless.has_head
    clips = np.transpose(micro_reference["input_ncthw"], (0, 2, 3, 4, 1))
    assert set(headless(clips)) == {"features", "feature_map"}
    assert np.abs(np.asarray(headless(clips)["features"]) - micro_reference["features"]).max() <= 1e-4

    same = SwinClassifier.from_preset(micro_arch, checkpoint=micro_checkpoint)
    assert np.abs(np.asarray(same(clips)) - micro_reference["logits"]).max() <= 1e-4
    new = SwinClassifier.from_preset(micro_arch, checkpoint=micro_checkpoint, num_classes=3)
    assert tuple(new(clips).shape) == (2, 3)  # a new head; the backbone is the checkpoint's
    np.testing.assert_allclose(np.asarray(new.backbone(clips)), np.asarray(same.backbone(clips)), atol=1e-6)


def test_include_head_needs_a_checkpoint_with_one(tmp_path, micro_checkpoint, micro_arch):
    import torch

    state = torch.load(micro_checkpoint, weights_only=True)["state_dict"]
    path = tmp_path / "backbone_only.pth"
    torch.save({"state_dict": {k: v for k, v in state.items() if k.startswith("backbone.")}}, path)
    with pytest.raises(ValueError, match="has no classification head"):
        SwinFeatureExtractor.from_preset(micro_arch, checkpoint=path, include_head=True)


def test_preprocessor_normalises_uint8_with_the_preset_statistics():
    preprocessor = SwinPreprocessor(contract.image_preprocessing(384))
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    expected = (pixels.astype("float32") - np.array(contract.MEAN, "float32")) / np.array(contract.STD, "float32")
    out = preprocessor(pixels)
    assert out.dtype == "float32"
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)
    assert SwinPreprocessor.from_config(preprocessor.get_config()).preprocessing == contract.image_preprocessing(384)


def test_tasks_carry_their_preset_preprocessing():
    assert vswin.model.build("swin_base_patch244_window1677_sthv2", include_head=False).preprocessor.preprocessing \
        == vswin.model.PRESETS["swin_base_patch244_window1677_sthv2"].preprocessing
    with pytest.raises(ValueError, match="preprocessor is for video input, the backbone takes image input"):
        SwinFeatureExtractor(SwinBackbone(img_size=32, embed_dim=12, depths=(1,), num_heads=(1,)),
                             preprocessor=SwinPreprocessor(contract.video_preprocessing()))


@pytest.mark.parametrize("cls", [SwinFeatureExtractor, SwinClassifier])
def test_task_config_round_trips(cls):
    task = cls.from_preset(IMAGE_ARCH)
    config = task.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(task))
    assert type(clone) is cls and clone.get_config() == config
    assert clone.preprocessor.preprocessing == task.preprocessor.preprocessing
    clone.set_weights(task.get_weights())
    images = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(keras.tree.flatten(clone(images))[0]),
                               np.asarray(keras.tree.flatten(task(images))[0]), atol=1e-6)


def test_architecture_reads_back_as_the_same_preset():
    task = vswin.model.build("swin_s3_tiny_224", include_head=False)
    preset = vswin.model.get_preset(task.architecture())
    assert preset.backbone == vswin.model.PRESETS["swin_s3_tiny_224"].backbone
    assert preset.name == "swin_s3_tiny_224"


def test_mixed_precision_outputs_stay_float32():
    model = vswin.model.build(IMAGE_ARCH, dtype="mixed_bfloat16")
    out = model(np.zeros((1, 64, 64, 3), "float32"), return_attention=True)
    assert all(out[key].dtype == "float32" for key in ("features", "feature_map", "logits"))
    assert all(attention.dtype == "float32" for attention in out["attention"])
    assert model.backbone.compute_dtype == "bfloat16"


def test_the_model_does_not_import_conversion(subprocess_env):
    """Conversion depends on the model, never the reverse: building a model loads no checkpoint code."""
    import subprocess
    import sys

    code = ("import sys, vswin.model; vswin.model.build('swin_tiny_patch4_window7_224', include_head=False); "
            "print(sorted(m for m in ('vswin.model.convert', 'vswin.model.checkpoint_files', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
