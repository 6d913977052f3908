"""Fixtures of the model's tests: the JAX backend's parity run, shared by the video and the image tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests import prefetch
from tests.conftest import FIXTURES

ODD = "odd.npz"

# tests/model/jax_parity.py on the JAX backend, run ahead of its tests (tests/prefetch.py).
prefetch.register("jax_parity", lambda work: [sys.executable, "-m", "tests.model.jax_parity", str(FIXTURES),
                                              str(work / ODD)],
                  env={"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})  # fmt: skip


@pytest.fixture(scope="session")
def jax_parity(prefetched, fixtures_dir) -> dict:
    """The JAX backend's max abs errors against the originals (tests/model/jax_parity.py), and `odd`: the
    saved outputs on the odd clip."""
    finished = prefetched.result("jax_parity")
    assert finished.returncode == 0, finished.stderr[-3000:]
    return {**json.loads(finished.stdout.strip().splitlines()[-1]), "odd": prefetched.jobs["jax_parity"].work / ODD}
