"""Fixtures for the Beam tests: the micro export served in-process, folders of videos, the `vswin beam` command.

A `vswin beam` job on the multi-process DirectRunner takes seconds of process start-up, so each such job runs
once, in a module-scoped fixture, and several tests check its outputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MICRO_MODEL_NAME, REPO_ROOT

# features_graph: the serving computation without XLA, so no test waits for a compile per batch shape.
SIGNATURE = "features_graph"
SAMPLING = {"clips": 2, "crops": 3}
SAMPLING_FLAGS = ["--clips", "2", "--crops", "3", "--signature", SIGNATURE]

# Loaded by every Python process started with this folder first on PYTHONPATH: the packages named in
# VSWIN_ABSENT_PACKAGES (comma-separated) fail to import as if not installed; where VSWIN_TF_IMPORT_LOG is set,
# any import of TensorFlow fails too and is written down, with the stack, to that file.
_BLOCK_IMPORTS = '''
import os, sys, traceback

class _BlockImports:
    absent = frozenset(filter(None, os.environ.get("VSWIN_ABSENT_PACKAGES", "").split(",")))
    tensorflow_log = os.environ.get("VSWIN_TF_IMPORT_LOG")

    def find_spec(self, name, path=None, target=None):
        package = name.partition(".")[0]
        if package in self.absent:
            raise ModuleNotFoundError(f"No module named {name!r} (absent from this environment)", name=name)
        if package == "tensorflow" and self.tensorflow_log:
            with open(self.tensorflow_log, "a") as log:
                log.write(f"pid {os.getpid()} imported {name}\\n{''.join(traceback.format_stack())}\\n")
            raise ImportError(f"{name} is blocked: this process must not import TensorFlow")
        return None

sys.meta_path.insert(0, _BlockImports())
'''


@pytest.fixture(scope="package")
def served(micro_export) -> Iterator[str]:
    """The micro export on an in-process ModelServer on 127.0.0.1 (reachable from Beam's worker processes),
    for every test in tests/beam."""
    from vswin.serving.model_config import single_model_config
    from vswin.serving.server import ModelServer, ServerOptions

    server = ModelServer(ServerOptions(model_config=single_model_config(MICRO_MODEL_NAME, micro_export),
                                       host="127.0.0.1", port=0, enable_model_warmup=False,
                                       file_system_poll_wait_seconds=0))
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace=5)


@pytest.fixture(scope="module")
def expected(served, real_videos) -> dict[str, object]:
    """VideoSwinClient.extract of each real video through the same server: what every pipeline must produce."""
    from vswin.client import VideoSwinClient

    with VideoSwinClient(served, MICRO_MODEL_NAME, signature=SIGNATURE) as client:
        return {name: client.extract(path, **SAMPLING) for name, path in real_videos.items()}


@pytest.fixture(scope="package")
def savedmodels(tiny_exports, tmp_path_factory) -> dict[str, str]:
    """Version directories of copies of the tiny `ssv2` and `img` exports, with the vswin.json that `vswin export`
    writes (what --savedmodel reads), by name."""
    from tests.tiny_exports import write_export_json

    base = tmp_path_factory.mktemp("savedmodels")
    paths = {}
    for name in ("ssv2", "img"):
        shutil.copytree(tiny_exports / name / "1", base / name / "1")
        write_export_json(base / name / "1", name)
        paths[name] = str(base / name / "1")
    return paths


def video_folder(folder: Path, real_videos: dict[str, Path]) -> Path:
    """bikes.mp4, bigbuckbunny.mp4, corrupt.mp4 (a slice of bikes.mp4 without its header) and empty.mp4 in
    `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in real_videos.values():
        shutil.copy(path, folder / path.name)
    (folder / "corrupt.mp4").write_bytes(real_videos["bikes"].read_bytes()[2000:5000])
    (folder / "empty.mp4").write_bytes(b"")
    return folder


@pytest.fixture()
def videos(tmp_path, real_videos) -> Path:
    """video_folder for one test, which may change it."""
    return video_folder(tmp_path / "videos", real_videos)


def read_rows(prefix: Path) -> dict[str, dict]:
    """The Parquet rows of every shard at `prefix`, by key (each key once)."""
    import pyarrow.parquet as pq

    rows = [row for path in sorted(prefix.parent.glob(f"{prefix.name}-*-of-*.parquet"))
            for row in pq.read_table(path).to_pylist()]
    keyed = {row["key"]: row for row in rows}
    assert len(keyed) == len(rows), "a key is in the output twice"
    return keyed


def read_failures(prefix: Path) -> dict[str, dict]:
    """The dead-letter records at `prefix`, by key."""
    lines = (prefix.parent / f"{prefix.name}-failed-00000-of-00001.jsonl").read_text().splitlines()
    return {record["key"]: record for record in map(json.loads, lines)}


@dataclass(frozen=True)
class BeamRun:
    """One `vswin beam` command run to its end: the process, its counters, its output prefix."""

    process: subprocess.CompletedProcess
    counters: dict[str, int]
    prefix: Path


def run_beam(args: list[str], env: dict[str, str], work: Path) -> BeamRun:
    """`python -m vswin beam ARGS --output WORK/out/feats --metrics-json WORK/metrics.json` in a subprocess."""
    prefix, metrics = work / "out" / "feats", work / "metrics.json"
    process = subprocess.run(
        [sys.executable, "-m", "vswin", "beam", *args, "--output", str(prefix), "--metrics-json", str(metrics)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    counters = json.loads(metrics.read_text())["counters"] if metrics.exists() else {}
    return BeamRun(process, counters, prefix)


@pytest.fixture(scope="package")
def beam_env(tmp_path_factory, subprocess_env) -> dict[str, str]:
    """subprocess_env for `vswin beam` jobs, without torch: as on the workers of the Beam images (Dockerfile.beam
    installs the [beam] or [beam,model] extras on Beam's SDK image, neither has torch). Beam's RunInference
    module imports torch and SciPy whenever torch is installed (apache_beam.ml.inference.model_manager, for a
    model manager these jobs never use): 2.5 CPU-s in each process of a job, its worker processes included."""
    site = tmp_path_factory.mktemp("block_imports")
    (site / "sitecustomize.py").write_text(_BLOCK_IMPORTS)
    env = dict(subprocess_env)
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    env["VSWIN_ABSENT_PACKAGES"] = "torch"
    return env


@pytest.fixture(scope="module")
def tensorflow_blocked(tmp_path_factory, beam_env) -> tuple[dict[str, str], Path]:
    """(beam_env whose Python processes cannot import TensorFlow either, the file listing any attempt)."""
    log = tmp_path_factory.mktemp("tensorflow_imports") / "tensorflow_imports.log"
    env = {**beam_env, "VSWIN_TF_IMPORT_LOG": str(log)}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and log.exists(), "the TensorFlow import block is not in effect"
    log.unlink()
    return env, log
