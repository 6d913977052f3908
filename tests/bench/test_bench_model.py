"""`vswin bench model`: real workers, one per arm, on the fixture architecture; crashes become failed arms."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import prefetch
from tests.conftest import FIXTURES
from vswin.bench import interleave, revision
from vswin.bench.arms import KERAS_TF, TORCH, Arm, with_baseline
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


MODEL_ARMS = ["pytorch", "tf_onednn", "tf_xla", "jax_jit"]


def _every_path_command(work: Path) -> list[str]:
    return [sys.executable, "-m", "vswin", "bench", "model", "--original-repo", str(STAND_IN), "--arch",
            str(FIXTURES / "vswin_micro_w877.json"), "--frames", "8", "--size", "64", "--arms",
            ",".join([*MODEL_ARMS, "export_graph"]), "--stages", "0,3,model", "--rounds", "2", "--warmup", "1",
            "--tolerance", "1e-4", "--threads", "1", "--out", str(work / "model.json")]  # fmt: skip


# One `vswin bench model` run against the stand-in original: every kind of arm, on the whole model and on
# stages 0 and 3 alone; run ahead of its tests (tests/prefetch.py), which read their part of it.
prefetch.register("every_path", _every_path_command)


@pytest.fixture(scope="module")
def every_path(prefetched, fixtures_dir) -> tuple[int, dict, str]:
    """(exit code, report, printed output) of the run."""
    finished = prefetched.result("every_path")
    out = prefetched.jobs["every_path"].work / "model.json"
    assert out.is_file(), f"exit code {finished.returncode}, no report:\n{finished.stderr[-3000:]}"
    return finished.returncode, json.loads(out.read_text()), finished.stdout


def test_every_path_computes_the_originals_function_and_is_timed_against_it(every_path):
    code, report, printed = every_path
    assert code == 0
    (case,) = [case for case in report["cases"] if "stage" not in case["case"]]
    assert case["status"] == "ok" and case["reference"] == "pytorch"
    arms = case["arms"]
    assert list(arms) == [*MODEL_ARMS, "export_graph"]
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
    assert "vs pytorch" in printed and "export_graph" in printed


def test_stages_are_timed_alone_and_each_agrees_with_the_originals_stage(every_path):
    code, report, printed = every_path
    assert code == 0
    assert report["settings"]["stages"] == [0, 3, "model"]
    cases = report["cases"]
    assert [case["case"].get("stage") for case in cases] == [0, 3, None]
    for case in cases:
        assert case["status"] == "ok" and case["reference"] == "pytorch"
        for name in MODEL_ARMS:
            entry = case["arms"][name]
            assert entry["status"] == "ok", (case["label"], name, entry.get("error"))
            assert entry["agreement"]["within_tolerance"], (case["label"], name, entry["agreement"])
    for case in cases[:2]:  # an export runs the whole model: its arm is refused a stage, and says why
        entry = case["arms"]["export_graph"]
        assert entry["status"] == "failed" and "per-stage timing needs model arms" in entry["error"]
    assert "stage3" in printed


def test_times_an_exports_signatures_per_batch_size(nano_export, tmp_path):
    out = tmp_path / "exports.json"
    assert main(["bench", "model", "--savedmodel", str(nano_export / "1"), "--batch-sizes", "1,2", "--rounds", "2",
                 "--warmup", "1", "--out", str(out)]) == 0  # fmt: skip
    cases = json.loads(out.read_text())["cases"]
    assert [case["case"]["batch"] for case in cases] == [1, 2]
    for case in cases:
        assert set(case["arms"]) == {"vswin_nano/1:xla", "vswin_nano/1:graph"}
        assert all(entry["status"] == "ok" and entry["clips_per_s"] > 0 for entry in case["arms"].values())
        assert case["arms"]["vswin_nano/1:graph"]["agreement"]["max_abs"] <= 1e-4


def test_a_signature_the_export_lacks_is_a_clear_error_before_any_worker_starts(nano_export, tmp_path, capsys,
                                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setattr(interleave, "WorkerProcess", None)  # starting a worker would fail the test
    code = main(["bench", "model", "--savedmodel", str(nano_export / "1"), "--signature", "nope",
                 "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "has no signature 'nope'" in err and "'features_graph'" in err  # and the ones it has
    assert not (tmp_path / "x.json").exists()


def test_the_export_arm_names_a_signature_the_export_lacks(nano_export):
    """For exports whose vswin.json lists no signatures, the worker's arm is what finds a missing one."""
    from vswin.bench.backends import savedmodel

    case = Case("export", 2, 32, 1, "")
    with pytest.raises(ValueError, match="has no signature 'nope'"):
        savedmodel.prepare(case, {"savedmodel": str(nano_export / "1"), "signature": "nope"})


def test_a_stage_of_an_export_is_refused(nano_export, tmp_path, capsys):
    code = main(["bench", "model", "--savedmodel", str(nano_export / "1"), "--stages", "0",
                 "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert code == 2 and "--stages needs model arms" in capsys.readouterr().err


def test_a_baseline_twin_runs_its_revisions_code_and_a_crashed_worker_fails_only_its_arm(nano_arch, tmp_path):
    """One run of real workers: an arm, its twin at a revision, and an arm whose worker crashes."""
    # A revision whose PyTorch backend doubles the features: only a worker running that revision's code does
    # that. (PyTorch workers start in a fraction of a TensorFlow worker's time.)
    repo = tmp_path / "repo"
    shutil.copytree(Path(revision.__file__).parents[1], repo / "vswin", ignore=shutil.ignore_patterns("__pycache__"))
    backend = repo / "vswin" / "bench" / "backends" / "torch.py"
    backend.write_text(backend.read_text().replace("return feature_map.float()", "return 2 * feature_map.float()"))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                                                 "-q", "-m", "doubled"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    commit = revision.resolve("HEAD", repo)
    source = revision.unpack(commit, tmp_path / "revisions", repo)
    # An unknown XLA flag makes TensorFlow abort the process at its first XLA compilation.
    bad_xla = Arm("bad_xla", KERAS_TF, {"jit": True}, {"XLA_FLAGS": "--xla_no_such_flag=1"})
    original = Arm("pytorch", TORCH, {"original_repo": str(STAND_IN)})
    arms = [*with_baseline([original], "doubled", commit, str(source)), bad_xla]
    case = Case(str(nano_arch), 2, 32, 1, str(tmp_path / "w.pth"), stage=1)
    result = interleave.run(arms, [case], interleave.Plan(rounds=2, warmup=1), tmp_path)
    (entry,) = result["cases"]
    entries = entry["arms"]
    assert entries["pytorch"]["agreement"]["max_abs"] == 0.0
    assert entries["pytorch@doubled"]["agreement"]["max_rel"] == pytest.approx(1.0, abs=1e-6)  # 2x - x = x
    assert len(entries["pytorch"]["speedup_vs_baseline"]["rounds"]) == 2
    assert result["arms"][1]["revision"] == commit
    # the crash fails its arm; the case and the other arms go on
    assert entry["status"] == "ok" and len(entries["pytorch"]["round_s"]) == 2
    assert entries["bad_xla"]["status"] == "failed" and "exited with code" in entries["bad_xla"]["error"]
