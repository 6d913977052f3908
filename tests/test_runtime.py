"""The serving path's process settings: set before TensorFlow loads, the user's own values win."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vswin import contract, runtime


def test_apply_sets_what_is_unset_and_keeps_what_the_user_set():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    added = runtime.apply(env)
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0"  # turned off on purpose: stays off
    expected = {key: value for key, value in contract.SERVING_ENVIRONMENT.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    assert added == expected
    assert all(env[key] == value for key, value in added.items())
    assert runtime.apply(env) == {}


@pytest.mark.slow
def test_vswin_serve_runs_tensorflow_with_onednn_on(subprocess_env):
    # `vswin serve --version` loads TensorFlow in the handler, after the settings were applied.
    env = {key: value for key, value in subprocess_env.items() if key not in contract.SERVING_ENVIRONMENT}
    code = ("import sys; from vswin.cli import main; main(['serve', '--version'])\n"
            "from tensorflow.python.util import _pywrap_util_port as port; import os\n"
            "print(port.IsMklEnabled(), os.environ['TF_CPU_ALLOCATOR_USE_BFC'])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True true"
