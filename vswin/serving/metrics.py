"""Prometheus metrics of the local server, served on the REST port at TF Serving's monitoring path.

Names follow TF Serving's where it has the metric (`:tensorflow:serving:request_count`,
`:tensorflow:serving:request_latency`, `:tensorflow:serving:batching_session:*`); each server keeps
its own CollectorRegistry so that several servers in one process (tests) do not share counts.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from google.protobuf import text_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
    """The server's metrics in a private registry, with an optional HTTP endpoint serving them."""

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
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

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

    def start_http(self, port: int, path: str = DEFAULT_PATH, host: str = "0.0.0.0") -> None:
        """Serve `render()` at `path` on host:port in a background thread; every other path is 404."""
        if self._http is not None:
            raise RuntimeError("the metrics HTTP endpoint is already running")
        try:
            self._http = ThreadingHTTPServer((host, port), _handler(self, path))
        except OSError as err:
            reason = (err.strerror or str(err)).lower()  # "address already in use" when another process has the port
            raise OSError(err.errno, f"cannot serve metrics on {host}:{port}: {reason}") from err
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="metrics-http", daemon=True)
        self._http_thread.start()

    def stop_http(self) -> None:
        """Stop the HTTP endpoint and free its port (no-op when not running)."""
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        assert self._http_thread is not None
        self._http_thread.join()
        self._http = self._http_thread = None

    @property
    def http_port(self) -> int | None:
        """The port the endpoint listens on (useful after start_http(0)), None when not running."""
        return None if self._http is None else self._http.server_address[1]


def _handler(metrics: ServerMetrics, path: str) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `metrics` and the metrics `path`."""

    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            if urlsplit(self.path).path != path:
                self.send_error(HTTPStatus.NOT_FOUND, f"metrics are served at {path}")
                return
            body = metrics.render()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- scrapes are not worth a log line
            pass

    return MetricsHandler
