"""The model server: gRPC services, REST API, config and filesystem polling, health, batching, metrics, shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from vswin import contract
from vswin.serving import flags, ports
from vswin.serving.errors import ServingError
from vswin.serving.inflight import InFlight
from vswin.serving.limits import RequestLimits
from vswin.serving.manager import ModelManager
from vswin.serving.model_config import ModelServerConfig, config_text, read_model_config
from vswin.serving.model_service import ModelService
from vswin.serving.prediction_service import PredictionService
from vswin.serving.predictor import Predictor
from vswin.serving.servable import Servable
from vswin.serving.xla import set_xla_compilation, xla_compilation_enabled
from vswin.serving.xla_cache import cache_entries, enable_xla_cache

if TYPE_CHECKING:
    from vswin.serving.http_server import HttpServer

log = logging.getLogger(__name__)

# After the grace period, cancelled requests get this long to return before the server stops waiting for them.
CANCEL_WAIT_SECONDS = 10.0


@dataclass
class ServerOptions:
    """What `vswin serve` was asked for; field names follow TF Serving's flags."""

    model_config: ModelServerConfig
    port: int = 8500
    host: str = "0.0.0.0"
    rest_api_port: int = 0
    rest_api_num_threads: int = flags.default_rest_api_threads()
    rest_api_timeout_in_ms: int = flags.REST_API_TIMEOUT_MS
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    monitoring_config_file: str = ""
    grpc_max_message_size: int = flags.INT32_MAX
    grpc_max_threads: int = 32
    enable_grpc_healthcheck_service: bool = False
    allow_version_labels_for_unavailable_models: bool = False
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    enable_serialization_as_tensor_content: bool = False
    max_num_load_retries: int = flags.DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = flags.DEFAULT_LOAD_RETRY_INTERVAL_MICROS
    max_request_batch_size: int = flags.DEFAULT_MAX_REQUEST_BATCH_SIZE
    max_request_bytes: int = flags.DEFAULT_MAX_REQUEST_BYTES
    shutdown_grace_period_seconds: float = flags.DEFAULT_SHUTDOWN_GRACE_PERIOD_SECONDS
    xla_cache_dir: str = ""
    # Embedding only (no flags): gRPC server interceptors, e.g. fault injection in tests; and credentials for a
    # TLS port (insecure when None).
    interceptors: Sequence[grpc.ServerInterceptor] = ()
    credentials: grpc.ServerCredentials | None = None


class ModelServer:
    """`start()` binds the port, loads the configured models, then serves; `stop()` drains requests in flight."""

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
            max_load_retries=max(0, options.max_num_load_retries),
            load_retry_interval=options.load_retry_interval_micros / 1e6,
            on_loaded=self._check_warmup_plan,
        )
        self.in_flight = InFlight()
        self.predictor: Predictor | None = None
        self.port = 0
        self.rest_port = 0
        self._grpc: grpc.Server | None = None
        self._grpc_started = False
        self._http: HttpServer | None = None
        self._metrics_path = ""
        self._stopping = threading.Event()
        self._xla_before: bool | None = None
        self._threads: list[threading.Thread] = []
        self._config_text = ""

    def start(self) -> int:
        """Bind the gRPC port, open the REST port, load the models, then serve gRPC; returns the gRPC port.

        Both ports are bound before the models load, so a port that is taken fails the start at
        once (not after minutes of loading); the REST API answers status (LOADING) meanwhile.
        """
        options = self.options
        cache = enable_xla_cache(options.xla_cache_dir) if options.xla_cache_dir else None
        self._bind()
        # TF Serving's main.cc: XLA JIT only when one of the two experimental flags is set. The switch is
        # process-wide; stop() puts back what it found, for servers embedded in a process (tests, demo).
        self._xla_before = xla_compilation_enabled()
        set_xla_compilation(options.xla_cpu_compilation_enabled or options.xla_gpu_compilation_enabled)
        self._start_metrics()
        self._start_batching()
        limits = RequestLimits(
            max_rows=0 if self.scheduler is not None else max(0, options.max_request_batch_size),
            max_bytes=max(0, options.max_request_bytes),
        )
        self.predictor = Predictor(self.manager, self.scheduler, self.metrics, limits, self.in_flight)
        self._start_http()
        cached = cache_entries(cache) if cache else set()
        self.reload(options.model_config)
        if cache:
            self._report_xla_cache(cache, cached)
        self._config_text = config_text(options.model_config)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, as_tensor_content=options.enable_serialization_as_tensor_content,
                              predictor=self.predictor),
            self._grpc,
        )  # fmt: skip
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager, self.reload), self._grpc)
        if self.health is not None:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        self._grpc.start()
        self._grpc_started = True
        self._start_pollers()
        log.info("gRPC server listening on %s:%d", options.host, self.port)
        return self.port

    def _bind(self) -> None:
        """Create the gRPC server and bind its port, refusing a port another process listens on.

        gRPC sets SO_REUSEPORT by default, so a second server on a taken port would
        start and silently take part of the first one's connections.
        """
        options = self.options
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc"),
            options=[
                ("grpc.max_receive_message_length", options.grpc_max_message_size),
                ("grpc.max_send_message_length", options.grpc_max_message_size),
                ("grpc.so_reuseport", 0),
            ],
            interceptors=list(options.interceptors),
        )
        address = f"{options.host}:{options.port}"
        try:
            if options.credentials is None:
                self.port = self._grpc.add_insecure_port(address)
            else:
                self.port = self._grpc.add_secure_port(address, options.credentials)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise ports.grpc_bind_failure(options.host, options.port, _bind_problem(options.host, options.port))

    def reload(self, config: ModelServerConfig) -> None:
        """Serve `config` (ServingError if it cannot be applied) and bring health up to date."""
        try:
            self.manager.reload(config)
        finally:
            self._update_health()
            log.info("serving %s", self._describe())

    def stop(self, grace: float | None = None) -> int:
        """Refuse new requests, give those in flight `grace` seconds, cancel the rest, then unload everything.

        `grace` defaults to --shutdown_grace_period_seconds. Requests still running
        after it are logged, answered CANCELLED by gRPC, and their computation is
        stopped: queued batches are dropped and the running Session steps cancelled.
        Returns the number of requests that had not returned when the server
        stopped waiting (a step inside one long XLA op cannot be interrupted).
        """
        if self._stopping.is_set():
            return 0
        self._stopping.set()
        grace = self.options.shutdown_grace_period_seconds if grace is None else grace
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        grpc_stopped = http_stopping = None
        if self._grpc is not None:  # both APIs stop taking requests, then both drain
            if self._grpc_started:
                log.info("draining: new requests are refused; requests in flight have %.0f s to finish", grace)
            else:  # start failed after binding: gRPC frees a bound port only once the server has started
                self._grpc.start()
            grpc_stopped = self._grpc.stop(grace)
        if self._http is not None:  # stops accepting at once, then waits for its requests: in the background
            http_stopping = threading.Thread(target=self._http.stop, name="http-stop")
            http_stopping.start()
        self.in_flight.wait_idle(grace)
        if grpc_stopped is not None:
            grpc_stopped.wait()
        for thread in self._threads:
            thread.join()
        still_running = self._cancel_in_flight()
        if http_stopping is not None:
            http_stopping.join()
        if self.scheduler is not None:
            self.scheduler.close(drain=not still_running)
        self.manager.close()
        if self._xla_before is not None:
            set_xla_compilation(self._xla_before)
        log.info("server stopped")
        return still_running

    def _cancel_in_flight(self) -> int:
        """Cancel the computation of requests that outlived the grace period; returns how many did not return."""
        running = self.in_flight.snapshot()
        if not running:
            return 0
        log.warning("drain period over: cancelling %d request(s) in flight: %s", len(running),
                    "; ".join(request.describe() for request in running))  # fmt: skip
        self.manager.cancel_all()  # first: closing the scheduler waits for its workers' running batches
        if self.scheduler is not None:
            self.scheduler.close(drain=False)
        if self.in_flight.wait_idle(CANCEL_WAIT_SECONDS):
            log.info("cancelled %d request(s); their computation stopped", len(running))
            return 0
        left = self.in_flight.snapshot()
        log.warning("%d request(s) still computing after cancellation (inside one XLA op, which cannot be "
                    "interrupted): %s", len(left), "; ".join(request.describe() for request in left))  # fmt: skip
        return len(left)

    # -- pieces ---------------------------------------------------------------------------------------

    def _describe(self) -> str:
        available = self.manager.available()
        return ", ".join(f"{name} versions {versions or 'none'}" for name, versions in available.items()) or "no models"

    def _report_xla_cache(self, cache: Path, before: set[str]) -> None:
        """Log what the initial loads took from and added to the persistent XLA cache."""
        written = cache_entries(cache) - before
        log.info("XLA compilation cache %s: %d program(s) there at start, %d compiled and written while loading%s",
                 cache, len(before), len(written),
                 "; the rest came from the cache" if before and not written else "")  # fmt: skip
        xla_on = self.options.xla_cpu_compilation_enabled or self.options.xla_gpu_compilation_enabled
        if xla_on and self.options.enable_model_warmup and not before and not written:
            log.warning("XLA compilation cache %s is still empty after warmup: either no version has an XLA "
                        "signature in its warmup file, or TensorFlow read %s before the server started (start "
                        "`vswin serve` with --xla_cache_dir instead of setting it on an embedded server)",
                        cache, "TF_XLA_FLAGS")  # fmt: skip

    def _check_warmup_plan(self, servable: Servable) -> None:
        """Warn when the export warmed up other batch sizes than the batcher pads to (issue: one XLA compile each)."""
        if self.scheduler is None or not self.scheduler.options.allowed_batch_sizes:
            return
        warmed = servable.metadata.get(contract.WARMUP_BATCH_SIZES_KEY)
        if warmed is None:
            return
        allowed = list(self.scheduler.options.allowed_batch_sizes)
        cold = sorted(set(allowed) - set(warmed))
        unused = sorted(set(warmed) - set(allowed))
        if cold or unused:
            log.warning("model %s version %d: warmup batch sizes %s (vswin.json) differ from the batching config's "
                        "allowed_batch_sizes %s: %s%s; export with --batch-sizes %s", servable.name, servable.version,
                        sorted(warmed), allowed,
                        f"batch sizes {cold} compile on the first request that needs them" if cold else "",
                        f"{'; ' if cold else ''}warmed-up sizes {unused} are never used" if unused else "",
                        ",".join(map(str, allowed)))  # fmt: skip

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
        from vswin.serving.rest import RestApi

        timeout = options.rest_api_timeout_in_ms / 1000 if options.rest_api_timeout_in_ms > 0 else None
        api = RestApi(self.manager, self.predictor, timeout)
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
        if options.max_num_load_retries > 0:  # checks often; each version waits its own retry interval
            period = min(1.0, max(0.05, options.load_retry_interval_micros / 1e6))
            self._spawn("load-retry", period, self._retry_failed_loads)
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

    def _retry_failed_loads(self) -> None:
        self.manager.retry_failed()
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



def _bind_problem(host: str, port: int) -> str:
    """Why gRPC could not bind a port, in the kernel's words ("address already in use", ...)."""
    err = ports.bind_error(host, port)
    return ports.reason(err) if err else "gRPC could not bind it (set GRPC_VERBOSITY=debug for details)"
