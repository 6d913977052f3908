"""The reference fixtures in tests/fixtures agree with themselves and with their README.

These guard the files (generated from the original PyTorch code by the scripts beside them),
not the Keras model: the parity tests compare the model against them.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IMAGE_CASES = ("swin_micro_w7", "swin_s3_micro")
ARCH_KEYS = {"img_size", "patch_size", "embed_dim", "depths", "num_heads", "window_size", "num_classes"}
BATCH = 2
MASKED = 1e-30  # exp(-100) of the shifted-window mask underflows to (almost) zero


def load_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def attention_list(reference: dict[str, np.ndarray]) -> list[np.ndarray]:
    count = sum(1 for key in reference if key.startswith("attention_"))
    return [reference[f"attention_{index}"] for index in range(count)]


def stage_windows(arch: dict) -> list[int]:
    windows = arch["window_size"]
    return list(windows) if isinstance(windows, list) else [windows] * len(arch["depths"])


def stage_grids(arch: dict) -> list[int]:
    first = arch["img_size"] // arch["patch_size"]
    return [first // 2**stage for stage in range(len(arch["depths"]))]


def official_checkpoint(name: str) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(FIXTURES / f"{name}.pth", map_location="cpu", weights_only=True)
    assert list(checkpoint) == ["model"], "official release layout is {'model': state_dict}"
    return checkpoint["model"]


def assert_attention_probabilities(probs: np.ndarray, shifted: bool) -> None:
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    assert (probs < MASKED).any() == shifted, "masked entries exactly where the window is shifted"


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_arch_uses_the_original_constructor_keywords(name):
    arch = json.loads((FIXTURES / f"{name}.json").read_text())
    assert set(arch) == ARCH_KEYS
    assert len(stage_windows(arch)) == len(arch["depths"]) == len(arch["num_heads"])


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_outputs_have_the_documented_shapes_and_follow_from_each_other(name):
    arch = json.loads((FIXTURES / f"{name}.json").read_text())
    reference = load_npz(name)
    size, channels = arch["img_size"], arch["embed_dim"] * 2 ** (len(arch["depths"]) - 1)
    grid = stage_grids(arch)[-1]
    assert reference["input_nchw"].shape == (BATCH, 3, size, size)
    assert reference["feature_map_nhwc"].shape == (BATCH, grid, grid, channels)
    assert reference["features"].shape == (BATCH, channels)
    assert reference["logits"].shape == (BATCH, arch["num_classes"])
    assert all(value.dtype == np.float32 for key, value in reference.items() if not key.startswith("block_"))

    state = official_checkpoint(name)
    # feature_map is the output of the final LayerNorm: undoing its affine leaves mean 0, variance 1 per token.
    scale, shift = state["norm.weight"].numpy(), state["norm.bias"].numpy()
    standardised = (reference["feature_map_nhwc"] - shift) / scale
    np.testing.assert_allclose(standardised.mean(axis=-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardised.var(axis=-1), 1.0, atol=1e-3)
    np.testing.assert_allclose(reference["features"], reference["feature_map_nhwc"].mean(axis=(1, 2)), atol=1e-6)
    head = reference["features"] @ state["head.weight"].numpy().T + state["head.bias"].numpy()
    np.testing.assert_allclose(reference["logits"], head, atol=1e-5)


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_blocks_follow_the_original_clamp_rule_in_checkpoint_and_attention(name):
    arch = json.loads((FIXTURES / f"{name}.json").read_text())
    reference = load_npz(name)
    state = official_checkpoint(name)
    attention = attention_list(reference)
    assert len(attention) == sum(arch["depths"])
    index = 0
    for stage, (depth, heads, window, grid) in enumerate(
        zip(arch["depths"], arch["num_heads"], stage_windows(arch), stage_grids(arch))
    ):
        for block in range(depth):
            clamped = grid <= window
            used = grid if clamped else window
            shift = 0 if clamped or block % 2 == 0 else window // 2
            assert reference["block_window"][index] == used and reference["block_shift"][index] == shift
            prefix = f"layers.{stage}.blocks.{block}.attn."
            assert state[prefix + "relative_position_bias_table"].shape == ((2 * used - 1) ** 2, heads)
            assert state[prefix + "relative_position_index"].shape == (used * used, used * used)
            mask = state.get(f"layers.{stage}.blocks.{block}.attn_mask")
            windows = (grid // used) ** 2
            assert (mask is not None) == (shift > 0)
            if mask is not None:
                assert mask.shape == (windows, used * used, used * used)
            assert attention[index].shape == (BATCH * windows, heads, used * used, used * used)
            assert_attention_probabilities(attention[index], shifted=shift > 0)
            index += 1


def test_s3_case_shifts_two_stages_and_clamps_one_below_its_window():
    arch = json.loads((FIXTURES / "swin_s3_micro.json").read_text())
    windows, grids = stage_windows(arch), stage_grids(arch)
    assert arch["img_size"] != 224 and len(set(windows)) > 1
    assert sum(grid > window for grid, window in zip(grids, windows)) >= 2
    assert any(grid < window for grid, window in zip(grids, windows))


def timm_key(official_key: str) -> str:
    """Newer timm: each stage's downsample starts the next stage, the classifier is head.fc."""
    key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", official_key)
    return key.replace("head.", "head.fc.")


def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """A .safetensors file: u64 header length, a JSON header, raw little-endian tensors.

    Read by hand because the safetensors package is not a dependency of the project.
    """
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + length :]
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return metadata, tensors


def test_timm_layout_holds_the_same_weights_under_timm_names():
    official = official_checkpoint("swin_micro_w7")
    expected = {
        timm_key(key): value.numpy()
        for key, value in official.items()
        if not key.endswith(("relative_position_index", "attn_mask"))
    }
    timm_pth = torch.load(FIXTURES / "swin_micro_w7_timm.pth", map_location="cpu", weights_only=True)
    metadata, timm_safetensors = read_safetensors(FIXTURES / "swin_micro_w7_timm.safetensors")
    assert metadata["timm_version"] == "1.0.31"
    assert "layers.1.downsample.reduction.weight" in expected and "layers.0.downsample.reduction.weight" not in expected
    for stored in ({key: value.numpy() for key, value in timm_pth.items()}, timm_safetensors):
        assert sorted(stored) == sorted(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(stored[key], value, err_msg=key)


def test_video_attention_fixture_is_consistent(micro_arch):
    arch = json.loads(micro_arch.read_text())
    reference = load_npz("vswin_micro_w877_attention")
    assert reference["input_ncthw"].shape == (1, 3, 8, 32, 48)
    backbone = reference["backbone_ncdhw"]
    assert backbone.shape == (1, arch["features_dim"], 4, 1, 2)
    np.testing.assert_allclose(reference["features"], backbone.mean(axis=(2, 3, 4)), atol=1e-6)

    attention = attention_list(reference)
    assert len(attention) == sum(arch["depths"])
    # Token grid per stage: patch (2, 4, 4), then H and W halved (odd sizes padded up) by patch merging.
    grid = [math.ceil(size / patch) for size, patch in zip((8, 32, 48), arch["patch_size"])]
    index, shifted_blocks = 0, 0
    for depth, heads in zip(arch["depths"], arch["num_heads"]):
        for _ in range(depth):
            window, shift = reference["block_window"][index], reference["block_shift"][index]
            assert all(w == min(size, configured) for w, size, configured in zip(window, grid, arch["window_size"]))
            windows = math.prod(math.ceil(size / w) for size, w in zip(grid, window))
            tokens = int(np.prod(window))
            assert attention[index].shape == (windows, heads, tokens, tokens)
            assert_attention_probabilities(attention[index], shifted=bool(shift.any()))
            shifted_blocks += bool(shift.any())
            index += 1
        grid = [grid[0], math.ceil(grid[1] / 2), math.ceil(grid[2] / 2)]
    assert shifted_blocks >= 1
