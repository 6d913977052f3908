"""The image family and every block's attention against the original PyTorch code (tests/fixtures).

Features, logits, feature maps and attention probabilities within 1e-4 of the
original microsoft/Swin-Transformer (a 224 micro model and a Swin-S3 style
per-stage-window model at 160, one stage clamped below its window), of the
same weights in timm's layout, and of Video Swin's attention on a small clip;
on TensorFlow here and on JAX (under jit) in a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vswin.model

TOLERANCE = 1e-4
REFERENCE = Path(__file__).resolve().parents[1] / "fixtures"
IMAGE_CASES = ("swin_micro_w7", "swin_s3_micro")


def reference(name: str) -> dict[str, np.ndarray]:
    with np.load(REFERENCE / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def attention_of(ref: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [ref[f"attention_{i}"] for i in range(sum(1 for key in ref if key.startswith("attention_")))]


def max_errors(model, ref: dict[str, np.ndarray], inputs: np.ndarray, feature_map: np.ndarray) -> dict[str, float]:
    """Max abs difference of every output the reference holds, attention block by block."""
    out = model(inputs, return_attention=True)
    errors = {"feature_map": float(np.abs(np.asarray(out["feature_map"]) - feature_map).max()),
              "features": float(np.abs(np.asarray(out["features"]) - ref["features"]).max())}
    if "logits" in ref:
        errors["logits"] = float(np.abs(np.asarray(out["logits"]) - ref["logits"]).max())
    expected = attention_of(ref)
    assert len(out["attention"]) == len(expected)
    for i, (got, want) in enumerate(zip(out["attention"], expected)):
        assert tuple(got.shape) == want.shape, (i, got.shape, want.shape)
        errors[f"attention_{i}"] = float(np.abs(np.asarray(got) - want).max())
    return errors


def image_case(name: str, checkpoint: str | None = None) -> dict[str, float]:
    ref = reference(name)
    model = vswin.model.load(REFERENCE / (checkpoint or f"{name}.pth"), REFERENCE / f"{name}.json")
    return max_errors(model, ref, np.transpose(ref["input_nchw"], (0, 2, 3, 1)), ref["feature_map_nhwc"])


def video_attention_case(shared_fixtures: Path) -> dict[str, float]:
    ref = reference("vswin_micro_w877_attention")
    model = vswin.model.load(shared_fixtures / "vswin_micro_w877.pth", shared_fixtures / "vswin_micro_w877.json")
    return max_errors(model, ref, np.transpose(ref["input_ncthw"], (0, 2, 3, 4, 1)),
                      np.transpose(ref["backbone_ncdhw"], (0, 2, 3, 4, 1)))


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_model_matches_the_original(name):
    errors = image_case(name)
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("checkpoint", ["swin_micro_w7_timm.safetensors", "swin_micro_w7_timm.pth"])
def test_timm_layout_gives_the_original_outputs(checkpoint):
    errors = image_case("swin_micro_w7", checkpoint)
    assert max(errors.values()) <= TOLERANCE, errors


def test_video_attention_matches_the_original(fixtures_dir):
    errors = video_attention_case(fixtures_dir)
    assert max(errors.values()) <= TOLERANCE, errors


def test_shifted_blocks_mask_across_regions():
    """The reference's masked pairs (probability ~exp(-100)) are masked here too: the shift is really exercised."""
    ref = reference("swin_micro_w7")
    model = vswin.model.load(REFERENCE / "swin_micro_w7.pth", REFERENCE / "swin_micro_w7.json")
    attention = model(np.transpose(ref["input_nchw"], (0, 2, 3, 1)), return_attention=True)["attention"]
    shifted = [i for i, shift in enumerate(ref["block_shift"]) if shift]
    assert shifted == [1, 3, 5]
    for i in shifted:
        masked = ref[f"attention_{i}"] < 1e-30
        assert masked.any() and (np.asarray(attention[i])[masked] < 1e-30).all()


def test_jax_backend_matches_the_original(jax_parity):
    errors = jax_parity["image"]  # each model call under jax.jit (tests/model/jax_parity.py)
    assert set(errors) == {*IMAGE_CASES, "timm", "video_attention"}
    worst = {case: max(values.values()) for case, values in errors.items()}
    assert max(worst.values()) <= TOLERANCE, errors
