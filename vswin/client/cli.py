"""`vswin extract`: videos and images to features through a TF Serving endpoint, with progress, resume and a
failure summary.

Imports only argparse at module level; the client (grpc, OpenCV) and tqdm load
inside the handler. Never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vswin import contract

if TYPE_CHECKING:
    from vswin.client.extract import ExtractOptions, Result
    from vswin.client.metadata import ModelInfo

log = logging.getLogger("vswin.extract")


DESCRIPTION = (
    "Decodes each video or image (jpg, png, webp), samples and crops it the way the model was evaluated "
    "(the preprocessing recorded in its export; flags override it), sends it to the model over gRPC and "
    "writes NAME.npy (features [C]; for a video the mean over its views), NAME.clips.npy (videos: per clip "
    "and crop [clips, crops, C]) and NAME.json (clip times, model and version), or JSON lines to stdout. "
    "An image model gets images, or --frames-per-video frames of each video. Files already extracted are "
    "skipped unless --overwrite; a file that cannot be read or written is a failure of that file only: "
    "failures are listed at the end and make the exit code 1."
)
MODEL_DEFAULT = "default: the model's, from its export"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="Extract Video Swin / Swin features from videos and images through a TF Serving endpoint.",
        description=DESCRIPTION,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `vswin extract` (also `python -m vswin.client`)."""
    parser.add_argument("videos", nargs="*", metavar="FILE",
                        help="Video files (or URLs OpenCV can open) and image files (.jpg, .jpeg, .png, .webp).")
    parser.add_argument("--list", type=Path, help="File with one video or image per line ('-' for stdin; # comments).")
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
    out.add_argument("--format", choices=("jsonl",), help="Write one JSON object per file to stdout instead.")
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
    """How videos and images become model input (ExtractOptions): for every command that extracts features.
    Unset, each is the model's preprocessing, from its export."""
    video = parser.add_argument_group("video models (unset: the model's preprocessing, from its export)")
    video.add_argument("--sampling", choices=contract.SAMPLING_MODES, help=f"Clip sampling ({MODEL_DEFAULT}).")
    video.add_argument("--clips", type=int, help=f"Clips per video (uniform, dense, segments; {MODEL_DEFAULT}).")
    video.add_argument("--crops", type=int, choices=(1, 3), help=f"1 center crop or 3 crops ({MODEL_DEFAULT}).")
    video.add_argument("--frame-interval", type=int, help=f"Take every Nth frame ({MODEL_DEFAULT}).")
    video.add_argument("--stride", type=int, help="Frames between sliding windows (default: one clip span).")
    video.add_argument("--sample-range", type=int, help="Frames the dense sampling draws from (default: one clip span).")
    video.add_argument("--short-side", type=int, help=f"Resize the short side to this before cropping ({MODEL_DEFAULT}).")
    parser.add_argument("--frames-per-video", type=int,
                        help=f"Image models: frames of each video to send, spread evenly (default {contract.FRAMES_PER_VIDEO}).")


def extract_options(args: argparse.Namespace) -> dict[str, object]:
    """The add_sampling_arguments options as ExtractOptions keyword arguments."""
    names = ("sampling", "clips", "crops", "frame_interval", "stride", "sample_range", "short_side", "frames_per_video")
    return {name: getattr(args, name) for name in names}


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


def output_paths(out: Path, source: str) -> dict[str, Path]:
    """NAME.npy and NAME.json, plus NAME.clips.npy for a video."""
    from vswin.client.image import is_image_file

    stem = Path(source.split("?")[0]).stem
    paths = {"features": out / f"{stem}.npy", "clips": out / f"{stem}.clips.npy", "sidecar": out / f"{stem}.json"}
    if is_image_file(source):
        del paths["clips"]
    return paths


def is_done(paths: dict[str, Path]) -> bool:
    """The sidecar is written last, so its presence (with the arrays) means the file was finished."""
    return all(p.exists() for p in paths.values())


def check_output(out: Path) -> str | None:
    """Create the --out directory if needed and make sure a file can be written there: None, or the problem."""
    import tempfile

    if out.exists() and not out.is_dir():
        return f"--out {out} is not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        return f"cannot write to --out {out}: {err.strerror or err}"
    return None


def write_outputs(paths: dict[str, Path], result: Result) -> None:
    """Write the arrays and the sidecar to temporary files, then rename them into place, the sidecar last.

    A crash leaves no half output, and a write that fails (full disk,
    permissions) leaves nothing of this file's: the temporary files are
    removed, and so are outputs already renamed, so the file counts as not done.
    """
    import io
    import json

    import numpy as np

    arrays = {"features": result.features}
    if "clips" in paths:
        arrays["clips"] = result.clip_features
    temps = {key: path.with_name(path.name + ".tmp") for key, path in paths.items()}
    renamed = False
    try:
        for key, array in arrays.items():
            # Through Python's file object: np.save to a file writes with C stdio and misses a short write
            # (full disk, size limit), leaving a truncated .npy without an error.
            encoded = io.BytesIO()
            np.save(encoded, array)
            temps[key].write_bytes(encoded.getbuffer())
        temps["sidecar"].write_text(json.dumps(result.to_json(), indent=1) + "\n")
        for key in (*arrays, "sidecar"):
            renamed = True
            temps[key].replace(paths[key])
    except OSError:
        for path in [*temps.values(), *(paths.values() if renamed else ())]:
            path.unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    import asyncio

    videos = read_video_list(args.videos, args.list)
    if not videos:
        print("vswin extract: no videos or images given (FILE arguments or --list FILE)", file=sys.stderr)
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
        problem = check_output(args.out)
        if problem:
            print(f"vswin extract: {problem}", file=sys.stderr)
            return 2
        if not args.overwrite:
            todo = [v for v in videos if not is_done(output_paths(args.out, v))]
            skipped = len(videos) - len(todo)
            if skipped:
                log.info("skipping %d file(s) already extracted in %s (--overwrite to redo)", skipped, args.out)
    return asyncio.run(_extract_all(args, todo, skipped))


async def _extract_all(args: argparse.Namespace, videos: list[str], skipped: int) -> int:
    import time

    from tqdm import tqdm

    from vswin.client import AsyncVideoSwinClient, ClientError, ExtractOptions

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
    options = extract_options(args)
    async with client:
        try:
            info = await client.model_info()
        except ClientError as err:
            print(f"vswin extract: {err}", file=sys.stderr)
            return 1
        try:
            resolved = ExtractOptions(**options).resolve(info)
        except ValueError as err:
            print(f"vswin extract: {err}", file=sys.stderr)
            return 2
        log.info("model %s version %d: %s model, input %s, %s features; %s", info.name, info.version, info.family,
                 info.input.describe(), info.feature_dim, _describe(resolved, info))  # fmt: skip
        start = time.monotonic()
        bar = tqdm(total=len(videos), unit="file", disable=args.no_progress or None, file=sys.stderr)
        async for video, result in client.extract_many(
            videos, concurrency=args.concurrency, decode_workers=args.decode_workers, **options
        ):
            if not isinstance(result, Exception) and args.out is not None:
                try:
                    write_outputs(output_paths(args.out, video), result)
                except OSError as err:
                    result = OSError(f"cannot write its output to {args.out}: {err.strerror or err}")
            if isinstance(result, Exception):
                failures.append((video, f"{type(result).__name__}: {result}"))
                log.error("%s failed: %s", video, result)
            else:
                if args.out is None:
                    print(result.dumps(), flush=True)
                done += 1
                clips += result.num_clips
            bar.update(1)
            bar.set_postfix(views_per_s=f"{clips / max(time.monotonic() - start, 1e-9):.1f}", failed=len(failures))
        bar.close()
    elapsed = time.monotonic() - start
    print(
        f"vswin extract: {done} extracted, {skipped} skipped, {len(failures)} failed "
        f"({clips} views in {elapsed:.1f}s, {done / max(elapsed, 1e-9):.2f} files/s, {clips / max(elapsed, 1e-9):.1f} views/s)",
        file=sys.stderr,
    )
    for video, reason in failures:
        print(f"  FAILED {video}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _describe(options: ExtractOptions, info: ModelInfo) -> str:
    """The preprocessing in use, for the log."""
    prep = info.preprocessing
    if info.family == contract.IMAGE:
        resize = (f"resize to {prep.size}x{prep.size}" if prep.resize_mode == "squash"
                  else f"short side {prep.resize_to}, center crop {prep.size}")
        return f"images: {resize} ({prep.interpolation}); videos: {options.frames_per_video} frames each"
    return (f"{options.sampling} sampling, {options.clips} clips x {options.crops} crops, frame interval "
            f"{options.frame_interval}, short side {options.short_side}")
