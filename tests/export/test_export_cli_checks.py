"""`vswin export` answers argument mistakes before TensorFlow loads (issue 12, defect 10), and logs its steps."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # exports, and runs vswin in subprocesses

# Runs `vswin export` with the given arguments in a fresh interpreter; prints the exit code and
# whether TensorFlow or Keras got imported on the way (both take tens of seconds to load).
PROBE = """
import json, sys
from vswin.cli import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "heavy": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""


def run_export(args: list[str], env: dict[str, str]) -> tuple[dict, str]:
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(["export", *args])], capture_output=True,
                            text=True, env=env, timeout=600)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.fixture()
def base_args(tmp_path, micro_arch, micro_checkpoint):
    return ["--checkpoint", str(micro_checkpoint), "--arch", str(micro_arch), "--out", str(tmp_path / "models"),
            "--name", "m"]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), [
    ({"--checkpoint": "missing.pth"}, "--checkpoint missing.pth does not exist"),
    ({"--arch": "swin_huge_patch244"}, "unknown architecture 'swin_huge_patch244'"),
    ({"--arch": "missing.json"}, "architecture file missing.json does not exist"),
    ({"--labels": "missing.txt"}, "--labels missing.txt does not exist"),
    ({"--version": "0"}, "version must be a positive integer, not 0"),
])  # fmt: skip
def test_argument_errors_come_before_tensorflow_loads(base_args, subprocess_env, change, message):
    args = list(base_args)
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    outcome, stderr = run_export(args, subprocess_env)
    assert outcome == {"code": 1, "heavy": []}
    assert f"vswin export: {message}" in stderr


def test_an_existing_version_is_refused_before_tensorflow_loads(base_args, tmp_path, subprocess_env):
    (tmp_path / "models" / "m" / "1").mkdir(parents=True)
    outcome, stderr = run_export([*base_args, "--version", "1"], subprocess_env)
    assert outcome == {"code": 1, "heavy": []}
    assert f"{tmp_path / 'models' / 'm' / '1'} already exists; pass --overwrite to replace it" in stderr


def test_export_logs_each_step_with_the_time_taken(tmp_path, nano_arch, caplog):
    from tests.conftest import build_nano
    from vswin.export import export_model

    model = build_nano(nano_arch)  # the log is under test, not the model: the nano exports in a fraction of the time
    with caplog.at_level(logging.INFO, logger="vswin.export"):
        export_model(model, tmp_path, "m", version=1, frames=2, size=(32, 32), batch_sizes=(1, 2))
    messages = [record.getMessage() for record in caplog.records]
    steps = ["exporting m: tracing the signatures for video input 2x32x32x3", "exporting m: traced ",
             "exporting m: wrote the SavedModel (",
             "exporting m: 5 warmup requests (serving_default at batch sizes 1,2, features_graph, feature_map, classify at 1)",
             "exported m version 1 to "]
    for step in steps:
        assert any(message.startswith(step) for message in messages), (step, messages)
    assert messages[-1].split(" in ")[1].split(" s ")[0].replace(".", "").isdigit()
