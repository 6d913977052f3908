"""Server metrics: the Prometheus series and monitoring config parsing (the endpoint: test_http_server.py)."""

from __future__ import annotations

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
