"""`vswin demo`: the main job end to end on a model that needs no download.

1. export the checkpoint (default: the shipped fixture; else the same micro
   architecture with random weights) as a versioned SavedModel,
2. serve it with the local TF Serving-compatible server on a free port,
3. turn a video into features through the gRPC client, as a service would,
4. check the served features against the same clips run in-process.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from vswin import contract

log = logging.getLogger("vswin.demo")

_REPO = Path(__file__).resolve().parents[1]
FIXTURE_CHECKPOINT = _REPO.parent / "shared" / "fixtures" / "vswin_micro_w877.pth"
FIXTURE_ARCH = _REPO.parent / "shared" / "fixtures" / "vswin_micro_w877.json"
# The fixture's architecture, for machines without ../shared: tiny, but every part of the real one.
MICRO_ARCH = {
    "name": "vswin_micro_w877", "embed_dim": 24, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 3, 6],
    "window_size": [8, 7, 7], "num_classes": 10,
}
MODEL_NAME = "vswin_demo"
CROPS = 3
CLIPS = 2
TOLERANCE = 1e-4  # the project's float32 parity bound


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="Export, serve and query a model end to end (default: the shipped fixture, no download).")
    parser.add_argument("--checkpoint", help="Checkpoint (.pth or .weights.h5); default: the shipped fixture.")
    parser.add_argument("--arch", help="Preset name or architecture JSON; default: the fixture's.")
    parser.add_argument("--video", help="Video file to extract; default: a synthetic clip written with OpenCV.")
    parser.add_argument("--frames", type=int, default=16, help="Frames per clip (default 16).")
    parser.add_argument("--size", type=int, default=64, help="Crop size (default 64).")
    parser.add_argument("--workdir", help="Where models/ and the video go (default: a temporary directory).")
    parser.set_defaults(func=run)


def _model(args: argparse.Namespace):
    import vswin.model

    if args.checkpoint:
        return vswin.model.load(args.checkpoint, args.arch or FIXTURE_ARCH), Path(args.checkpoint)
    if FIXTURE_CHECKPOINT.exists() and not args.arch:
        return vswin.model.load(FIXTURE_CHECKPOINT, FIXTURE_ARCH), FIXTURE_CHECKPOINT
    log.info("no checkpoint given and no fixture found: random weights")
    return vswin.model.build(args.arch or vswin.model.get_preset(MICRO_ARCH)), None


def synthetic_video(path: Path, frames: int = 90, size: tuple[int, int] = (96, 128), fps: float = 25.0) -> Path:
    """A moving colour gradient, so the demo needs no video file."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    for t in range(frames):
        frame = np.stack([(xs * 2 + t * 3) % 256, (ys * 2 + t) % 256, (xs + ys + t * 5) % 256], -1)
        writer.write(frame.astype(np.uint8))
    writer.release()
    return path


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="vswin-demo-") as scratch:
        return _run(args, Path(args.workdir) if args.workdir else Path(scratch))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    import numpy as np

    from vswin.client import VideoSwinClient
    from vswin.export import export_model
    from vswin.serving.model_config import single_model_config
    from vswin.serving.server import ModelServer, ServerOptions

    model, checkpoint = _model(args)
    base = workdir / "models"
    start = time.perf_counter()
    version_dir = export_model(model, base, MODEL_NAME, frames=args.frames, size=(args.size, args.size),
                               batch_sizes=(1, CROPS), checkpoint=checkpoint)
    print(f"[1/4] exported {model.name} to {version_dir} in {time.perf_counter() - start:.1f} s")

    video = Path(args.video) if args.video else synthetic_video(workdir / "demo.mp4")
    server = ModelServer(ServerOptions(model_config=single_model_config(MODEL_NAME, base / MODEL_NAME),
                                       host="127.0.0.1", port=0, xla_cpu_compilation_enabled=True,
                                       enable_model_warmup=True))
    port = server.start()
    print(f"[2/4] serving {MODEL_NAME} on 127.0.0.1:{port} (TF Serving gRPC API, warmup replayed)")
    try:
        # Requests of one clip's crops: batch sizes the warmup already compiled.
        with VideoSwinClient(f"127.0.0.1:{port}", model=MODEL_NAME, timeout=120, max_batch=CROPS) as client:
            info = client.model_info()
            start = time.perf_counter()
            result = client.extract(video, clips=CLIPS, crops=CROPS)
            elapsed = time.perf_counter() - start
            print(f"[3/4] {video.name}: {result.num_clips} views ({result.clip_features.shape[0]} clips x "
                  f"{result.clip_features.shape[1]} crops) -> features {result.features.shape} from version "
                  f"{result.version} in {elapsed:.2f} s; clips start at {np.round(result.clip_starts, 2).tolist()} s")
            print("      features[:6] =", np.array2string(result.features[:6], precision=4))
    finally:
        server.stop(grace=5)
    from vswin.client.sampling import Sampling
    from vswin.client.video import load_clips

    # The same views through the model in this process: what the server answered must match it.
    sampling = Sampling("uniform", clip_len=info.clip_len, frame_interval=contract.FRAME_INTERVAL, num_clips=CLIPS)
    views = load_clips(video, sampling, (info.height, info.width), num_crops=CROPS).clips
    flat = views.reshape(-1, *views.shape[2:])
    local = np.asarray(model(model.preprocessor(flat))["features"]).reshape(result.clip_features.shape)
    difference = float(np.abs(result.clip_features - local).max())
    print(f"[4/4] served vs in-process features of the same {flat.shape[0]} views: max abs difference {difference:.2e}")
    if difference > TOLERANCE:
        print(f"vswin demo: served features differ from in-process ones by more than {TOLERANCE}", file=sys.stderr)
        return 1
    return 0
