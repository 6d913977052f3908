"""Video checkpoint conversion: layouts accepted, and every way a checkpoint can fail to fit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import vswin.model
from vswin.cli import main
from vswin.model import CheckpointError


@pytest.fixture(scope="module")
def state_dict(micro_checkpoint):
    return torch.load(micro_checkpoint, weights_only=True)["state_dict"]


def features_of(model, micro_reference):
    clips = np.transpose(micro_reference["input_ncthw"], (0, 2, 3, 4, 1))
    return np.asarray(model(clips)["features"])


def test_bare_state_dict_without_prefix_or_index_buffers(tmp_path, state_dict, micro_arch, micro_reference):
    bare = {
        key.removeprefix("backbone."): value
        for key, value in state_dict.items()
        if not key.endswith("relative_position_index")
    }
    path = tmp_path / "bare.pth"
    torch.save(bare, path)
    model = vswin.model.load(path, micro_arch)
    assert model.has_head
    assert np.abs(features_of(model, micro_reference) - micro_reference["features"]).max() <= 1e-4


def test_checkpoint_without_head_builds_a_headless_model(tmp_path, state_dict, micro_arch):
    path = tmp_path / "backbone_only.pth"
    torch.save({"state_dict": {k: v for k, v in state_dict.items() if k.startswith("backbone.")}}, path)
    model = vswin.model.load(path, micro_arch)
    assert not model.has_head
    assert set(model(np.zeros((1, 2, 64, 64, 3), "float32"))) == {"features", "feature_map"}


def test_missing_key_is_named(tmp_path, state_dict, micro_arch):
    broken = dict(state_dict)
    del broken["backbone.layers.2.blocks.1.mlp.fc2.weight"]
    path = tmp_path / "missing.pth"
    torch.save({"state_dict": broken}, path)
    with pytest.raises(CheckpointError, match=r"missing key 'backbone\.layers\.2\.blocks\.1\.mlp\.fc2\.weight'"):
        vswin.model.load(path, micro_arch)


def test_shape_mismatch_names_the_first_key(micro_checkpoint):
    with pytest.raises(CheckpointError, match=r"'backbone\.patch_embed\.proj\.weight' has shape \(24, 3, 2, 4, 4\).*\(96, 3, 2, 4, 4\)"):
        vswin.model.load(micro_checkpoint, "swin_tiny_patch244_window877_kinetics400_1k")


def test_extra_blocks_are_rejected(tmp_path, micro_checkpoint, micro_arch):
    import json

    shallower = tmp_path / "shallow.json"
    shallower.write_text(json.dumps({**vswin.model.get_preset(micro_arch).to_arch(), "depths": [2, 2, 1, 2]}))
    with pytest.raises(CheckpointError, match=r"'backbone\.layers\.2\.blocks\.1\..*' has no place"):
        vswin.model.load(micro_checkpoint, shallower)


def test_wrong_window_is_caught_by_the_index_buffers(tmp_path, micro_checkpoint, micro_arch):
    import json

    other = tmp_path / "w16.json"
    other.write_text(json.dumps({**vswin.model.get_preset(micro_arch).to_arch(), "window_size": [16, 7, 7]}))
    with pytest.raises(CheckpointError, match="relative_position_index"):
        vswin.model.load(micro_checkpoint, other)


def test_unreadable_file_is_named(tmp_path, micro_arch):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="garbage.pth is not a readable PyTorch file"):
        vswin.model.load(garbage, micro_arch)
    with pytest.raises(CheckpointError, match="does not exist"):
        vswin.model.load(tmp_path / "absent.pth", micro_arch)


def test_convert_cli_writes_loadable_weights(tmp_path, micro_checkpoint, micro_arch, micro_reference):
    out = tmp_path / "micro.weights.h5"
    assert main(["convert", "--checkpoint", str(micro_checkpoint), "--arch", str(micro_arch), "--out", str(out)]) == 0
    model = vswin.model.load(out, micro_arch)
    assert model.has_head
    assert np.abs(features_of(model, micro_reference) - micro_reference["features"]).max() <= 1e-4


def test_convert_cli_fails_cleanly_and_writes_nothing(tmp_path, micro_checkpoint, capsys):
    out = tmp_path / "tiny.weights.h5"
    code = main(["convert", "--checkpoint", str(micro_checkpoint),
                 "--arch", "swin_tiny_patch244_window877_kinetics400_1k", "--out", str(out)])
    assert code == 1
    assert "backbone.patch_embed.proj.weight" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_converted_weights_for_another_architecture_are_refused(tmp_path, micro_checkpoint, micro_arch):
    out = tmp_path / "micro.weights.h5"
    assert main(["convert", "--checkpoint", str(micro_checkpoint), "--arch", str(micro_arch), "--out", str(out)]) == 0
    with pytest.raises(CheckpointError, match="does not fit architecture"):
        vswin.model.load(out, "swin_tiny_patch244_window877_kinetics400_1k")


def test_reading_a_pth_without_torch_names_the_extra_to_install(monkeypatch, tmp_path):
    from vswin.model.checkpoint_files import read_arrays

    path = tmp_path / "model.pth"
    path.write_bytes(b"anything")
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` meets where torch is not installed
    with pytest.raises(CheckpointError, match=r"needs PyTorch: pip install 'vswin-serving\[convert\]'"):
        read_arrays(path)
