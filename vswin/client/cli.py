"""`vswin extract`: videos to features through a TF Serving endpoint, with progress, resume and a failure summary.

Imports only argparse at module level; the client (grpc, OpenCV) and tqdm load
inside the handler. Never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vswin import contract

log = logging.getLogger("vswin.extract")


DESCRIPTION = (
    "Decodes each video, samples clips like the official test pipeline, sends them to the "
    "model over gRPC and writes NAME.npy (video-level features [C]), NAME.clips.npy (per clip and crop "
    "[clips, crops, C]) and NAME.json (clip times, model and version) per video, or JSON lines to stdout. "
    "Videos already extracted are skipped unless --overwrite; failures are listed at the end and make "
    "the exit code 1."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="Extract Video Swin features from video files through a TF Serving endpoint.",
        description=DESCRIPTION,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `vswin extract` (also `python -m vswin.client`)."""
    parser.add_argument("videos", nargs="*", metavar="VIDEO", help="Video files (or URLs OpenCV can open).")
    parser.add_argument("--list", type=Path, help="File with one video per line ('-' for stdin; # comments).")
    parser.add_argument("--server", required=True, help="gRPC target, e.g. localhost:8500 or dns:///serving:8500.")
    parser.add_argument("--model", required=True, help="Model name in the server's config.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="Model version (default: the server's latest).")
    which.add_argument("--label", help="Model version label, e.g. stable.")
    parser.add_argument("--signature", default=contract.SERVING_DEFAULT,
                        help=f"Signature to call (default {contract.SERVING_DEFAULT}).")
    add_sampling_arguments(parser)
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, help="Directory for NAME.npy, NAME.clips.npy and NAME.json.")
    out.add_argument("--format", choices=("jsonl",), help="Write one JSON object per video to stdout instead.")
    parser.add_argument("--overwrite", action="store_true", help="Extract again even if outputs exist.")
    parser.add_argument("--concurrency", type=int, default=4, help="Predict requests in flight (default 4).")
    parser.add_argument("--decode-workers", type=int, help="Video decode threads (default: CPU count).")
    parser.add_argument("--max-batch", type=int, default=contract.MAX_BATCH_SIZE,
                        help=f"Clips per request at most (default {contract.MAX_BATCH_SIZE}).")
    parser.add_argument("--timeout", type=float, default=60.0, help="Deadline per request, seconds (default 60).")
    add_tls_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(func=run)


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """How videos become clips (ExtractOptions): for every command that extracts features."""
    parser.add_argument("--sampling", choices=("uniform", "dense", "sliding"), default="uniform")
    parser.add_argument("--clips", type=int, default=contract.NUM_CLIPS,
                        help=f"Clips per video (uniform, dense; default {contract.NUM_CLIPS}).")
    parser.add_argument("--crops", type=int, choices=(1, 3), default=contract.NUM_CROPS,
                        help=f"1 center crop or 3 crops (default {contract.NUM_CROPS}).")
    parser.add_argument("--frame-interval", type=int, default=contract.FRAME_INTERVAL,
                        help=f"Take every Nth frame (default {contract.FRAME_INTERVAL}).")
    parser.add_argument("--stride", type=int, help="Frames between sliding windows (default: one clip span).")
    parser.add_argument("--sample-range", type=int, help="Frames the dense sampling draws from (default: one clip span).")
    parser.add_argument("--short-side", type=int, help="Resize the short side to this before cropping.")


def extract_options(args: argparse.Namespace) -> dict[str, object]:
    """The add_sampling_arguments options as ExtractOptions keyword arguments."""
    return {
        "sampling": args.sampling,
        "clips": args.clips,
        "crops": args.crops,
        "frame_interval": args.frame_interval,
        "stride": args.stride,
        "sample_range": args.sample_range,
        "short_side": args.short_side,
    }


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """--tls, --root-certs, --client-cert, --client-key: for every command that calls a server."""
    parser.add_argument("--tls", action="store_true", help="Use TLS with the system's root certificates.")
    parser.add_argument("--root-certs", type=Path, help="PEM file of root certificates (implies TLS).")
    parser.add_argument("--client-cert", type=Path, help="PEM client certificate for mutual TLS.")
    parser.add_argument("--client-key", type=Path, help="PEM client key for mutual TLS.")


def tls_options(args: argparse.Namespace) -> dict[str, object]:
    """The add_tls_arguments options as ChannelSettings keyword arguments."""
    return {
        "tls": args.tls,
        "root_certificates": args.root_certs,
        "client_certificate": args.client_cert,
        "client_key": args.client_key,
    }


def read_video_list(videos: list[str], list_file: Path | None) -> list[str]:
    """VIDEO arguments followed by the --list file's lines (blank lines and # comments skipped)."""
    names = list(videos)
    if list_file is not None:
        text = sys.stdin.read() if str(list_file) == "-" else list_file.read_text()
        names += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return names


def output_paths(out: Path, video: str) -> dict[str, Path]:
    stem = Path(video.split("?")[0]).stem
    return {"features": out / f"{stem}.npy", "clips": out / f"{stem}.clips.npy", "sidecar": out / f"{stem}.json"}


def is_done(paths: dict[str, Path]) -> bool:
    """The sidecar is written last, so its presence (with the arrays) means the video was finished."""
    return all(p.exists() for p in paths.values())


def write_outputs(paths: dict[str, Path], result: object) -> None:
    """Write arrays then sidecar, each through a temporary file and a rename, so a crash leaves no half output."""
    import json

    import numpy as np

    for key, array in (("features", result.features), ("clips", result.clip_features)):
        tmp = paths[key].with_name(paths[key].name + ".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, array)
        tmp.replace(paths[key])
    tmp = paths["sidecar"].with_name(paths["sidecar"].name + ".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    tmp.replace(paths["sidecar"])


def run(args: argparse.Namespace) -> int:
    import asyncio

    videos = read_video_list(args.videos, args.list)
    if not videos:
        print("vswin extract: no videos given (VIDEO arguments or --list FILE)", file=sys.stderr)
        return 2
    todo, skipped = videos, 0
    if args.out is not None:
        stems: dict[Path, str] = {}
        for video in videos:
            key = output_paths(args.out, video)["features"]
            if key in stems and stems[key] != video:
                print(f"vswin extract: {stems[key]} and {video} would both write {key}", file=sys.stderr)
                return 2
            stems[key] = video
        args.out.mkdir(parents=True, exist_ok=True)
        if not args.overwrite:
            todo = [v for v in videos if not is_done(output_paths(args.out, v))]
            skipped = len(videos) - len(todo)
            if skipped:
                log.info("skipping %d video(s) already extracted in %s (--overwrite to redo)", skipped, args.out)
    return asyncio.run(_extract_all(args, todo, skipped))


async def _extract_all(args: argparse.Namespace, videos: list[str], skipped: int) -> int:
    import time

    from tqdm import tqdm

    from vswin.client import AsyncVideoSwinClient, ClientError

    failures: list[tuple[str, str]] = []
    done = clips = 0
    client = AsyncVideoSwinClient(
        args.server,
        args.model,
        version=args.version,
        label=args.label,
        signature=args.signature,
        timeout=args.timeout,
        max_batch=args.max_batch,
        **tls_options(args),
    )
    async with client:
        try:
            info = await client.model_info()
        except ClientError as err:
            print(f"vswin extract: {err}", file=sys.stderr)
            return 1
        log.info("model %s version %d: clips %s, %s features", info.name, info.version, info.clip_shape, info.feature_dim)
        start = time.monotonic()
        bar = tqdm(total=len(videos), unit="video", disable=args.no_progress or None, file=sys.stderr)
        async for video, result in client.extract_many(
            videos, concurrency=args.concurrency, decode_workers=args.decode_workers, **extract_options(args)
        ):
            if isinstance(result, Exception):
                failures.append((video, f"{type(result).__name__}: {result}"))
                log.error("%s failed: %s", video, result)
            else:
                if args.out is not None:
                    write_outputs(output_paths(args.out, video), result)
                else:
                    print(result.dumps(), flush=True)
                done += 1
                clips += result.num_clips
            bar.update(1)
            bar.set_postfix(clips_per_s=f"{clips / max(time.monotonic() - start, 1e-9):.1f}", failed=len(failures))
        bar.close()
    elapsed = time.monotonic() - start
    print(
        f"vswin extract: {done} extracted, {skipped} skipped, {len(failures)} failed "
        f"({clips} clips in {elapsed:.1f}s, {done / max(elapsed, 1e-9):.2f} videos/s, {clips / max(elapsed, 1e-9):.1f} clips/s)",
        file=sys.stderr,
    )
    for video, reason in failures:
        print(f"  FAILED {video}: {reason}", file=sys.stderr)
    return 1 if failures else 0
