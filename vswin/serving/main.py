"""Run `vswin serve` from parsed flags until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)

# The kernel may hand SIGTERM to any thread of the process, TensorFlow's and gRPC's included. Python then runs
# the handler in the main thread, but only once that thread runs Python code again: a wait without a timeout
# would never wake, and the server would ignore the signal until it is killed. Hence a wait in steps.
STOP_POLL_S = 0.25


def wait_until_set(event: threading.Event, poll_s: float = STOP_POLL_S) -> None:
    """Block until `event` is set, waking every `poll_s` so that signal handlers run (see STOP_POLL_S)."""
    while not event.wait(poll_s):
        pass


def model_config_from_args(args: argparse.Namespace):
    """The ModelServerConfig that `vswin serve`'s flags name (no TensorFlow needed); ValueError if bad or missing."""
    from vswin.serving.model_config import read_model_config, single_model_config

    if args.model_config_file:
        return read_model_config(args.model_config_file)
    if args.model_base_path:
        return single_model_config(args.model_name, args.model_base_path)
    raise ValueError("either --model_config_file or --model_base_path is required")


def options_from_args(args: argparse.Namespace, config=None):
    """ServerOptions from `vswin serve`'s flags (`config`: their model config, if already read); ValueError for
    a bad or missing model config."""
    from vswin.serving.server import ServerOptions

    if config is None:
        config = model_config_from_args(args)
    fields = set(ServerOptions.__dataclass_fields__) - {"model_config"}
    return ServerOptions(model_config=config, **{name: getattr(args, name) for name in fields if hasattr(args, name)})


def serve(args: argparse.Namespace) -> int:
    """Start the server, block until SIGTERM or SIGINT, stop it gracefully; 0 on a clean shutdown."""
    if args.version:
        import tensorflow as tf

        print(f"vswin serve (TensorFlow Serving gRPC API)\nTensorFlow Library: {tf.__version__}")
        return 0
    from vswin.serving import ports

    try:
        config = model_config_from_args(args)
    except ValueError as err:
        print(f"vswin serve: {err}", file=sys.stderr)
        return 2
    try:  # before TensorFlow loads: a taken port fails in a second, not after TensorFlow's start-up
        ports.check_not_taken(args.host, args.port, args.rest_api_port)
    except OSError as err:
        log.error("failed to start server: %s", err)
        return 1
    from vswin import runtime
    from vswin.serving.server import ModelServer

    log.info("running on %s", runtime.describe_tensorflow())
    options = options_from_args(args, config)
    server = ModelServer(options)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.set())
    try:
        server.start()
    except Exception as err:
        log.error("failed to start server: %s", err)
        server.stop(grace=0)
        return 1
    wait_until_set(stop)
    log.info("shutting down: draining requests in flight (--shutdown_grace_period_seconds=%g)",
             options.shutdown_grace_period_seconds)  # fmt: skip
    if server.stop():  # requests inside an op that cannot be interrupted: do not wait for them at exit
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
