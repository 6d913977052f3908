"""`vswin convert`: an official `.pth` checkpoint to Keras weights (`.weights.h5`)."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("vswin.convert")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert an official Video Swin .pth checkpoint to Keras weights.",
        description="Reads an mmaction2-style .pth (backbone.* and cls_head.fc_cls.*), checks every key and "
        "shape against the architecture, and writes Keras weights atomically.",
    )
    parser.add_argument("--checkpoint", required=True, help="PyTorch checkpoint (.pth).")
    parser.add_argument("--arch", required=True, help="Preset name or architecture JSON file.")
    parser.add_argument("--out", required=True, help="Output file, ending in .weights.h5.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vswin.model import load
    from vswin.model.convert import CheckpointError, save_weights_atomically

    if not args.out.endswith(".weights.h5"):
        print(f"vswin convert: --out {args.out} must end with .weights.h5", file=sys.stderr)
        return 2
    try:
        model = load(args.checkpoint, args.arch)
    except (CheckpointError, ValueError) as err:
        print(f"vswin convert: {err}", file=sys.stderr)
        return 1
    out = save_weights_atomically(model, args.out)
    head = f"head with {model.config.num_classes} classes" if model.has_head else "no head"
    log.info("wrote %s (%s, %d parameters, %s)", out, model.config.name, model.count_params(), head)
    return 0
