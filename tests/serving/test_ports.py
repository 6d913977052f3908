"""A port another server listens on is refused at start, for gRPC and the metrics/REST port (issue 12, defect 2)."""

from __future__ import annotations

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


def test_vswin_serve_on_a_taken_port_exits_non_zero_saying_so(model_base, free_port, subprocess_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "vswin", "serve", f"--port={free_port}", "--host=127.0.0.1", "--model_name=tiny",
             f"--model_base_path={model_base}"],
            capture_output=True, text=True, env=subprocess_env, timeout=600,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{free_port}: address already in use" in result.stderr
