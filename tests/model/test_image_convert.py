"""Image checkpoint conversion: the release and timm layouts, buffers checked, every misfit named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vswin.model
from vswin.cli import main
from vswin.model import CheckpointError

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures"
CHECKPOINT = REFERENCE / "swin_micro_w7.pth"
ARCH = REFERENCE / "swin_micro_w7.json"


@pytest.fixture(scope="module")
def official() -> dict[str, torch.Tensor]:
    return torch.load(CHECKPOINT, weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "swin_micro_w7.npz") as data:
        return {key: data[key] for key in data.files}


def save(tmp_path: Path, state: dict, name: str = "ckpt.pth") -> Path:
    path = tmp_path / name
    torch.save({"model": state}, path)
    return path


def test_a_video_checkpoint_for_an_image_architecture_says_so(micro_checkpoint):
    with pytest.raises(CheckpointError, match=r"holds a Video Swin \(video\) model.*'swin_micro_w7' is an image "
                                              r"Swin model: pick a video architecture"):
        vswin.model.load(micro_checkpoint, ARCH)


def test_an_image_checkpoint_for_a_video_architecture_says_so(micro_arch):
    with pytest.raises(CheckpointError, match=r"holds an image Swin model.*'vswin_micro_w877' is a Video Swin "
                                              r"\(video\) model: pick an image architecture"):
        vswin.model.load(CHECKPOINT, micro_arch)


def test_shape_mismatch_names_the_first_key():
    with pytest.raises(CheckpointError, match=r"'patch_embed\.proj\.weight' has shape \(12, 3, 4, 4\), "
                                              r"architecture 'swin_tiny_patch4_window7_224' needs \(96, 3, 4, 4\)"):
        vswin.model.load(CHECKPOINT, "swin_tiny_patch4_window7_224")


def test_missing_and_left_over_keys_are_named(tmp_path, official):
    broken = {k: v for k, v in official.items() if k != "layers.2.blocks.0.mlp.fc1.bias"}
    with pytest.raises(CheckpointError, match=r"missing key 'layers\.2\.blocks\.0\.mlp\.fc1\.bias'"):
        vswin.model.load(save(tmp_path, broken), ARCH)
    shallower = tmp_path / "shallow.json"
    shallower.write_text(json.dumps({**json.loads(ARCH.read_text()), "depths": [2, 2, 1, 2]}))
    with pytest.raises(CheckpointError, match=r"'layers\.2\.blocks\.1\..*' has no place in architecture 'shallow'"):
        vswin.model.load(CHECKPOINT, shallower)


def test_buffers_must_match_the_architecture(tmp_path, official):
    # The same weights at img_size 192: stage 0 has 48x48 patches, so its shifted-window mask differs.
    other_size = tmp_path / "at192.json"
    other_size.write_text(json.dumps({**json.loads(ARCH.read_text()), "img_size": 192}))
    with pytest.raises(CheckpointError, match=r"'layers\.0\.blocks\.1\.attn_mask' .* img_size 192"):
        vswin.model.load(CHECKPOINT, other_size)
    # A mask where the original has none (an unshifted block) is as wrong as a wrong mask.
    extra = dict(official, **{"layers.0.blocks.0.attn_mask": official["layers.0.blocks.1.attn_mask"]})
    with pytest.raises(CheckpointError, match=r"'layers\.0\.blocks\.0\.attn_mask'.*no mask"):
        vswin.model.load(save(tmp_path, extra), ARCH)
    index = official["layers.1.blocks.0.attn.relative_position_index"]
    wrong = dict(official, **{"layers.1.blocks.0.attn.relative_position_index": index.flip(0)})
    with pytest.raises(CheckpointError, match=r"relative_position_index' does not match window \(1, 7, 7\)"):
        vswin.model.load(save(tmp_path, wrong), ARCH)


def test_checkpoints_without_buffers_or_head_load(tmp_path, official, reference):
    weights_only = {k: v for k, v in official.items() if not k.endswith(("relative_position_index", "attn_mask"))}
    model = vswin.model.load(save(tmp_path, weights_only), ARCH)
    images = np.transpose(reference["input_nchw"], (0, 2, 3, 1))
    assert np.abs(np.asarray(model(images)["logits"]) - reference["logits"]).max() <= 1e-4
    headless = vswin.model.load(save(tmp_path, {k: v for k, v in official.items() if not k.startswith("head.")}),
                                ARCH)
    assert not headless.has_head
    assert np.abs(np.asarray(headless(images)["features"]) - reference["features"]).max() <= 1e-4


def test_unreadable_safetensors_is_named(tmp_path):
    garbage = tmp_path / "model.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file"):
        vswin.model.load(garbage, ARCH)


def test_convert_cli_writes_image_weights_that_load_back(tmp_path, reference):
    out = tmp_path / "swin_micro.weights.h5"
    assert main(["convert", "--checkpoint", str(REFERENCE / "swin_micro_w7_timm.safetensors"), "--arch", str(ARCH),
                 "--out", str(out)]) == 0
    model = vswin.model.load(out, ARCH)
    assert model.has_head and model.family == "image"
    images = np.transpose(reference["input_nchw"], (0, 2, 3, 1))
    assert np.abs(np.asarray(model(images)["logits"]) - reference["logits"]).max() <= 1e-4
    backbone = vswin.model.SwinBackbone.from_preset(ARCH, checkpoint=out)
    assert np.abs(np.asarray(backbone(images)) - reference["feature_map_nhwc"]).max() <= 1e-4


def test_half_precision_checkpoints_widen_to_float32(tmp_path, official, reference):
    path = save(tmp_path, {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in official.items()})
    model = vswin.model.load(path, ARCH)
    images = np.transpose(reference["input_nchw"], (0, 2, 3, 1))
    # bfloat16 weights are the float32 ones rounded to 8 bits of mantissa: measured 0.035 off on features
    # up to 2.2 in magnitude; 0.1 leaves room, and the difference shows the rounded weights were used.
    error = np.abs(np.asarray(model(images)["features"]) - reference["features"]).max()
    assert 1e-4 < error < 0.1
