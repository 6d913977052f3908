"""The Keras port against the original PyTorch implementation's outputs (shared/fixtures)."""

from __future__ import annotations

import numpy as np
import pytest

import vswin.model
from tests.model.jax_parity import odd_clips

TOLERANCE = 1e-4


def channels_last(reference: dict) -> np.ndarray:
    return np.transpose(reference["input_ncthw"], (0, 2, 3, 4, 1))


@pytest.fixture(scope="module")
def micro_model(micro_checkpoint, micro_arch):
    return vswin.model.load(micro_checkpoint, micro_arch)


def test_tensorflow_backend_matches_original(micro_model, micro_reference):
    out = micro_model(channels_last(micro_reference))
    feature_map = np.transpose(micro_reference["backbone_ncdhw"], (0, 2, 3, 4, 1))
    assert np.abs(np.asarray(out["feature_map"]) - feature_map).max() <= TOLERANCE
    assert np.abs(np.asarray(out["features"]) - micro_reference["features"]).max() <= TOLERANCE
    assert np.abs(np.asarray(out["logits"]) - micro_reference["logits"]).max() <= TOLERANCE


def test_jax_backend_matches_original(jax_parity, micro_model):
    errors = jax_parity["video"]  # under jax.jit with the weights as arguments, as the benchmarks run it
    assert max(errors.values()) <= TOLERANCE, errors
    # The odd 10x70x58 clip: JAX and TensorFlow backends agree, shapes included.
    jax_odd = np.load(jax_parity["odd"])
    tf_odd = micro_model(odd_clips())
    assert jax_odd["feature_map"].shape == (2, 5, 3, 2, 192)
    for key in ("feature_map", "features"):
        assert np.abs(jax_odd[key] - np.asarray(tf_odd[key])).max() <= TOLERANCE, key


@pytest.mark.parametrize(
    ("clip", "expected_map"),
    [
        # T, H, W not multiples of the patch, odd sizes in patch merging: shapes the original gives.
        ((10, 70, 58), (5, 3, 2)),
        ((3, 33, 40), (2, 2, 2)),
        ((16, 64, 96), (8, 2, 3)),
    ],
)
def test_odd_clip_sizes_give_the_original_shapes(micro_model, clip, expected_map):
    clips = np.random.default_rng(0).normal(size=(2, *clip, 3)).astype("float32")
    out = micro_model(clips)
    assert tuple(out["feature_map"].shape) == (2, *expected_map, 192)
    assert tuple(out["features"].shape) == (2, 192)
    assert np.isfinite(np.asarray(out["features"])).all()


def test_batch_items_are_independent(micro_model, micro_reference):
    clips = channels_last(micro_reference)
    together = np.asarray(micro_model(clips)["features"])
    alone = np.asarray(micro_model(clips[1:])["features"])
    assert np.abs(together[1] - alone[0]).max() <= TOLERANCE


def test_random_model_differs_from_converted(micro_arch, micro_model, micro_reference):
    random_model = vswin.model.build(micro_arch)
    clips = channels_last(micro_reference)
    assert np.abs(np.asarray(random_model(clips)["features"]) - micro_reference["features"]).max() > 1e-2
