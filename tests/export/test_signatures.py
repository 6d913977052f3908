"""The exported fixture model: pinned signatures, parity, both load paths, bad calls."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import vswin.model

TOLERANCE = 1e-4
FRAMES_SHAPE = [None, 16, 64, 64, 3]
PINNED_OUTPUTS = {
    "serving_default": {"features"},
    "features_graph": {"features"},
    "features_float": {"features"},
    "feature_map": {"feature_map"},
    "classify": {"logits", "probabilities", "top_k_scores", "top_k_classes", "top_k_labels"},
    "metadata": {"metadata"},
}
CLIP_SIGNATURES = sorted(set(PINNED_OUTPUTS) - {"metadata"})


@pytest.fixture(scope="module")
def loaded(micro_loaded):
    return micro_loaded


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(7).integers(0, 256, size=(2, 16, 64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def in_process(micro_checkpoint, micro_arch):
    return vswin.model.load(micro_checkpoint, micro_arch)


def test_signatures_and_specs_are_the_pinned_ones(loaded):
    assert set(loaded.signatures) == set(PINNED_OUTPUTS)
    for name in CLIP_SIGNATURES:
        _, inputs = loaded.signatures[name].structured_input_signature
        signature = loaded.signatures[name]
        key = "clips" if name == "features_float" else "frames"
        assert list(inputs) == [key]
        assert inputs[key].shape.as_list() == FRAMES_SHAPE
        assert inputs[key].dtype == (tf.float32 if key == "clips" else tf.uint8)
        assert set(signature.structured_outputs) == PINNED_OUTPUTS[name]


def test_metadata_signature_answers_the_preprocessing_of_vswin_json(loaded, micro_export):
    _, inputs = loaded.signatures["metadata"].structured_input_signature
    assert list(inputs) == ["row"] and inputs["row"].shape.as_list() == [None]
    answer = loaded.signatures["metadata"](row=tf.constant([0, 0, 0]))["metadata"].numpy()
    assert answer.shape == (3,) and len(set(answer)) == 1
    served = json.loads(answer[0])
    recorded = json.loads((micro_export / "1" / "assets.extra" / "vswin.json").read_text())
    assert served["family"] == "video" and served["preprocessing"]["clip_len"] == 16
    assert {key: recorded[key] for key in served} == served  # a subset of the file, same values


def test_features_float_matches_the_original(loaded, micro_reference):
    clips = np.transpose(micro_reference["input_ncthw"], (0, 2, 3, 4, 1))
    features = loaded.signatures["features_float"](clips=tf.constant(clips))["features"].numpy()
    assert features.dtype == np.float32
    assert np.abs(features - micro_reference["features"]).max() <= TOLERANCE


@pytest.mark.parametrize("signature", ["serving_default", "features_graph"])
def test_frames_signatures_normalise_in_the_graph(loaded, frames, in_process, signature):
    clips = in_process.preprocessor(frames)
    expected = np.asarray(in_process(clips)["features"])
    through_float = loaded.signatures["features_float"](clips=tf.constant(clips))["features"].numpy()
    got = loaded.signatures[signature](frames=tf.constant(frames))["features"].numpy()
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(got - through_float).max() <= TOLERANCE


def test_feature_map_and_classify(loaded, frames, in_process):
    expected = in_process(in_process.preprocessor(frames))
    feature_map = loaded.signatures["feature_map"](frames=tf.constant(frames))["feature_map"].numpy()
    assert feature_map.shape == (2, 8, 2, 2, 192)
    assert np.abs(feature_map - np.asarray(expected["feature_map"])).max() <= TOLERANCE

    out = {k: v.numpy() for k, v in loaded.signatures["classify"](frames=tf.constant(frames)).items()}
    assert np.abs(out["logits"] - np.asarray(expected["logits"])).max() <= TOLERANCE
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert out["top_k_classes"].dtype == np.int32 and out["top_k_classes"].shape == (2, 5)
    np.testing.assert_array_equal(out["top_k_classes"], np.argsort(-out["probabilities"], axis=-1)[:, :5])
    np.testing.assert_allclose(out["top_k_scores"], np.sort(out["probabilities"], axis=-1)[:, ::-1][:, :5])
    # Without a label file, labels are the class indices.
    assert [[int(label) for label in row] for row in out["top_k_labels"]] == out["top_k_classes"].tolist()


def test_every_signature_runs_through_the_tf1_session_loader(micro_export, loaded, frames, in_process):
    """The restore-then-run-by-tensor-name path of TF Serving's C++ loader."""
    clips = np.asarray(in_process.preprocessor(frames))
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(micro_export / "1"))
        served = {name: sig for name, sig in meta_graph.signature_def.items() if not name.startswith("__")}
        assert set(served) == set(PINNED_OUTPUTS)
        results = {}
        for name, signature in served.items():
            inputs = {"clips": clips, "frames": frames, "row": np.zeros(2, np.int32)}
            feeds = {tensor.name: inputs[key] for key, tensor in signature.inputs.items()}
            fetches = {key: tensor.name for key, tensor in signature.outputs.items()}
            results[name] = session.run(fetches, feed_dict=feeds)
    for name, outputs in results.items():
        assert set(outputs) == PINNED_OUTPUTS[name]
        eager = loaded.signatures[name](**{key: tf.constant(inputs[key]) for key in served[name].inputs})
        for key, value in outputs.items():
            if value.dtype == object:
                np.testing.assert_array_equal(value, eager[key].numpy())
            else:
                assert np.abs(value - eager[key].numpy()).max() <= TOLERANCE


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"frames": np.zeros((1, 16, 64, 64, 3), np.float32)}, "dtype"),
        ({"frames": np.zeros((1, 8, 64, 64, 3), np.uint8)}, "shape"),
        ({"frames": np.zeros((16, 64, 64, 3), np.uint8)}, "rank"),
    ],
)
def test_wrong_dtype_or_shape_is_refused(loaded, kwargs, problem):
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in kwargs.items()})
