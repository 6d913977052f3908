"""`vswin bench model`: real workers, one per arm, on the fixture architecture; crashes become failed arms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vswin.bench import interleave
from vswin.bench.arms import KERAS_TF, Arm
from vswin.bench.case import Case
from vswin.bench.model import xla_and_graph
from vswin.cli import main

STAND_IN = Path(__file__).parent / "stand_in_original"
pytestmark = pytest.mark.slow


def test_pairs_the_xla_and_graph_forward_passes_of_either_default():
    assert xla_and_graph(["serving_default", "features_graph", "feature_map"]) == ("serving_default", "features_graph")
    assert xla_and_graph(["serving_default", "features_xla", "feature_map"]) == ("features_xla", "serving_default")
    with pytest.raises(ValueError, match="not a vswin export"):
        xla_and_graph(["serving_default"])


def test_every_path_computes_the_originals_function_and_is_timed_against_it(micro_arch, tmp_path, capsys):
    out = tmp_path / "model.json"
    code = main(["bench", "model", "--original-repo", str(STAND_IN), "--arch", str(micro_arch), "--frames", "8",
                 "--size", "32", "--arms", "pytorch,tf_onednn,tf_xla,jax_jit,export_graph", "--rounds", "2",
                 "--warmup", "1", "--tolerance", "1e-4", "--threads", "1", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    (case,) = report["cases"]
    assert case["status"] == "ok" and case["reference"] == "pytorch"
    arms = case["arms"]
    assert list(arms) == ["pytorch", "tf_onednn", "tf_xla", "jax_jit", "export_graph"]
    for name, entry in arms.items():
        assert entry["status"] == "ok", (name, entry.get("error"))
        assert entry["agreement"]["within_tolerance"], (name, entry["agreement"])  # same weights, same clips
        assert len(entry["round_s"]) == 2 and entry["speedup_vs_reference"]["min"] > 0
        assert entry["first_call_s"] > 0 and entry["minor_faults_per_call"] >= 0 and entry["worker_peak_rss_mib"] > 0
    assert arms["tf_onednn"]["settings"]["tensorflow"]["onednn_enabled"] is True
    assert arms["tf_onednn"]["settings"]["environment"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert arms["pytorch"]["settings"]["torch"]["threads"] == 1  # OMP_NUM_THREADS from --threads
    assert arms["jax_jit"]["settings"]["jax"]["backend"] == "cpu"
    assert arms["export_graph"]["settings"]["environment"]["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert report["machine"]["cpu_instruction_sets"] and len(case["load_average"]["after"]) == 3
    printed = capsys.readouterr().out
    assert "vs pytorch" in printed and "export_graph" in printed


def test_times_an_exports_signatures_per_batch_size(micro_export, tmp_path):
    out = tmp_path / "exports.json"
    assert main(["bench", "model", "--savedmodel", str(micro_export / "1"), "--batch-sizes", "1,2", "--rounds", "2",
                 "--warmup", "1", "--out", str(out)]) == 0  # fmt: skip
    cases = json.loads(out.read_text())["cases"]
    assert [case["case"]["batch"] for case in cases] == [1, 2]
    for case in cases:
        assert set(case["arms"]) == {"vswin_micro/1:xla", "vswin_micro/1:graph"}
        assert all(entry["status"] == "ok" and entry["clips_per_s"] > 0 for entry in case["arms"].values())
        assert case["arms"]["vswin_micro/1:graph"]["agreement"]["max_abs"] <= 1e-4


def test_a_signature_the_export_lacks_is_a_clear_error(micro_export, tmp_path, capsys):
    code = main(["bench", "model", "--savedmodel", str(micro_export / "1"), "--signature", "nope",
                 "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert code == 1
    out = capsys.readouterr().out
    assert "no arm could run" in out and "has no signature 'nope'" in out


def test_a_worker_that_crashes_fails_its_arm_and_the_run_goes_on(micro_arch, tmp_path):
    # An unknown XLA flag makes TensorFlow abort the process at its first XLA compilation.
    arms = [Arm("graph", KERAS_TF), Arm("bad_xla", KERAS_TF, {"jit": True}, {"XLA_FLAGS": "--xla_no_such_flag=1"})]
    case = Case(str(micro_arch), 2, 32, 1, str(tmp_path / "w.weights.h5"))
    result = interleave.run(arms, [case], interleave.Plan(rounds=2, warmup=1), tmp_path)
    (entry,) = result["cases"]
    assert entry["status"] == "ok" and len(entry["arms"]["graph"]["round_s"]) == 2
    assert entry["arms"]["bad_xla"]["status"] == "failed"
    assert "exited with code" in entry["arms"]["bad_xla"]["error"]
