"""The model server: gRPC services, REST API, config and filesystem polling, health, batching, metrics, shutdown."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from vswin.serving.errors import ServingError
from vswin.serving.flags import INT32_MAX, REST_API_TIMEOUT_MS, default_rest_api_threads
from vswin.serving.manager import ModelManager
from vswin.serving.model_config import ModelServerConfig, config_text, read_model_config
from vswin.serving.model_service import ModelService
from vswin.serving.prediction_service import PredictionService
from vswin.serving.xla import set_xla_compilation, xla_compilation_enabled

if TYPE_CHECKING:
    from vswin.serving.http_server import HttpServer

log = logging.getLogger(__name__)


@dataclass
class ServerOptions:
    """What `vswin serve` was asked for; field names follow TF Serving's flags."""

    model_config: ModelServerConfig
    port: int = 8500
    host: str = "0.0.0.0"
    rest_api_port: int = 0
    rest_api_num_threads: int = default_rest_api_threads()
    rest_api_timeout_in_ms: int = REST_API_TIMEOUT_MS
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    monitoring_config_file: str = ""
    grpc_max_message_size: int = INT32_MAX
    grpc_max_threads: int = 32
    enable_grpc_healthcheck_service: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    enable_serialization_as_tensor_content: bool = False
    shutdown_grace_seconds: float = 30.0
    # Embedding only (no flags): gRPC server interceptors, e.g. fault injection in tests; and credentials for a
    # TLS port (insecure when None).
    interceptors: Sequence[grpc.ServerInterceptor] = ()
    credentials: grpc.ServerCredentials | None = None


class ModelServer:
    """`start()` loads the configured models then opens the port; `stop()` drains requests in flight."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = None
        self.scheduler = None
        self.health = health.HealthServicer() if options.enable_grpc_healthcheck_service else None
        self.manager = ModelManager(
            enable_warmup=options.enable_model_warmup,
            warmup_iterations=options.num_request_iterations_for_warmup,
            allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
            on_state=self._on_state,
        )
        self.port = 0
        self.rest_port = 0
        self._grpc: grpc.Server | None = None
        self._http: HttpServer | None = None
        self._metrics_path = ""
        self._stopping = threading.Event()
        self._xla_before: bool | None = None
        self._threads: list[threading.Thread] = []
        self._config_text = ""

    def start(self) -> int:
        """Open the REST port, load the models, then open the gRPC port; returns the bound gRPC port.

        The REST port (with status and metrics) opens before the models load, so a port that is
        taken fails the start at once, and a model's status reads LOADING meanwhile.
        """
        options = self.options
        # TF Serving's main.cc: XLA JIT only when one of the two experimental flags is set. The switch is
        # process-wide; stop() puts back what it found, for servers embedded in a process (tests, demo).
        self._xla_before = xla_compilation_enabled()
        set_xla_compilation(options.xla_cpu_compilation_enabled or options.xla_gpu_compilation_enabled)
        self._start_metrics()
        self._start_batching()
        self._start_http()
        self.reload(options.model_config)
        self._config_text = config_text(options.model_config)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc"),
            options=[
                ("grpc.max_receive_message_length", options.grpc_max_message_size),
                ("grpc.max_send_message_length", options.grpc_max_message_size),
            ],
            interceptors=list(options.interceptors),
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self.scheduler, self.metrics, options.enable_serialization_as_tensor_content),
            self._grpc,
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager, self.reload), self._grpc)
        if self.health is not None:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        address = f"{options.host}:{options.port}"
        if options.credentials is None:
            self.port = self._grpc.add_insecure_port(address)
        else:
            self.port = self._grpc.add_secure_port(address, options.credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {options.host}:{options.port}")
        self._grpc.start()
        self._start_pollers()
        log.info("gRPC server listening on %s:%d", options.host, self.port)
        return self.port

    def reload(self, config: ModelServerConfig) -> None:
        """Serve `config` (ServingError if it cannot be applied) and bring health up to date."""
        try:
            self.manager.reload(config)
        finally:
            self._update_health()
            log.info("serving %s", self._describe())

    def stop(self, grace: float | None = None) -> None:
        """Refuse new requests, let those in flight finish, then unload everything."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        grpc_stopped = None
        if self._grpc is not None:  # both APIs stop taking requests, then both drain
            grpc_stopped = self._grpc.stop(self.options.shutdown_grace_seconds if grace is None else grace)
        if self._http is not None:
            self._http.stop()
        if grpc_stopped is not None:
            grpc_stopped.wait()
        for thread in self._threads:
            thread.join()
        if self.scheduler is not None:
            self.scheduler.close(drain=True)
        self.manager.close()
        if self._xla_before is not None:
            set_xla_compilation(self._xla_before)
        log.info("server stopped")

    # -- pieces ---------------------------------------------------------------------------------------

    def _describe(self) -> str:
        available = self.manager.available()
        return ", ".join(f"{name} versions {versions or 'none'}" for name, versions in available.items()) or "no models"

    def _on_state(self, name: str, version: int, state: str) -> None:
        if self.metrics is not None:
            self.metrics.set_version_state(name, version, state)

    def _update_health(self) -> None:
        if self.health is None or self._stopping.is_set():
            return
        available = self.manager.available()
        ready = bool(available) and all(available.values())
        serving = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        self.health.set("", serving)
        for name, versions in available.items():
            model_serving = health_pb2.HealthCheckResponse.SERVING if versions else health_pb2.HealthCheckResponse.NOT_SERVING
            self.health.set(name, model_serving)

    def _start_metrics(self) -> None:
        options = self.options
        if not options.monitoring_config_file:
            return
        from vswin.serving import metrics

        enabled, self._metrics_path = metrics.read_monitoring_config(options.monitoring_config_file)
        if not enabled:
            return
        self.metrics = metrics.ServerMetrics()
        if not options.rest_api_port:
            log.warning("monitoring is configured but --rest_api_port is not set: no metrics endpoint (as TF Serving)")

    def _start_http(self) -> None:
        """TF Serving's REST API, and the metrics when monitoring is on, on --rest_api_port."""
        options = self.options
        if not options.rest_api_port:
            return
        if options.rest_api_port == options.port:
            raise ValueError(f"--rest_api_port {options.rest_api_port} is also the gRPC --port; give each its own port")
        from vswin.serving.http_server import HttpServer
        from vswin.serving.predictor import Predictor
        from vswin.serving.rest import RestApi

        timeout = options.rest_api_timeout_in_ms / 1000 if options.rest_api_timeout_in_ms > 0 else None
        api = RestApi(self.manager, Predictor(self.manager, self.scheduler, self.metrics), timeout)
        self._http = HttpServer(api, options.grpc_max_message_size, options.rest_api_num_threads,
                                self.metrics, self._metrics_path)  # fmt: skip
        self.rest_port = self._http.start(options.host, options.rest_api_port)
        log.info("REST API at http://%s:%d/v1/models/", options.host, self.rest_port)
        if self.metrics is not None:
            log.info("Prometheus metrics at http://%s:%d%s", options.host, self.rest_port, self._metrics_path)

    def _start_batching(self) -> None:
        options = self.options
        if not options.enable_batching:
            return
        from vswin.serving import batching

        if options.batching_parameters_file:
            batching_options = batching.read_batching_parameters(options.batching_parameters_file)
        else:
            batching_options = batching.BatchingOptions()
        self.scheduler = batching.BatchScheduler(batching_options, self.metrics)
        log.info("batching enabled: %s", batching_options)

    def _start_pollers(self) -> None:
        options = self.options
        if options.file_system_poll_wait_seconds > 0:
            self._spawn("fs-poll", options.file_system_poll_wait_seconds, self._poll_file_system)
        if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
            self._spawn("config-poll", options.model_config_file_poll_wait_seconds, self._poll_config_file)

    def _spawn(self, name: str, period: float, step) -> None:
        def loop() -> None:
            while not self._stopping.wait(period):
                try:
                    step()
                except Exception:  # a poll that fails is logged and retried at the next period
                    log.exception("%s failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_file_system(self) -> None:
        self.manager.poll()
        self._update_health()

    def _poll_config_file(self) -> None:
        path = Path(self.options.model_config_file)
        try:
            config = read_model_config(path)
        except ValueError as err:
            log.error("keeping the current config: %s", err)
            return
        text = config_text(config)
        if text == self._config_text:
            return
        log.info("model config file %s changed; reloading", path)
        try:
            self.reload(config)
        except ServingError as err:
            log.error("reload of %s failed: %s", path, err.message)
        self._config_text = text

