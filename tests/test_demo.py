"""`vswin demo`, the README's main job: export the fixture, serve it, extract a video over gRPC, check parity."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests import prefetch

pytestmark = pytest.mark.slow  # runs the whole demo: export, serve, extract

# `vswin demo` as a user runs it, ahead of its test (tests/prefetch.py).
prefetch.register("demo", lambda work: [sys.executable, "-m", "vswin", "demo", "--workdir", str(work)])


@pytest.fixture()
def demo(prefetched) -> tuple[prefetch.Finished, Path]:
    """The finished demo and its work directory."""
    return prefetched.result("demo"), prefetched.jobs["demo"].work


def test_demo_serves_features_equal_to_the_model_in_process(demo):
    finished, workdir = demo
    assert finished.returncode == 0, finished.stderr[-3000:]
    out = finished.stdout
    assert (workdir / "models" / "vswin_demo" / "1" / "saved_model.pb").is_file()
    assert "[2/4] serving vswin_demo on 127.0.0.1:" in out
    assert "demo.mp4: 6 views (2 clips x 3 crops) -> features (192,) from version 1" in out
    difference = float(re.search(r"\[4/4\] served vs in-process features of the same 6 views: "
                                 r"max abs difference (\S+)", out).group(1))  # fmt: skip
    assert difference <= 1e-4
