"""Server metrics: the Prometheus series, the HTTP endpoint on the REST port, and monitoring config parsing."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vswin.serving.metrics import DEFAULT_PATH, ServerMetrics, read_monitoring_config


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parsed exposition text: (sample name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def observed() -> ServerMetrics:
    metrics = ServerMetrics()
    metrics.observe_request("micro", 1, "serving_default", "OK", 0.020)
    metrics.observe_request("micro", 1, "serving_default", "OK", 0.040)
    metrics.observe_request("micro", None, "serving_default", "NOT_FOUND", 0.001)
    metrics.observe_batch("micro", "serving_default", 3, 4)
    metrics.observe_batch("micro", "serving_default", 8, 8)
    metrics.set_queue_depth("micro", "serving_default", 5)
    metrics.set_version_state("micro", 1, "LOADING")
    metrics.set_version_state("micro", 1, "AVAILABLE")
    metrics.set_version_state("micro", 2, "ERROR")
    return metrics


def test_render_holds_request_batch_queue_and_version_series_with_the_observed_values() -> None:
    values = samples(observed().render())
    ok = (("model_name", "micro"), ("signature", "serving_default"), ("status", "OK"), ("version", "1"))
    missing = (("model_name", "micro"), ("signature", "serving_default"), ("status", "NOT_FOUND"), ("version", ""))
    batch = (("model_name", "micro"), ("signature", "serving_default"))
    assert values[(":tensorflow:serving:request_count_total", ok)] == 2
    assert values[(":tensorflow:serving:request_count_total", missing)] == 1
    assert values[(":tensorflow:serving:request_latency_count", ok)] == 2
    assert values[(":tensorflow:serving:request_latency_sum", ok)] == pytest.approx(60_000)  # microseconds
    assert values[(":tensorflow:serving:request_latency_bucket", tuple(sorted(ok + (("le", "25000.0"),))))] == 1
    assert values[(":tensorflow:serving:batching_session:input_batch_size_sum", batch)] == 11
    assert values[(":tensorflow:serving:batching_session:processed_batch_size_sum", batch)] == 12
    assert values[(":tensorflow:serving:batching_session:processed_batch_size_count", batch)] == 2
    assert values[(":tensorflow:serving:batching_session:padding_size_sum", batch)] == 1
    assert values[(":tensorflow:serving:batching_session:queue_depth", batch)] == 5
    state = ":tensorflow:serving:model_version_state"
    for version, name, value in [("1", "AVAILABLE", 1), ("1", "LOADING", 0), ("2", "ERROR", 1), ("2", "AVAILABLE", 0)]:
        labels = (("model_name", "micro"), ("state", name), ("version", version))
        assert values[(state, labels)] == value


def test_each_server_has_its_own_registry() -> None:
    observed()
    values = samples(ServerMetrics().render())
    assert not any(name.startswith(":tensorflow:serving:request_count") for name, _ in values)


def test_bad_observations_are_rejected() -> None:
    metrics = ServerMetrics()
    with pytest.raises(ValueError, match="unknown model version state 'READY'"):
        metrics.set_version_state("micro", 1, "READY")
    with pytest.raises(ValueError, match="padded batch size 2 is smaller than the batch size 3"):
        metrics.observe_batch("micro", "serving_default", 3, 2)


def test_http_endpoint_serves_the_metrics_at_the_configured_path_and_404_elsewhere(free_port: int) -> None:
    metrics = observed()
    metrics.start_http(free_port, "/custom/metrics", host="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{free_port}"
        with urllib.request.urlopen(base + "/custom/metrics?x=1", timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            body = response.read()
        assert samples(body)[(":tensorflow:serving:batching_session:queue_depth",
                              (("model_name", "micro"), ("signature", "serving_default")))] == 5  # fmt: skip
        for other in ("/", DEFAULT_PATH, "/custom/metrics/extra"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(base + other, timeout=5)
            assert info.value.code == 404
        metrics.observe_request("micro", 1, "serving_default", "OK", 0.01)
        with urllib.request.urlopen(base + "/custom/metrics", timeout=5) as response:
            ok = (("model_name", "micro"), ("signature", "serving_default"), ("status", "OK"), ("version", "1"))
            assert samples(response.read())[(":tensorflow:serving:request_count_total", ok)] == 3
    finally:
        metrics.stop_http()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/custom/metrics", timeout=2)
    metrics.stop_http()  # a second stop is harmless


def test_http_endpoint_can_restart_on_the_same_port_after_stop(free_port: int) -> None:
    metrics = ServerMetrics()
    for _ in range(2):
        metrics.start_http(free_port, DEFAULT_PATH, host="127.0.0.1")
        assert metrics.http_port == free_port
        with urllib.request.urlopen(f"http://127.0.0.1:{free_port}{DEFAULT_PATH}", timeout=5) as response:
            assert response.status == 200
        metrics.stop_http()
    assert metrics.http_port is None


def test_http_endpoint_on_a_busy_port_is_an_error_naming_it(free_port: int) -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.start_http(free_port, DEFAULT_PATH, host="127.0.0.1")
    try:
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{free_port}"):
            second.start_http(free_port, DEFAULT_PATH, host="127.0.0.1")
        assert second.http_port is None
    finally:
        first.stop_http()


def test_monitoring_config_parses_enable_and_path(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.config"
    path.write_text('prometheus_config {\n  enable: true,\n  path: "/monitoring/custom"\n}\n')
    assert read_monitoring_config(path) == (True, "/monitoring/custom")
    path.write_text("prometheus_config { enable: true }\n")
    assert read_monitoring_config(path) == (True, DEFAULT_PATH)
    path.write_text("")
    assert read_monitoring_config(path) == (False, DEFAULT_PATH)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prometheus_config { enabled: true }\n", "not a valid MonitoringConfig.*enabled"),
        ("prometheus_config { enable: maybe }\n", "not a valid MonitoringConfig"),
        ('prometheus_config { enable: true path: "metrics" }\n', "must start with '/'"),
    ],
)
def test_bad_monitoring_config_is_an_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "monitoring.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_monitoring_config(path)
    assert str(path) in str(info.value)


def test_a_missing_monitoring_config_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read monitoring config file .*absent.config"):
        read_monitoring_config(tmp_path / "absent.config")


def test_the_repository_monitoring_config_parses() -> None:
    path = Path(__file__).resolve().parents[2] / "serving_config" / "monitoring.config"
    assert read_monitoring_config(path) == (True, DEFAULT_PATH)
