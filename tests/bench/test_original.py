"""Importing the original PyTorch Video Swin without mmcv/mmaction, and the stand-in tests use for it.

No checkout of the original exists in CI, so the benchmark tests run
tests/bench/stand_in_original, a file with the original's place in the tree,
imports, constructor and parameter names. Here it is held to the original's
own outputs (shared/fixtures), so what the benchmark's PyTorch arm runs in
tests computes what the original computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vswin.bench import original
from vswin.model.checkpoint_files import read_arrays
from vswin.model.presets import get_preset

STAND_IN = Path(__file__).parent / "stand_in_original"


def test_the_stand_in_computes_the_originals_fixture_outputs(micro_checkpoint, micro_arch, micro_reference):
    model = original.build(STAND_IN, get_preset(micro_arch))
    state = {key.removeprefix("backbone."): torch.from_numpy(value)
             for key, value in read_arrays(micro_checkpoint).items() if key.startswith("backbone.")}  # fmt: skip
    model.load_state_dict(state)  # strict: every name and shape of the official checkpoint fits
    with torch.inference_mode():
        feature_map = model(torch.from_numpy(micro_reference["input_ncthw"])).numpy()
    assert np.abs(feature_map - micro_reference["backbone_ncdhw"]).max() <= 1e-4
    assert np.abs(feature_map.mean(axis=(2, 3, 4)) - micro_reference["features"]).max() <= 1e-4


def test_imports_resolve_to_stand_ins_for_mmcv_and_mmaction():
    import sys

    original.load_swin3d(STAND_IN)
    assert sys.modules["mmcv.runner"]._vswin_stand_in and sys.modules["mmaction.models.builder"]._vswin_stand_in
    with pytest.raises(NotImplementedError, match="loads no checkpoints"):
        sys.modules["mmcv.runner"].load_checkpoint(None, "x.pth")


def test_a_directory_without_the_original_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Video-Swin-Transformer"):
        original.load_swin3d(tmp_path)


def test_stand_in_rearrange_permutes_and_refuses_what_it_cannot_do():
    x = torch.arange(24).reshape(1, 2, 3, 4)
    assert torch.equal(original.rearrange(x, "n c h w -> n h w c"), x.permute(0, 2, 3, 1))
    with pytest.raises(ValueError, match="permutations"):
        original.rearrange(x, "n c h w -> n (c h) w")
