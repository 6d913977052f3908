"""benchmarks/gpu/run.sh on CPU with the fixture architecture: every arm of the GPU table, in seconds.

CI has no GPU and no checkout of the original, so the script runs its own
code with `--device cpu`, a tiny clip, torch.compile's `eager` backend (the
same compile path without inductor's code generation) and the stand-in of
the original (tests/bench/stand_in_original, held to the original's
fixtures in test_original.py) as `--original-repo`. What differs on the GPU
machine is the device, the clip, the compile backend and the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "gpu"))
import gpu_bench  # noqa: E402

from tests import prefetch  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402

STAND_IN = Path(__file__).parent / "stand_in_original"


def _run_sh_command(work: Path) -> list[str]:
    return ["bash", str(REPO / "benchmarks" / "gpu" / "run.sh"), "--original-repo", str(STAND_IN), "--device", "cpu",
            "--arch", str(FIXTURES / "vswin_micro_w877.json"), "--frames", "8", "--size", "32", "--batch-sizes", "1",
            "--rounds", "2", "--calls", "1", "--compile-backend", "eager", "--out", str(work / "gpu.json")]  # fmt: skip


# run.sh in a folder of its own, ahead of its test (tests/prefetch.py).
prefetch.register("run_sh", _run_sh_command, env={"PYTHON": sys.executable}, in_work_dir=True)


@pytest.fixture()
def run_sh(prefetched, fixtures_dir) -> tuple[prefetch.Finished, Path]:
    """The finished run.sh job and the JSON it wrote."""
    return prefetched.result("run_sh"), prefetched.jobs["run_sh"].work / "gpu.json"


@pytest.mark.slow
def test_run_sh_measures_every_arm_against_the_original_and_writes_the_table(run_sh):
    result, out = run_sh
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    (case,) = report["cases"]
    assert case["status"] == "ok" and case["reference"] == "pytorch_eager_float32"
    assert set(case["arms"]) == {f"{framework}_{precision}" for framework in ("jax", "pytorch_eager", "pytorch_compile")
                                 for precision in ("float32", "bfloat16")}  # fmt: skip
    for name, entry in case["arms"].items():
        assert entry["status"] == "ok", (name, entry.get("error"))
        assert entry["agreement"]["within_tolerance"], (name, entry["agreement"])
        assert entry["clips_per_s"] > 0 and entry["tflops_official"] is None  # not the official 32x224 view
        assert "tensorflow" not in entry["settings"]  # no worker imported TensorFlow: the GPU image has none
    assert case["arms"]["jax_float32"]["agreement"]["max_abs"] <= 1e-4  # float32: the same function
    assert case["arms"]["jax_float32"]["settings"]["jax"]["backend"] == "cpu"
    assert "pytorch_compile_bfloat16" in result.stdout and report["machine"]["cores"] >= 1


def test_achieved_tflops_use_the_official_count_for_the_official_view():
    assert gpu_bench.tflops(gpu_bench.SWIN_T, 32, 224, clips_per_s=100.0) == pytest.approx(8.79)
    assert gpu_bench.tflops(gpu_bench.SWIN_B, 32, 224, clips_per_s=10.0) == pytest.approx(2.816)
    assert gpu_bench.tflops(gpu_bench.SWIN_T, 16, 224, clips_per_s=100.0) is None


def test_framework_arms_share_one_worker_each_and_the_reference_comes_first():
    arms = gpu_bench.arms("/x", "inductor", ["float32", "bfloat16"], compile_=True)
    assert arms[0].name == gpu_bench.REFERENCE and len(arms) == 6
    assert {arm.worker for arm in arms} == {"jax", "pytorch"}
    assert all(arm.env == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} for arm in arms if arm.worker == "jax")


@pytest.mark.slow
def test_the_script_needs_no_tensorflow():
    code = ("import sys; sys.argv = ['x', '--help']\nimport gpu_bench\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "benchmarks" / "gpu")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
