"""TensorFlow's log level: `vswin` keeps TensorFlow's GPU probing out of its output (issue 12, 10), unless the
user chose a level. That a real command is quiet (no "failed call to cuInit" on a machine without a GPU) is
asserted on the `vswin serve` process of tests/serving/test_serve_cli.py."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow  # a subprocess
def test_a_log_level_the_user_chose_is_kept(subprocess_env):
    env = {**subprocess_env, "TF_CPP_MIN_LOG_LEVEL": "1"}
    code = "import os, vswin.cli; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == "1"
