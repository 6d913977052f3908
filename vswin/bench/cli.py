"""`vswin bench model|serve|client`: each benchmark registers itself from its own module."""

from __future__ import annotations

import argparse

from vswin.cli import register_parts

_BENCHMARKS = (
    "vswin.bench.model_cli",   # in-process exported signatures (XLA vs graph)
    "vswin.bench.serve_cli",   # load generator against a TF Serving endpoint
    "vswin.bench.client_cli",  # client-side preprocessing throughput
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="Benchmarks: in-process model, served load, client preprocessing.")
    register_parts(parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True), _BENCHMARKS)
