"""`vswin bench serve`: load against a TF Serving-compatible endpoint (or a SavedModel in-process).

    vswin bench serve --server localhost:8500 --model vswin_tiny --concurrency 1,2,4,8 --out benchmarks/results
    vswin bench serve --server localhost:8500 --model vswin_tiny --rate 2,4,8 --video clip.mp4
    vswin bench serve --in-process exports/vswin_tiny/1 --concurrency 1,8      # the no-network baseline
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vswin import contract
from vswin.client.cli import add_tls_arguments, tls_options

log = logging.getLogger(__name__)


def _numbers(kind: type) -> object:
    def parse(text: str) -> list:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
        return values

    return parse


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Measurement flags, named after perf_analyzer's where it has one."""
    group = parser.add_argument_group("measurement (perf_analyzer's method)")
    group.add_argument("--batch-size", type=int, default=1, help="clips per request (default 1)")
    sweep = group.add_mutually_exclusive_group()
    sweep.add_argument("--concurrency", type=_numbers(int), help="closed loop: requests in flight, e.g. 1,2,4,8 (default)")
    sweep.add_argument("--rate", type=_numbers(float), help="open loop: Poisson arrivals per second, e.g. 2,4,8")
    group.add_argument("--measurement-interval-ms", type=float, default=5000, help="window length (default 5000)")
    group.add_argument("--stability-percentage", type=float, default=10.0,
                       help="last three windows must agree within this percent on throughput and mean latency (default 10)")
    group.add_argument("--max-trials", type=int, default=10, help="most windows per setting (default 10)")
    group.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured load before the first window (default 2)")
    group.add_argument("--max-requests", type=int, default=100_000, help="bound on requests per setting")
    group.add_argument("--max-duration-s", type=float, default=120.0, help="bound on seconds per setting (default 120)")
    group.add_argument("--max-inflight", type=int, default=64,
                       help="open loop: most outstanding requests; later arrivals queue on the client (default 64)")
    group.add_argument("--seed", type=int, default=0, help="seed of the random clips and Poisson arrivals")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="Load generator against a TF Serving endpoint: concurrency sweep or Poisson rates.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="gRPC target HOST:PORT of TF Serving or `vswin serve`")
    where.add_argument("--in-process", metavar="EXPORT_DIR", help="call the SavedModel BASE/NAME/VERSION in this process")
    parser.add_argument("--model", help="model name on the server (required with --server)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="model version label, e.g. stable")
    parser.add_argument("--signature", default=contract.SERVING_DEFAULT,
                        help=f"signature to call (default {contract.SERVING_DEFAULT})")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request deadline in seconds (default 60)")
    add_tls_arguments(parser)
    parser.add_argument("--video", type=Path, help="make the clips from this video instead of random frames")
    parser.add_argument("--clips", type=int, default=8, help="distinct clips to cycle through (default 8)")
    parser.add_argument("--export-dir", type=Path, help="the served export's directory, to record its vswin.json")
    parser.add_argument("--server-flags", default="", help="the server's command line, recorded in the results")
    parser.add_argument("--name", help="result file stem (default: derived from model, signature and batch)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output directory")
    parser.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")
    add_load_arguments(parser)
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> object:
    from vswin.bench.loadgen import LoadSettings

    return LoadSettings(
        batch_size=args.batch_size,
        measurement_interval_s=args.measurement_interval_ms / 1000.0,
        stability_pct=args.stability_percentage,
        max_trials=args.max_trials,
        warmup_s=args.warmup_s,
        max_requests=args.max_requests,
        max_duration_s=args.max_duration_s,
        max_inflight=args.max_inflight,
    )


def open_transport(args: argparse.Namespace) -> object:
    from vswin.bench.transport import GrpcTransport, SavedModelTransport

    if args.in_process:
        return SavedModelTransport(args.in_process, args.signature)
    if not args.model:
        raise SystemExit("vswin bench serve: --model is required with --server")
    return GrpcTransport(
        args.server, args.model, version=args.version, label=args.label, signature=args.signature,
        timeout=args.timeout, export_dir=args.export_dir, **tls_options(args),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from vswin import runtime

    if args.in_process:
        runtime.apply()  # the in-process model runs with the settings `vswin serve` runs with
    from vswin.bench import loadgen, machine, report
    from vswin.bench.payload import ClipPool, random_clips, video_clips

    from vswin.client import VideoSwinClientError

    try:
        settings = settings_from(args)
        transport = open_transport(args)
    except (ValueError, VideoSwinClientError) as err:
        raise SystemExit(f"vswin bench serve: {err}") from None
    results, failed = [], []
    try:
        spec = transport.input
        try:
            clips = (
                video_clips(args.video, spec.clip_shape, args.clips)
                if args.video
                else random_clips(spec.clip_shape, args.clips, args.seed)
            )
        except (ValueError, VideoSwinClientError) as err:
            raise SystemExit(f"vswin bench serve: {err}") from None
        pool = ClipPool(clips, spec.dtype)
        if args.rate:
            mode, values = "rate", args.rate
            measure = lambda rate: loadgen.open_loop(transport, pool, rate, settings, seed=args.seed)  # noqa: E731
        else:
            mode, values = "concurrency", args.concurrency or [1, 2, 4, 8]
            measure = lambda concurrency: loadgen.closed_loop(transport, pool, concurrency, settings)  # noqa: E731
        for value in values:
            log.info("%s=%g", mode, value)
            try:
                results.append(measure(value))
            except ValueError as err:  # e.g. no window completed within the bounds: report it, go on
                log.error("%s=%g failed: %s", mode, value, err)
                failed.append({"mode": mode, "value": value, "error": str(err)})
        target = transport.metadata()
    finally:
        transport.close()
    target["server_flags"] = args.server_flags or None
    target["payload"] = {"source": str(args.video) if args.video else "random", "clips": args.clips,
                         "dtype": spec.dtype, "clip_shape": list(spec.clip_shape)}  # fmt: skip
    recorded = dataclasses.asdict(settings)
    stem = args.name or _stem(target, args)
    described = machine.describe()
    document = report.run_document(results, described, target, recorded, failed)
    title = f"{stem} ({described['cpu']}, {described['cores']} cores)"
    paths = report.write_all(results, document, args.out, stem, title, plots=not args.no_plots)
    if results:
        report.print_table(results, title)
    for path in paths:
        print(f"wrote {path}")
    for failure in failed:
        print(f"vswin bench serve: {failure['mode']}={failure['value']:g} failed: {failure['error']}", file=sys.stderr)
    return 1 if failed else 0


def _stem(target: dict, args: argparse.Namespace) -> str:
    where = "inprocess" if args.in_process else "served"
    name = target.get("model") or Path(args.in_process).parent.name
    mode = "rate" if args.rate else "concurrency"
    return f"{where}_{name}_{args.signature}_b{args.batch_size}_{mode}"
