"""Persistent XLA compilation cache: `--xla_cache_dir`, and a second start that reads instead of compiling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests import prefetch
from tests.conftest import write_nano_arch
from vswin import contract
from vswin.cli import build_parser
from vswin.export.warmup import read_warmup
from vswin.serving.main import options_from_args
from vswin.serving.xla_cache import CACHE_DIRECTORY_FLAG, with_cache_directory

REPO = Path(__file__).resolve().parents[2]


def test_flag_is_parsed_into_the_server_options():
    options = options_from_args(build_parser().parse_args(["serve", "--model_base_path=/m", "--xla_cache_dir=/c"]))
    assert options.xla_cache_dir == "/c"


def test_cache_directory_joins_the_other_xla_flags_once():
    assert with_cache_directory("", "/c") == f"{CACHE_DIRECTORY_FLAG}=/c"
    joined = with_cache_directory("--tf_xla_cpu_global_jit", "/c")
    assert joined == f"--tf_xla_cpu_global_jit {CACHE_DIRECTORY_FLAG}=/c"
    assert with_cache_directory(joined, "/c") == joined


def test_a_different_cache_directory_already_in_tf_xla_flags_is_an_error():
    with pytest.raises(ValueError, match="already sets --tf_xla_persistent_cache_directory=/other"):
        with_cache_directory(f"{CACHE_DIRECTORY_FLAG}=/other", "/c")


def _server_start_command(work: Path) -> list[str]:
    """benchmarks/server_start.py exporting the nano architecture (XLA serving_default, warmup at batch sizes
    1 and 2), then starting `vswin serve` on it cold and warm."""
    return [sys.executable, str(REPO / "benchmarks" / "server_start.py"), "--arch", str(write_nano_arch(work)),
            "--frames", "2", "--size", "32", "--batch-sizes", "1,2", "--workdir", str(work / "work"), "--rounds", "1",
            "--timeout", "900", "--out", str(work / "server_start.json")]  # fmt: skip


# Ahead of its test (tests/prefetch.py).
prefetch.register("server_start", _server_start_command)


@pytest.fixture()
def server_start(prefetched, fixtures_dir) -> tuple[prefetch.Finished, Path]:
    """The finished benchmark and its folder."""
    return prefetched.result("server_start"), prefetched.jobs["server_start"].work


@pytest.mark.slow
def test_second_start_reads_the_compiled_programs_from_the_cache(server_start):
    """benchmarks/server_start.py on the nano export: the cold start writes programs, the warm one reads them."""
    finished, work = server_start
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((work / "server_start.json").read_text())
    cold, warm = result["cold"], result["warm"]
    entries = sorted(p.name for p in (work / "work" / "xla_cache_0").glob("*.pb"))
    assert entries and all(name.startswith("xla_compile_cache__") for name in entries)
    assert (cold["cache_entries_before"], cold["cache_written"], cold["cache_hits"]) == (0, len(entries), 0)
    assert (warm["cache_entries_before"], warm["cache_written"]) == (len(entries), 0)
    assert warm["cache_hits"] == len(entries)  # TensorFlow's own log: every program came from the cache
    assert warm["server_cache_report"].endswith("0 compiled and written while loading; the rest came from the cache")
    assert result["warmup_batch_sizes"] == [1, 2] and result["warm_over_cold"] > 0
    export = work / "work" / "models" / "model" / "1"  # where the script exported the nano architecture
    records = len(read_warmup(export / contract.ASSETS_EXTRA / contract.WARMUP_FILE))
    assert cold["warmup_records"] == warm["warmup_records"] == records  # parsed from each server's log
    assert len(result["rounds"]) == 1 and result["warm_over_cold_range"] == [result["warm_over_cold"]] * 2
