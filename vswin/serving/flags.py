"""`vswin serve`'s command line: TF Serving's flag names and meanings, parsed with argparse.

Booleans take TF Serving's forms (`--flag`, `--flag=true`, `--flag=false`).
TF Serving flags this server does not implement are rejected by name rather
than silently ignored; anything else unknown is an argparse error.
"""

from __future__ import annotations

import argparse
import os

from vswin import contract

INT32_MAX = 2**31 - 1  # TF Serving's server-side gRPC message limit
REST_API_TIMEOUT_MS = 30000  # TF Serving's --rest_api_timeout_in_ms default
# TF Serving's load retry defaults (ServerCore::Options / main.cc): 5 retries, one minute apart.
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_MICROS = 60 * 1000 * 1000
DEFAULT_SHUTDOWN_GRACE_PERIOD_SECONDS = 30.0
DEFAULT_MAX_REQUEST_BATCH_SIZE = contract.MAX_BATCH_SIZE
DEFAULT_MAX_REQUEST_BYTES = 256 * 2**20  # eight float32 32x224x224 clips (154 MB) fit

# tensorflow_model_server flags (model_servers/main.cc) that vswin serve does not implement.
UNSUPPORTED_TF_SERVING_FLAGS = (
    "grpc_socket_path", "rest_api_enable_cors_support",
    "enable_per_model_batching_parameters", "num_load_threads", "num_unload_threads", "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "use_alts_credentials", "ssl_config_file", "platform_config_file", "per_process_gpu_memory_fraction",
    "saved_model_tags", "grpc_channel_arguments", "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model", "num_tflite_pools", "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check", "enable_profiler", "thread_pool_factory_config_file",
    "mixed_precision", "skip_initialize_tpu",
)  # fmt: skip


def default_rest_api_threads() -> int:
    """TF Serving's --rest_api_num_threads default: 4 per CPU."""
    return 4 * (os.cpu_count() or 1)


def tf_bool(text: str) -> bool:
    """TF Serving's boolean flag values: true/false (also 1/0)."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Unsupported(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is a tensorflow_model_server flag that vswin serve does not implement")


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """Add TF Serving's flags (same names, defaults and meanings) to `parser`."""
    flag = parser.add_argument

    def boolean(name: str, default: bool, text: str) -> None:
        flag(f"--{name}", type=tf_bool, nargs="?", const=True, default=default, metavar="BOOL", help=text)

    flag("--port", type=int, default=8500, help="gRPC port (default 8500; 0 picks a free one).")
    flag("--rest_api_port", type=int, default=0,
         help="HTTP port of TF Serving's REST API (and Prometheus metrics, see --monitoring_config_file); 0: none.")
    flag("--rest_api_num_threads", type=int, default=default_rest_api_threads(),
         help="Threads answering REST requests (default 4 per CPU).")
    flag("--rest_api_timeout_in_ms", type=int, default=REST_API_TIMEOUT_MS,
         help="Deadline of a REST predict request in ms (default 30000; 0: none).")
    flag("--model_name", default="default", help="Model name when serving one model (default 'default').")
    flag("--model_base_path", default="", help="Directory holding the model's integer version directories.")
    flag("--model_config_file", default="",
         help="ModelServerConfig text proto (models.config); overrides --model_name/--model_base_path.")
    flag("--model_config_file_poll_wait_seconds", type=int, default=0,
         help="Re-read --model_config_file every N seconds (0: read once).")
    flag("--file_system_poll_wait_seconds", type=int, default=1,
         help="Rescan base paths for new/removed versions every N seconds (0: scan once).")
    flag("--max_num_load_retries", type=int, default=DEFAULT_MAX_NUM_LOAD_RETRIES,
         help="Times a failed load is retried before giving up (default 5; 0: load once), as TF Serving.")
    flag("--load_retry_interval_micros", type=int, default=DEFAULT_LOAD_RETRY_INTERVAL_MICROS,
         help="Microseconds between load retries (default 60000000, one minute), as TF Serving.")
    boolean("enable_batching", False, "Merge concurrent Predict requests into batches.")
    flag("--batching_parameters_file", default="", help="BatchingParameters text proto for --enable_batching.")
    boolean("enable_model_warmup", True, "Replay assets.extra/tf_serving_warmup_requests at load (default true).")
    flag("--num_request_iterations_for_warmup", type=int, default=1, help="Times each warmup record is replayed.")
    flag("--monitoring_config_file", default="", help="MonitoringConfig text proto (Prometheus on --rest_api_port).")
    flag("--grpc_max_message_size", type=int, default=INT32_MAX,
         help="Largest gRPC message in bytes, both ways (default INT32_MAX as TF Serving; vswin extension).")
    flag("--grpc_max_threads", type=int, default=32, help="gRPC worker threads.")
    boolean("enable_grpc_healthcheck_service", False, "Serve grpc.health.v1.Health.")
    boolean("allow_version_labels_for_unavailable_models", False,
            "Allow a new version label to point at a version that is not available yet.")
    boolean("xla_cpu_compilation_enabled", False, "EXPERIMENTAL (as TF Serving): allow XLA JIT on CPU.")
    boolean("xla_gpu_compilation_enabled", False, "EXPERIMENTAL (as TF Serving): allow XLA JIT on CPU and GPU.")
    boolean("enable_serialization_as_tensor_content", False,
            "Serialize Predict outputs as tensor_content bytes instead of typed repeated fields.")
    flag("--host", default="0.0.0.0", help="Address to listen on (vswin extension; TF Serving uses 0.0.0.0).")
    flag("--max_request_batch_size", type=int, default=DEFAULT_MAX_REQUEST_BATCH_SIZE,
         help=f"Rows one Predict request may carry without --enable_batching (default {DEFAULT_MAX_REQUEST_BATCH_SIZE}; "
         "0: no limit); more is INVALID_ARGUMENT. With batching, max_batch_size applies (vswin extension).")
    flag("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
         help=f"Decoded bytes of one request's inputs (default {DEFAULT_MAX_REQUEST_BYTES}; 0: no limit); "
         "more is RESOURCE_EXHAUSTED (vswin extension).")
    flag("--shutdown_grace_period_seconds", type=float, default=DEFAULT_SHUTDOWN_GRACE_PERIOD_SECONDS,
         help="On SIGTERM/SIGINT, seconds requests in flight may take to finish before they are cancelled and "
         "their computation stopped (default 30; vswin extension).")
    flag("--xla_cache_dir", default="",
         help="Persistent XLA compilation cache: compiled programs are written here and read back on the next "
         "start instead of compiling again (TF_XLA_FLAGS --tf_xla_persistent_cache_directory; vswin extension).")
    flag("--version", action="store_true", help="Print versions and exit.")
    for name in UNSUPPORTED_TF_SERVING_FLAGS:
        flag(f"--{name}", action=_Unsupported, nargs="?", help=argparse.SUPPRESS)
