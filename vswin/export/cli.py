"""`vswin export`: a checkpoint to a versioned TF Serving SavedModel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vswin import contract
from vswin.export.options import ATTENTION_LAST, PRECISIONS, attention_blocks


def _size(text: str) -> tuple[int, int]:
    """`224` or `HxW` (e.g. `224x320`)."""
    try:
        parts = [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW") from None
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW with positive integers")
    return (parts[0], parts[-1])


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive integers")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Export a checkpoint as a versioned TF Serving SavedModel.",
        description="Writes BASE/NAME/VERSION atomically with the serving signatures, warmup requests "
        "(assets.extra/tf_serving_warmup_requests) and metadata (assets.extra/vswin.json).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="Official .pth checkpoint or .weights.h5 from `vswin convert`.")
    source.add_argument("--random-weights", action="store_true",
                        help="No checkpoint: random weights (for load tests and benchmarks only).")
    parser.add_argument("--arch", required=True, help="Preset name or architecture JSON file.")
    parser.add_argument("--out", required=True, help="Model base directory (BASE).")
    parser.add_argument("--name", required=True, help="Model name: the directory under BASE and the served name.")
    parser.add_argument("--version", type=int, help="Version number (default: the next free integer).")
    parser.add_argument("--frames", type=int,
                        help="Video models: frames per clip T (default: the preset's clip_len, "
                        f"{contract.CLIP_LEN} for the collection). Image models take none.")
    parser.add_argument("--size", type=_size,
                        help="Input size: N or HxW (default: the preset's, 224 for video, img_size for images).")
    parser.add_argument("--precision", default="float32", choices=tuple(PRECISIONS),
                        help="Compute precision; outputs stay float32 (default float32).")
    parser.add_argument("--labels", help="Class names, one per line (default: class indices).")
    plan = ",".join(map(str, contract.ALLOWED_BATCH_SIZES))
    parser.add_argument("--batch-sizes", type=_int_list, default=contract.ALLOWED_BATCH_SIZES,
                        help=f"Warmup batch sizes: the batching config's allowed_batch_sizes (default {plan}).")
    parser.add_argument("--default-signature", choices=contract.DEFAULT_SIGNATURE_CHOICES, default=contract.AUTO,
                        help="Which forward pass serves as serving_default: auto (default) times XLA and graph on "
                        "this machine's device and takes the faster (recorded in vswin.json; export on the serving "
                        "hardware or name one); xla; graph for servers that cannot compile XLA.")
    parser.add_argument("--with-attention", action="store_true",
                        help="Add the `attention` signature: post-softmax attention of the blocks "
                        "--attention-blocks selects (large: see docs/model.md).")
    parser.add_argument("--attention-blocks", metavar="SPEC",
                        help="With --with-attention: 'last' (default), 'all', or a comma list of stages S "
                        "and blocks S.B counted from 0, e.g. 3.0,3.1.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing version.")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace):
    """The preset and the checked attention selection; ValueError (or VersionExistsError) for arguments that
    cannot work, all found before TensorFlow loads (seconds, not a minute)."""
    from vswin.export.versions import check_target
    from vswin.model.presets import get_preset

    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise ValueError(f"--checkpoint {args.checkpoint} does not exist")
    if args.labels and not Path(args.labels).is_file():
        raise ValueError(f"--labels {args.labels} does not exist")
    preset = get_preset(args.arch)  # unknown preset names and unreadable JSON files
    attention = _attention_selection(args, preset)
    if args.version is not None:
        check_target(Path(args.out) / args.name, args.version, args.overwrite)
    return preset, attention


def run(args: argparse.Namespace) -> int:
    from vswin import runtime
    from vswin.export.versions import VersionExistsError

    try:
        preset, attention = check_arguments(args)
    except (ValueError, VersionExistsError) as err:
        print(f"vswin export: {err}", file=sys.stderr)
        return 1
    runtime.apply()  # the `auto` measurement runs with the settings `vswin serve` will run with
    import vswin.model
    from vswin.export import dtype_policy, export_model, read_labels
    from vswin.model import CheckpointError

    try:
        policy = dtype_policy(args.precision)
        labels = read_labels(Path(args.labels)) if args.labels else None
        if args.checkpoint:
            model = vswin.model.load(args.checkpoint, preset, dtype=policy)
        else:
            model = vswin.model.build(preset, dtype=policy)
        target = export_model(
            model, Path(args.out), args.name, version=args.version, frames=args.frames, size=args.size,
            precision=args.precision, labels=labels, batch_sizes=args.batch_sizes,
            default_signature=args.default_signature, overwrite=args.overwrite,
            checkpoint=Path(args.checkpoint) if args.checkpoint else None, attention_blocks=attention,
        )
    except (CheckpointError, VersionExistsError, ValueError, OSError) as err:
        print(f"vswin export: {err}", file=sys.stderr)
        return 1
    print(target)
    return 0


def _attention_selection(args: argparse.Namespace, preset) -> str | None:
    """The checked `--attention-blocks` spec (default `last`) with --with-attention, else None; family checks too."""
    if preset.family == contract.IMAGE and args.frames is not None:
        raise ValueError(f"--frames: {preset.name} is an image model, it takes images of --size, not clips")
    if args.attention_blocks and not args.with_attention:
        raise ValueError("--attention-blocks selects the blocks of --with-attention; pass both")
    if not args.with_attention:
        return None
    spec = args.attention_blocks or ATTENTION_LAST
    attention_blocks(spec, preset.backbone["depths"])
    return spec
