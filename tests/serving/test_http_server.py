"""The HTTP server on the REST port: metrics at their path, the REST API under /v1/, ports, threads, stop."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.serving.test_metrics import observed, samples
from vswin.serving.http_server import HttpServer
from vswin.serving.manager import ModelManager
from vswin.serving.metrics import DEFAULT_PATH, ServerMetrics
from vswin.serving.predictor import Predictor
from vswin.serving.rest import RestApi


def http_server(metrics: ServerMetrics | None = None, path: str = DEFAULT_PATH, threads: int = 2) -> HttpServer:
    """An HTTP server over a manager serving no models."""
    manager = ModelManager()
    return HttpServer(RestApi(manager, Predictor(manager)), 1 << 20, threads, metrics, path)


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_metrics_at_the_configured_path_the_api_under_v1_and_404_elsewhere(free_port: int) -> None:
    metrics = observed()
    server = http_server(metrics, "/custom/metrics")
    server.start("127.0.0.1", free_port)
    try:
        base = f"http://127.0.0.1:{free_port}"
        code, content_type, body = get(base + "/custom/metrics?x=1")
        assert code == 200 and content_type.startswith("text/plain")
        assert samples(body)[(":tensorflow:serving:batching_session:queue_depth",
                              (("model_name", "micro"), ("signature", "serving_default")))] == 5  # fmt: skip
        for other in ("/", DEFAULT_PATH, "/custom/metrics/extra"):
            code, content_type, body = get(base + other)
            assert (code, content_type) == (404, "application/json")
            assert "the REST API is under /v1/ and metrics at /custom/metrics" in json.loads(body)["error"]
        code, _, body = get(base + "/v1/models/micro")
        assert (code, json.loads(body)) == (404, {"error": "Could not find any versions of model micro; models served: none"})
        metrics.observe_request("micro", 1, "serving_default", "OK", 0.01)
        ok = (("model_name", "micro"), ("signature", "serving_default"), ("status", "OK"), ("version", "1"))
        assert samples(get(base + "/custom/metrics")[2])[(":tensorflow:serving:request_count_total", ok)] == 3
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/custom/metrics", timeout=5)
    server.stop()  # a second stop is harmless


def test_without_monitoring_the_metrics_path_is_not_served(free_port: int) -> None:
    server = http_server()
    server.start("127.0.0.1", free_port)
    try:
        assert get(f"http://127.0.0.1:{free_port}{DEFAULT_PATH}")[0] == 404
    finally:
        server.stop()


def test_the_server_can_restart_on_the_same_port_after_stop(free_port: int) -> None:
    server = http_server(ServerMetrics())
    for _ in range(2):
        assert server.start("127.0.0.1", free_port) == free_port == server.port
        assert get(f"http://127.0.0.1:{free_port}{DEFAULT_PATH}")[0] == 200
        server.stop()
    assert server.port is None


def test_a_busy_port_is_an_error_naming_it(free_port: int) -> None:
    first, second = http_server(), http_server()
    first.start("127.0.0.1", free_port)
    try:
        with pytest.raises(OSError, match=f"cannot serve HTTP .* on 127.0.0.1:{free_port}: address already in use"):
            second.start("127.0.0.1", free_port)
        assert second.port is None
        assert get(f"http://127.0.0.1:{free_port}/v1/models/x")[0] == 404  # the first still answers
    finally:
        first.stop()


def test_at_least_one_thread_is_needed() -> None:
    with pytest.raises(ValueError, match="at least one thread, got 0"):
        http_server(threads=0)
