"""The `vswin` command: one subcommand per part of the package.

Each part registers its own subcommands from a small `cli` module that
imports only argparse at module level; heavy imports (TensorFlow, torch,
OpenCV) happen inside the handler, so `vswin --help` and the client's
commands stay fast and TensorFlow-free.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path


def _has_nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


# TensorFlow's C++ start-up chatter (CPU feature notes, CUDA probing) hides the command's own output. Without
# an NVIDIA driver its GPU probing logs "failed call to cuInit" as an ERROR on every run: keep errors out too.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if _has_nvidia_driver() else "3")

# Modules that define `register(subparsers)`; order is the order in --help.
_PARTS = (
    "vswin.model.cli",
    "vswin.export.cli",
    "vswin.serving.cli",
    "vswin.serving.config_cli",
    "vswin.client.cli",
    "vswin.beam.cli",
    "vswin.bench.cli",
    "vswin.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vswin",
        description="Video Swin Transformer feature extractors on TensorFlow Serving.",
    )
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default INFO).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_parts(subparsers, _PARTS)
    return parser


def register_parts(subparsers: argparse._SubParsersAction, module_names: tuple[str, ...]) -> None:
    """Let each named module add its subcommands; a part not present in this install is left out."""
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Commands that run on a framework with options of its own (`vswin beam`: Beam's pipeline options)
    # take the arguments they don't know and hand them on; every other command rejects them.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_pipeline_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pipeline_args = extra
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
