"""The exported image model: the video signature set adapted to `images`, parity, metadata, warmup, attention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import vswin.model
from tests.conftest import IMAGE_REFERENCE
from vswin import contract
from vswin.export.warmup import read_warmup

TOLERANCE = 1e-4
IMAGES_SHAPE = [None, 224, 224, 3]
PINNED_OUTPUTS = {
    "serving_default": {"features"},
    "features_graph": {"features"},
    "features_float": {"features"},
    "feature_map": {"feature_map"},
    "classify": {"logits", "probabilities", "top_k_scores", "top_k_classes", "top_k_labels"},
    "attention": {"attention_stage1_block1", "attention_stage3_block0", "attention_stage3_block1"},
    "metadata": {"metadata"},
}


@pytest.fixture(scope="module")
def loaded(image_loaded):
    return image_loaded


@pytest.fixture(scope="module")
def in_process():
    return vswin.model.load(IMAGE_REFERENCE / "swin_micro_w7.pth", IMAGE_REFERENCE / "swin_micro_w7.json")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)


def test_signatures_take_images_of_the_preset_size(loaded):
    assert set(loaded.signatures) == set(PINNED_OUTPUTS)
    for name, outputs in PINNED_OUTPUTS.items():
        if name == "metadata":
            continue
        _, inputs = loaded.signatures[name].structured_input_signature
        assert list(inputs) == ["images"]
        assert inputs["images"].shape.as_list() == IMAGES_SHAPE
        assert inputs["images"].dtype == (tf.float32 if name == "features_float" else tf.uint8)
        assert set(loaded.signatures[name].structured_outputs) == outputs


def test_features_float_matches_the_original(loaded):
    with np.load(IMAGE_REFERENCE / "swin_micro_w7.npz") as reference:
        images, expected = np.transpose(reference["input_nchw"], (0, 2, 3, 1)), reference["features"]
    features = loaded.signatures["features_float"](images=tf.constant(images))["features"].numpy()
    assert np.abs(features - expected).max() <= TOLERANCE


def test_uint8_signatures_normalise_in_the_graph(loaded, in_process, images):
    expected = in_process(in_process.preprocessor(images))
    for name in ("serving_default", "features_graph"):
        got = loaded.signatures[name](images=tf.constant(images))["features"].numpy()
        assert np.abs(got - np.asarray(expected["features"])).max() <= TOLERANCE, name
    feature_map = loaded.signatures["feature_map"](images=tf.constant(images))["feature_map"].numpy()
    assert feature_map.shape == (2, 7, 7, 96)
    assert np.abs(feature_map - np.asarray(expected["feature_map"])).max() <= TOLERANCE
    classified = loaded.signatures["classify"](images=tf.constant(images))
    assert np.abs(classified["logits"].numpy() - np.asarray(expected["logits"])).max() <= TOLERANCE
    top = classified["top_k_classes"].numpy()
    assert [[label.decode() for label in row] for row in classified["top_k_labels"].numpy()] == [
        [f"c{i}" for i in row] for row in top]


def test_attention_signature_splits_the_batch_out_of_the_windows(loaded, in_process, images):
    expected = in_process(in_process.preprocessor(images), return_attention=True)["attention"]
    got = loaded.signatures["attention"](images=tf.constant(images))
    # Block 1.1: 28x28 patches in 4x4 windows of 7x7 -> [B, 16, 2 heads, 49, 49]; stage 3: one 7x7 window.
    assert got["attention_stage1_block1"].shape == (2, 16, 2, 49, 49)
    for name, flat in (("attention_stage1_block1", 3), ("attention_stage3_block0", 6), ("attention_stage3_block1", 7)):
        reference = np.asarray(expected[flat])
        value = got[name].numpy()
        assert value.shape == (2, reference.shape[0] // 2, *reference.shape[1:])
        assert np.abs(value.reshape(reference.shape) - reference).max() <= TOLERANCE, name


def test_metadata_records_the_image_family_and_its_preprocessing(loaded, image_export):
    served = json.loads(loaded.signatures["metadata"](row=tf.constant([0]))["metadata"].numpy()[0])
    recorded = json.loads((image_export / "1" / "assets.extra" / "vswin.json").read_text())
    assert {key: recorded[key] for key in served} == served
    assert served["family"] == "image" and "clip" not in served
    assert served["image"] == {"height": 224, "width": 224, "channels": 3, "input_dtype": "uint8", "color": "RGB"}
    assert contract.Preprocessing.from_dict(served["preprocessing"]) == contract.image_preprocessing(224)
    assert served["attention_blocks"] == ["attention_stage1_block1", "attention_stage3_block0",
                                          "attention_stage3_block1"]
    assert (served["features_dim"], served["num_classes"]) == (96, 10)
    preset = vswin.model.get_preset(recorded["architecture"])
    assert preset.backbone == vswin.model.get_preset(IMAGE_REFERENCE / "swin_micro_w7.json").backbone


def test_warmup_sends_images_to_every_uint8_signature_but_attention(image_export):
    logs = read_warmup(image_export / "1" / "assets.extra" / "tf_serving_warmup_requests")
    seen = set()
    for log in logs:
        request = log.predict_log.request
        images = tf.make_ndarray(request.inputs["images"])
        assert list(request.inputs) == ["images"] and images.dtype == np.uint8 and images.shape[1:] == (224, 224, 3)
        seen.add((request.model_spec.signature_name, images.shape[0]))
    uint8 = {"serving_default", "features_graph", "feature_map", "classify"}
    # serving_default at every warmup size; the others share its forward pass and are warmed once
    assert seen == {("serving_default", 1), ("serving_default", 2)} | {(name, 1) for name in uint8}


def test_a_clip_is_refused_by_the_image_signatures(loaded):
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](images=tf.zeros((1, 2, 224, 224, 3), tf.uint8))
