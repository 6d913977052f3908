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


def test_every_public_name_loads_without_tensorflow(subprocess_env):
    module = "vswin.client; [getattr(vswin.client, name) for name in vswin.client.__all__]"
    assert _loaded_heavy(module, subprocess_env) == "[]"


def test_cli_module_stays_light_until_a_command_runs(subprocess_env):
    out = subprocess.run(
        [sys.executable, "-c", "import sys, vswin.client.cli; print(sorted(m for m in ('grpc', 'cv2') if m in sys.modules))"],
        env=subprocess_env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "[]"


def test_unknown_names_raise_attribute_error():
    import pytest

    import vswin.client

    with pytest.raises(AttributeError, match="NoSuchThing"):
        vswin.client.NoSuchThing
