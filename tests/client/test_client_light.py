"""The client stays light: importing it (and its CLI) never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

CHECK = (
    "import sys, {module}; "
    "heavy = sorted(m for m in ('tensorflow', 'tensorflow_serving', 'keras', 'torch', 'jax', 'tqdm') if m in sys.modules); "
    "print(heavy)"
)


def _loaded_heavy(module: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_import_vswin_client_never_imports_tensorflow(subprocess_env):
    assert _loaded_heavy("vswin.client", subprocess_env) == "[]"


def test_everything_the_client_exposes_imports_without_tensorflow(subprocess_env):
    modules = "vswin.client.client, vswin.client.protos, vswin.client.tensors"
    assert _loaded_heavy(modules, subprocess_env) == "[]"
