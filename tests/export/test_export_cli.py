"""`vswin export` options for families and attention: what they select, and clear errors before any work."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import vswin.model
from tests.conftest import IMAGE_REFERENCE
from vswin.cli import main
from vswin.export.options import attention_blocks

DEPTHS = (2, 2, 6, 2)


@pytest.mark.parametrize(("spec", "expected"), [
    ("last", [(3, 1)]),
    ("all", [(s, b) for s, d in enumerate(DEPTHS) for b in range(d)]),
    ("3", [(3, 0), (3, 1)]),
    ("3.0,3.1", [(3, 0), (3, 1)]),
    ("2.5, 0.1,2.5,last", [(2, 5), (0, 1), (3, 1)]),
])
def test_attention_block_selection(spec, expected):
    assert attention_blocks(spec, DEPTHS) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("4.0", "stage 4 does not exist"),
    ("1.2", "stage 1 has blocks 0..1, not 2"),
    ("first", "is not 'last', 'all', a stage S or a block S.B"),
    ("1.0.0", "is not"),
    ("", "is not"),
])
def test_bad_attention_selections_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        attention_blocks(spec, DEPTHS)


@pytest.mark.parametrize(("extra", "message"), [
    (["--arch", str(IMAGE_REFERENCE / "swin_micro_w7.json"), "--frames", "16"],
     "--frames: swin_micro_w7 is an image model"),
    (["--arch", "swin_tiny_patch4_window7_224", "--attention-blocks", "3.0"], "pass both"),
    (["--arch", "swin_tiny_patch4_window7_224", "--with-attention", "--attention-blocks", "3.2"],
     "stage 3 has blocks 0..1, not 2"),
])
def test_bad_options_fail_before_anything_is_written(tmp_path, capsys, extra, message):
    out = tmp_path / "models"
    assert main(["export", "--random-weights", "--out", str(out), "--name", "m", *extra]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_video_export_with_attention(tmp_path, micro_checkpoint, micro_arch):
    code = main(["export", "--checkpoint", str(micro_checkpoint), "--arch", str(micro_arch), "--out", str(tmp_path),
                 "--name", "m", "--frames", "2", "--size", "32", "--batch-sizes", "1", "--default-signature", "graph",
                 "--with-attention", "--attention-blocks", "0.1,3"])
    assert code == 0
    signature = tf.saved_model.load(str(tmp_path / "m" / "1")).signatures["attention"]
    frames = np.random.default_rng(5).integers(0, 256, size=(2, 2, 32, 32, 3), dtype=np.uint8)
    got = {name: value.numpy() for name, value in signature(frames=tf.constant(frames)).items()}
    assert sorted(got) == ["attention_stage0_block1", "attention_stage3_block0", "attention_stage3_block1"]
    # Block 0.1: 1x8x8 patches padded to 14x14, four shifted 1x7x7 windows of one head.
    assert got["attention_stage0_block1"].shape == (2, 4, 1, 49, 49)
    model = vswin.model.load(micro_checkpoint, micro_arch)
    expected = model(model.preprocessor(frames), return_attention=True)["attention"]
    for name, flat in (("attention_stage0_block1", 1), ("attention_stage3_block0", 6), ("attention_stage3_block1", 7)):
        reference = np.asarray(expected[flat])
        assert np.abs(got[name].reshape(reference.shape) - reference).max() <= 1e-4, name
