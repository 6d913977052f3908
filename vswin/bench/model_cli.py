"""`vswin bench model`: in-process latency of an export's signatures (XLA vs graph)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vswin import contract


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model",
        help="Time exported signatures in-process (serving_default/XLA vs features_graph).",
        description="Loads each SavedModel version directory, calls the signatures alternately after warmup, "
        "and writes latency and clips/s per signature and batch size, with the XLA/graph ratio.",
    )
    parser.add_argument("--savedmodel", nargs="+", required=True,
                        help="Version directories (BASE/NAME/N); several for a precision comparison.")
    parser.add_argument("--signature", nargs="+",
                        help="Signatures to time (default: the export's XLA and graph forward passes).")
    plan = ",".join(map(str, contract.ALLOWED_BATCH_SIZES))
    parser.add_argument("--batch-sizes", default=plan, help=f"Comma-separated (default {plan}).")
    parser.add_argument("--iters", type=int, default=10, help="Timed calls per signature and batch (default 10).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed calls first, XLA compiles here (default 2).")
    parser.add_argument("--out", default="benchmarks/results/model_inprocess.json", help="Result JSON.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vswin.bench.machine import describe
    from vswin.bench.model import ratios, time_export, xla_and_graph
    from vswin.bench.transport import read_export_metadata

    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        print(f"vswin bench model: --batch-sizes {args.batch_sizes!r} must be comma-separated integers",
              file=sys.stderr)
        return 2
    exports = []
    for directory in args.savedmodel:
        if not (Path(directory) / "saved_model.pb").is_file():
            print(f"vswin bench model: {directory} is not a SavedModel version directory", file=sys.stderr)
            return 1
        meta = read_export_metadata(directory) or {}
        try:  # the signature list of assets.extra/vswin.json; exports without it need --signature
            xla, graph = xla_and_graph(meta.get("signatures") or args.signature or [])
            rows = time_export(directory, args.signature or [xla, graph], batch_sizes, args.iters, args.warmup)
        except ValueError as err:
            print(f"vswin bench model: {directory}: {err}", file=sys.stderr)
            return 1
        exports.append({
            "savedmodel": str(directory), "precision": meta.get("precision"),
            "architecture": (meta.get("architecture") or {}).get("name"), "clip": meta.get("clip"),
            "signatures": {"xla": xla, "graph": graph},
            "results": rows, "graph_over_xla_latency": ratios(rows, baseline=graph, candidate=xla),
        })
        for row in rows:
            print(f"{meta.get('precision', '?'):>8} {row['signature']:>16} batch {row['batch_size']:>2}: "
                  f"p50 {row['latency_ms']['p50']:9.1f} ms  {row['clips_per_s']:7.2f} clips/s")
        print("graph/XLA latency ratio per batch:", json.dumps(exports[-1]["graph_over_xla_latency"]))
    report = {"benchmark": "model_inprocess", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": describe(), "settings": {"signatures": args.signature or "xla and graph", "batch_sizes": batch_sizes,
                                                  "iters": args.iters, "warmup": args.warmup},
              "exports": exports}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0
