"""`vswin demo`: the main job end to end on a model that needs no download.

Loads the shipped fixture checkpoint (or builds the micro architecture with
random weights when it is absent), and prints the features of a clip.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("vswin.demo")

_REPO = Path(__file__).resolve().parents[1]
FIXTURE_CHECKPOINT = _REPO.parent / "shared" / "fixtures" / "vswin_micro_w877.pth"
FIXTURE_ARCH = _REPO.parent / "shared" / "fixtures" / "vswin_micro_w877.json"
# The fixture's architecture, for machines without ../shared: tiny, but every part of the real one.
MICRO_ARCH = {
    "name": "vswin_micro_w877", "embed_dim": 24, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 3, 6],
    "window_size": [8, 7, 7], "num_classes": 10, "clip_len": 16, "frame_interval": 2,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="Run the main job on the shipped fixture (no download needed).")
    parser.add_argument("--checkpoint", help="Checkpoint (.pth or .weights.h5); default: the shipped fixture.")
    parser.add_argument("--arch", help="Preset name or architecture JSON; default: the fixture's.")
    parser.add_argument("--frames", type=int, default=16, help="Frames per clip (default 16).")
    parser.add_argument("--size", type=int, default=64, help="Crop size (default 64).")
    parser.set_defaults(func=run)


def _model(args: argparse.Namespace):
    import vswin.model

    if args.checkpoint:
        return vswin.model.load(args.checkpoint, args.arch or FIXTURE_ARCH)
    if FIXTURE_CHECKPOINT.exists() and not args.arch:
        log.info("loading the shipped fixture checkpoint %s", FIXTURE_CHECKPOINT)
        return vswin.model.load(FIXTURE_CHECKPOINT, FIXTURE_ARCH)
    arch = args.arch or vswin.model.VideoSwinConfig.from_dict(MICRO_ARCH)
    log.info("no checkpoint given: random weights")
    return vswin.model.build(arch)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    model = _model(args)
    clip = np.random.default_rng(0).normal(size=(1, args.frames, args.size, args.size, 3)).astype("float32")
    out = model(clip)
    features = np.asarray(out["features"])
    print(f"model {model.config.name}: clip {clip.shape[1:]} -> features {features.shape}, "
          f"feature map {tuple(out['feature_map'].shape)}")
    print("features[0, :8] =", np.array2string(features[0, :8], precision=4))
    return 0
