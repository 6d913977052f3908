"""`vswin convert`: an official checkpoint of either family to Keras weights (`.weights.h5`)."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("vswin.convert")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert an official Video Swin or Swin checkpoint to Keras weights.",
        description="Reads a Video Swin .pth (mmaction2: backbone.* and cls_head.fc_cls.*), a Swin / Swin-S3 .pth "
        "(microsoft/Swin-Transformer: {'model': ...}) or the timm layout of one (.safetensors or .pth), checks "
        "every key and shape against the architecture, and writes Keras weights atomically.",
    )
    parser.add_argument("--checkpoint", required=True, help="Checkpoint (.pth or .safetensors).")
    parser.add_argument("--arch", required=True, help="Preset name or architecture JSON file.")
    parser.add_argument("--out", required=True, help="Output file, ending in .weights.h5.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vswin.model import CheckpointError, load
    from vswin.model.convert import save_weights_atomically

    if not args.out.endswith(".weights.h5"):
        print(f"vswin convert: --out {args.out} must end with .weights.h5", file=sys.stderr)
        return 2
    try:
        model = load(args.checkpoint, args.arch)
    except (CheckpointError, ValueError) as err:
        print(f"vswin convert: {err}", file=sys.stderr)
        return 1
    out = save_weights_atomically(model, args.out)
    head = f"head with {model.num_classes} classes" if model.has_head else "no head"
    log.info("wrote %s (%s model %s, %d parameters, %s)", out, model.family, model.name, model.count_params(), head)
    return 0
