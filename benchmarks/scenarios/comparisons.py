"""The four comparisons of benchmarks/README.md, measured in one run on this machine.

    python benchmarks/scenarios/comparisons.py --arch swin_tiny_patch244_window877_kinetics400_1k \
        --frames 16 --size 112 --batch-size 2 --out benchmarks/results

(a) served vs in-process, same export and batch: gRPC + server overhead
(b) server-side dynamic batching on vs off at concurrency 8
(c) XLA signature (serving_default) vs graph signature (features_graph) through the server
(d) uint8 frames (serving_default) vs float32 clips (features_float): bytes and time

Exports the model (random weights unless --checkpoint is given) with
`vswin export` (or takes --export-base), starts `vswin serve` on loopback
as needed (batching off, and on for (b)), and alternates the two arms of
each comparison (see vswin.bench.compare). With --in-process, (c) and (d)
run both arms in this process and no server is started. Writes NAME.json
and NAME.png under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from vswin.bench import compare, machine
from vswin.bench.compare import Arm
from vswin.bench.localserver import LocalServer, write_batching_parameters
from vswin.bench.loadgen import LoadSettings
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.report import write_json
from vswin.bench.transport import GrpcTransport, SavedModelTransport, Transport, read_export_metadata

MODEL = "vswin_bench"
log = logging.getLogger("comparisons")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def export(args: argparse.Namespace, base: Path) -> Path:
    """`vswin export` of the checkpoint (or random weights for the architecture) into base/MODEL/1."""
    weights = ["--checkpoint", str(args.checkpoint)] if args.checkpoint else ["--random-weights"]
    command = [
        sys.executable, "-m", "vswin", "export", *weights, "--arch", args.arch, "--out", str(base),
        "--name", MODEL, "--version", "1", "--frames", str(args.frames), "--size", str(args.size),
        "--batch-sizes", ",".join(map(str, sorted({1, 2, 4, 8, args.batch_size}))),
    ]  # fmt: skip
    log.info("%s", " ".join(command))
    subprocess.run(command, check=True)
    return base / MODEL / "1"


def main(argv: list[str] | None = None) -> int:
    from vswin import runtime

    runtime.apply()  # in-process arms run with the settings of the `vswin serve` arms they are compared with
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="swin_tiny_patch244_window877_kinetics400_1k", help="preset or arch JSON")
    parser.add_argument("--checkpoint", type=Path, help="weights to export (default: random weights)")
    parser.add_argument("--export-base", type=Path, help="use BASE/vswin_bench/1 as exported instead of exporting")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=2, help="batch of (a), (c), (d)")
    parser.add_argument("--rounds", type=int, default=2, help="A/B alternations per comparison")
    parser.add_argument("--interval-s", type=float, default=5.0, help="measurement window (perf_analyzer: 5)")
    parser.add_argument("--max-trials", type=int, default=5)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--only", default="abcd", help="which comparisons to run, e.g. 'ad'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="comparisons")
    parser.add_argument("--in-process", action="store_true",
                        help="no server: (c) and (d) with both arms in this process; (a) and (b) need a server")
    parser.add_argument("--server-flag", action="append", default=[],
                        help="extra flag for both servers, e.g. --server-flag=--xla_cpu_compilation_enabled=true")
    args = parser.parse_args(argv)
    if args.in_process and set(args.only) & set("ab"):
        parser.error("--in-process measures only (c) and (d): pass --only cd")
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")

    settings = LoadSettings(
        batch_size=args.batch_size, measurement_interval_s=args.interval_s, max_trials=args.max_trials,
        warmup_s=args.warmup_s, max_duration_s=args.warmup_s + args.interval_s * (args.max_trials + 2) + 60,
    )  # fmt: skip
    single = dataclasses.replace(settings, batch_size=1)
    servers: dict[str, LocalServer] = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vswin-compare-")))
        export_dir = args.export_base / MODEL / "1" if args.export_base else export(args, work / "models")
        # Pad merged batches to the warmed-up sizes: each other size would be one more XLA compile.
        allowed = sorted(size for size in (read_export_metadata(export_dir) or {}).get("warmup_batch_sizes", [8]) if size <= 8)
        batching = write_batching_parameters(
            work / "batching_parameters.txt", max_batch_size=allowed[-1], allowed_batch_sizes=allowed
        )

        def server(batching_on: bool) -> LocalServer:
            """The batching-off or batching-on server, started on first use."""
            key = "batching on" if batching_on else "batching off"
            if key not in servers:
                flags = ["--enable_batching", f"--batching_parameters_file={batching}"] if batching_on else []
                servers[key] = stack.enter_context(
                    LocalServer(free_port(), MODEL, export_dir.parent, [*args.server_flag, *flags])
                )
            return servers[key]

        def endpoint(signature: str = "serving_default", batching_on: bool = False) -> Transport:
            if args.in_process:
                return SavedModelTransport(export_dir, signature)
            transport = GrpcTransport(server(batching_on).target, MODEL, signature=signature, export_dir=export_dir)
            stack.callback(transport.close)
            return transport

        where = "in-process" if args.in_process else "through the server"
        default = endpoint()
        clips = random_clips(default.input.clip_shape, 8)
        frames = ClipPool(clips, "uint8")
        results = []
        if "a" in args.only:
            results.append(compare.compare(
                "a", f"served vs in-process, batch {args.batch_size}, concurrency 1",
                Arm("in-process", SavedModelTransport(export_dir), frames, 1, settings),
                Arm("served", default, frames, 1, settings), args.rounds,
            ))  # fmt: skip
        if "b" in args.only:
            results.append(compare.compare(
                "b", "server dynamic batching off vs on, batch 1 requests, concurrency 8",
                Arm("batching off", default, frames, 8, single),
                Arm("batching on", endpoint(batching_on=True), frames, 8, single), args.rounds,
            ))  # fmt: skip
        if "c" in args.only:
            results.append(compare.compare(
                "c", f"XLA (serving_default) vs graph (features_graph) {where}, batch {args.batch_size}",
                Arm("xla", default, frames, 1, settings), Arm("graph", endpoint("features_graph"), frames, 1, settings),
                args.rounds,
            ))  # fmt: skip
        if "d" in args.only:
            results.append(compare.compare(
                "d", f"uint8 frames vs float32 clips payload {where}, batch {args.batch_size}",
                Arm("uint8 frames", default, frames, 1, settings),
                Arm("float32 clips", endpoint("features_float"), ClipPool(clips, "float32"), 1, settings), args.rounds,
            ))  # fmt: skip
        document = {
            "schema": "vswin.bench.comparisons/1",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "machine": machine.describe(),
            "model": {"arch": args.arch, "checkpoint": str(args.checkpoint or "random weights"),
                      "clip": [args.frames, args.size, args.size], "export": default.metadata().get("export")},
            "servers": {name: srv.flags for name, srv in servers.items()},
            "comparisons": [c.to_dict() for c in results],
        }  # fmt: skip
    write_json(document, args.out / f"{args.name}.json")
    compare.plot(results, args.out / f"{args.name}.png")
    for c in results:
        print(json.dumps({"key": c.key, **c.summary()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
