"""`vswin bench client`: the client's preprocessing throughput in clips/s per core on real videos.

    vswin bench client --video bikes.mp4 --video bigbuckbunny.mp4 --out benchmarks/results
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vswin import contract


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "client",
        help="Client preprocessing throughput: decode + sample + resize + crop + serialize, clips/s per core.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--video", type=Path, action="append", required=True, help="a video file (repeatable)")
    parser.add_argument("--clip-len", type=int, default=contract.CLIP_LEN,
                        help=f"frames per clip (default {contract.CLIP_LEN})")
    parser.add_argument("--size", type=int, default=contract.CROP_SIZE, help=f"crop size (default {contract.CROP_SIZE})")
    parser.add_argument("--frame-interval", type=int, default=contract.FRAME_INTERVAL,
                        help=f"take every Nth frame (default {contract.FRAME_INTERVAL})")
    parser.add_argument("--clips", type=int, default=contract.NUM_CLIPS,
                        help=f"clips per video (default {contract.NUM_CLIPS})")
    parser.add_argument("--crops", type=int, choices=(1, 3), default=contract.NUM_CROPS,
                        help=f"crops per clip (default {contract.NUM_CROPS})")
    parser.add_argument("--sampling", choices=("uniform", "dense"), default="uniform", help="clip sampling")
    parser.add_argument("--repeats", type=int, default=3, help="measured passes per video (default 3)")
    parser.add_argument("--name", default="client_preprocess", help="result file stem")
    parser.add_argument("--out", type=Path, default=Path("."),
                        help="output directory (default: the current directory; NAME.json is written there)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import datetime as dt
    import sys

    from rich.console import Console
    from rich.table import Table

    from vswin.bench import machine, report
    from vswin.bench.preprocess import PreprocessSettings, measure

    settings = PreprocessSettings(
        clip_len=args.clip_len, size=args.size, frame_interval=args.frame_interval, clips=args.clips,
        crops=args.crops, repeats=args.repeats, sampling=args.sampling,
    )  # fmt: skip
    from vswin.client import VideoSwinClientError

    try:
        results = [measure(video, settings) for video in args.video]
    except VideoSwinClientError as err:
        raise SystemExit(f"vswin bench client: {err}") from None
    table = Table(title=f"client preprocessing, {args.clip_len}x{args.size}x{args.size}, {args.crops} crop(s)")
    for name in ("video", "views", "decode+crop s", "serialize s", "MB/request", "clips/s", "clips/s per core", "CPU use"):
        table.add_column(name, justify="left" if name == "video" else "right")
    for r in results:
        table.add_row(
            Path(r.video).name, str(r.views), f"{r.decode_s:.3f}", f"{r.serialize_s:.4f}",
            f"{r.request_bytes / 1e6:.1f}", f"{r.wall_clips_per_s:.2f}", f"{r.cpu_clips_per_s:.2f}",
            f"{r.cpu_utilization:.2f}",
        )  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    document = {
        "schema": "vswin.bench.client/1",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "settings": dataclasses.asdict(settings),
        "results": [dataclasses.asdict(r) for r in results],
    }
    print(f"wrote {report.write_json(report.jsonable(document), args.out / f'{args.name}.json')}")
    return 0
