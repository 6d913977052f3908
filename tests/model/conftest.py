"""Fixtures of the model's tests: the JAX backend's parity run, shared by the video and the image tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def jax_parity(fixtures_dir, subprocess_env, tmp_path_factory) -> dict:
    """tests/model/jax_parity.py run once on the JAX backend: its max abs errors, and `odd` (the saved .npz)."""
    odd_path = tmp_path_factory.mktemp("jax_parity") / "odd.npz"
    env = {**subprocess_env, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    # No timeout of its own: pytest-timeout bounds the test, whatever else loads the machine.
    result = subprocess.run([sys.executable, "-m", "tests.model.jax_parity", str(fixtures_dir), str(odd_path)],
                            env=env, capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "odd": odd_path}
