"""`vswin serve`: a TF Serving-compatible gRPC model server (argparse only at import; TF loads in the handler)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from vswin.serving.flags import add_serve_flags

    parser = subparsers.add_parser(
        "serve",
        help="Serve SavedModels over TF Serving's gRPC API (same flags as tensorflow_model_server).",
        description="Serve SavedModels over TensorFlow Serving's gRPC API with tensorflow_model_server's flags.",
        allow_abbrev=False,
    )
    add_serve_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from vswin import runtime

    runtime.apply()  # before TensorFlow loads: oneDNN and the BFC allocator are read once per process
    logging.getLogger("vswin.serving").info("process settings: %s", runtime.describe())
    from vswin.serving.main import serve

    return serve(args)
