"""The `vswin` command as a whole."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import vswin.cli
parser = vswin.cli.build_parser()
commands = sorted(parser._subparsers._group_actions[0].choices)
heavy = sorted(m for m in ("tensorflow", "keras", "torch", "jax", "cv2", "apache_beam") if m in sys.modules)
print(",".join(commands)); print(",".join(heavy))
"""


def test_every_part_registers_and_none_imports_heavy_libraries(subprocess_env):
    """`vswin --help` and the client's commands must not pay for TensorFlow (seconds, gigabytes)."""
    result = subprocess.run([sys.executable, "-c", _PROBE], env=subprocess_env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    commands, heavy = result.stdout.split("\n")[:2]
    assert commands.split(",") == ["beam", "bench", "config", "convert", "demo", "export", "extract", "serve"]
    assert heavy == ""
