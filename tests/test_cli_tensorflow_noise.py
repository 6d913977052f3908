"""TensorFlow's GPU probing stays out of the output of vswin commands on machines without a GPU (issue 12, 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vswin import cli

REPO = Path(__file__).resolve().parents[1]

# What any vswin command that runs TensorFlow does first: import the CLI, then let TensorFlow set up its devices.
PROBE = "import vswin.cli, tensorflow as tf; print(float(tf.constant(1.0) + 1))"


@pytest.mark.slow  # TensorFlow in a subprocess
@pytest.mark.skipif(cli._has_nvidia_driver(), reason="with an NVIDIA driver cuInit succeeds and logs nothing")
def test_no_cuinit_error_on_a_machine_without_a_gpu(subprocess_env):
    env = {key: value for key, value in subprocess_env.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "2.0", result.stderr
    assert "failed call to cuInit" not in result.stderr


@pytest.mark.slow  # a subprocess
def test_a_log_level_the_user_chose_is_kept(subprocess_env):
    env = {**subprocess_env, "TF_CPP_MIN_LOG_LEVEL": "1"}
    code = "import os, vswin.cli; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == "1"
