"""A port another server listens on is refused at start, for gRPC and the metrics/REST port (issue 12, defect 2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.serving.requests import config_for
from vswin.serving.model_config import single_model_config
from vswin.serving.server import ModelServer, ServerOptions

pytestmark = pytest.mark.slow


def test_a_second_server_on_a_taken_grpc_port_fails_at_start_before_loading(start_server, model_base, tmp_path, caplog):
    first = start_server(config_for(model_base))
    second = ModelServer(ServerOptions(model_config=single_model_config("tiny", model_base), host="127.0.0.1",
                                       port=first.port, file_system_poll_wait_seconds=0))  # fmt: skip
    try:
        with caplog.at_level("INFO"), pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.port}: "
                                                                   "address already in use"):  # fmt: skip
            second.start()
        assert "loading model" not in caplog.text  # refused before minutes of loading and warmup
    finally:
        second.stop(grace=0)


def test_a_taken_metrics_port_fails_at_start_and_frees_the_grpc_port(model_base, tmp_path, free_port):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ModelServer(ServerOptions(
            model_config=single_model_config("tiny", model_base), host="127.0.0.1", port=free_port,
            rest_api_port=taken.getsockname()[1], monitoring_config_file=str(monitoring),
            file_system_poll_wait_seconds=0,
        ))  # fmt: skip
        taken_reason = r"cannot serve HTTP \(REST API, metrics\) on 127.0.0.1:[0-9]+: address already in use"
        with pytest.raises(OSError, match=taken_reason):
            server.start()
        server.stop(grace=0)
    with socket.socket() as probe:  # the gRPC port it had bound is free again
        probe.bind(("127.0.0.1", free_port))


# `vswin serve ARGS` in a fresh interpreter; prints its exit code and whether TensorFlow got imported on the way.
SERVE_PROBE = """
import json, sys
from vswin.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules}))
"""


def run_vswin_serve(args: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """(exit code and whether TensorFlow loaded, stderr) of `vswin serve ARGS` run in a subprocess."""
    result = subprocess.run([sys.executable, "-c", SERVE_PROBE, "serve", *args], capture_output=True, text=True,
                            env=env, timeout=600)  # fmt: skip
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_vswin_serve_on_a_taken_port_exits_non_zero_saying_so_before_tensorflow_loads(model_base, free_port,
                                                                                      subprocess_env):  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        outcome, stderr = run_vswin_serve([f"--port={free_port}", "--host=127.0.0.1", "--model_name=tiny",
                                           f"--model_base_path={model_base}"], subprocess_env)  # fmt: skip
    assert outcome == {"code": 1, "tensorflow": False}, stderr[-3000:]
    assert f"cannot listen on 127.0.0.1:{free_port}: address already in use" in stderr
