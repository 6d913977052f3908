"""Prometheus metrics of the local server, served on the REST port at TF Serving's monitoring path (http_server).

Names follow TF Serving's where it has the metric (`:tensorflow:serving:request_count`,
`:tensorflow:serving:request_latency`, `:tensorflow:serving:batching_session:*`); each server keeps
its own CollectorRegistry so that several servers in one process (tests) do not share counts.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from vswin.serving.config_protos import MonitoringConfig

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusConfig default
VERSION_STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END", "ERROR")  # ModelVersionStatus.State, + ERROR
# TF Serving reports latency in microseconds; buckets from 1 ms to 30 s.
LATENCY_BUCKETS_US = (1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 3e7)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def read_monitoring_config(path: str | Path) -> tuple[bool, str]:
    """Parse a MonitoringConfig text proto (`--monitoring_config_file`) into (enabled, metrics path)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read monitoring config file {path}: {err}") from err
    config = MonitoringConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"monitoring config file {path} is not a valid MonitoringConfig text proto: {err}") from err
    prometheus = config.prometheus_config
    metrics_path = prometheus.path or DEFAULT_PATH
    if not metrics_path.startswith("/"):
        raise ValueError(
            f"monitoring config file {path}: prometheus_config.path must start with '/', got {metrics_path!r}"
        )
    return prometheus.enable, metrics_path


def _version(version: int | None) -> str:
    return "" if version is None else str(version)


class ServerMetrics:
    """The server's metrics in a private registry; http_server.HttpServer serves `render()`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        request_labels = ("model_name", "version", "signature", "status")
        self.request_count = Counter(
            ":tensorflow:serving:request_count", "Predict requests, by model, version, signature and gRPC status.",
            request_labels, registry=self.registry,
        )  # fmt: skip
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency", "Request latency in microseconds.",
            request_labels, buckets=LATENCY_BUCKETS_US, registry=self.registry,
        )  # fmt: skip
        batch_labels = ("model_name", "signature")
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:input_batch_size", "Rows of a batch before padding.",
            batch_labels, buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.processed_batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size", "Rows of a batch as run, after padding.",
            batch_labels, buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.padding_size = Histogram(
            ":tensorflow:serving:batching_session:padding_size", "Padding rows added to reach an allowed batch size.",
            batch_labels, buckets=(0,) + BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            ":tensorflow:serving:batching_session:queue_depth", "Requests waiting in batches not yet started.",
            batch_labels, registry=self.registry,
        )  # fmt: skip
        self.version_state = Gauge(
            ":tensorflow:serving:model_version_state", "1 for the current load state of each model version, else 0.",
            ("model_name", "version", "state"), registry=self.registry,
        )  # fmt: skip

    def observe_request(self, model: str, version: int | None, signature: str, status: str, seconds: float) -> None:
        """Count one request and its latency; `status` is the gRPC status name (OK, NOT_FOUND, ...)."""
        labels = (model, _version(version), signature, status)
        self.request_count.labels(*labels).inc()
        self.request_latency.labels(*labels).observe(seconds * 1e6)

    def observe_batch(self, key_model: str, signature: str, size: int, padded_size: int) -> None:
        """Record one batch run: its rows and its rows after padding to an allowed batch size."""
        if padded_size < size:
            raise ValueError(f"padded batch size {padded_size} is smaller than the batch size {size}")
        self.batch_size.labels(key_model, signature).observe(size)
        self.processed_batch_size.labels(key_model, signature).observe(padded_size)
        self.padding_size.labels(key_model, signature).observe(padded_size - size)

    def set_queue_depth(self, model: str, signature: str, depth: int) -> None:
        """Requests of (model, signature) waiting for a batch worker."""
        self.queue_depth.labels(model, signature).set(depth)

    def set_version_state(self, model: str, version: int, state: str) -> None:
        """The load state of a model version: START, LOADING, AVAILABLE, UNLOADING, END or ERROR."""
        if state not in VERSION_STATES:
            raise ValueError(f"unknown model version state {state!r}; expected one of {', '.join(VERSION_STATES)}")
        for candidate in VERSION_STATES:
            self.version_state.labels(model, str(version), candidate).set(1 if candidate == state else 0)

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
