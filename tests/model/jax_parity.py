"""The JAX backend against the originals, video and image, in one process: `python -m tests.model.jax_parity FIXTURES ODD`.

Run with KERAS_BACKEND=jax by tests/model/conftest.py (`jax_parity`), once per session: JAX, Keras and torch
are imported once for both families. Prints one JSON line of max abs errors:
`video` (the fixture model under `jit_forward`, as the benchmarks run it), and per case of the image
family, the timm layout and Video Swin's attention (each model call under `jax.jit`, as a GPU benchmark
runs it). Saves the video model's outputs on an odd 10x70x58 clip to ODD (.npz) for comparison with TF.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ODD_CLIP = (2, 10, 70, 58, 3)  # T, H, W not multiples of the patch, odd sizes in patch merging


def odd_clips() -> np.ndarray:
    return np.random.default_rng(0).normal(size=ODD_CLIP).astype("float32")


def video_errors(fixtures: Path, odd_path: Path) -> dict[str, float]:
    """The fixture model under jax.jit with the weights as arguments (vswin.model.jax_jit), static shapes."""
    import vswin.model
    from vswin.model.jax_jit import jit_forward

    ref = dict(np.load(fixtures / "vswin_micro_w877.npz"))
    model = vswin.model.load(fixtures / "vswin_micro_w877.pth", fixtures / "vswin_micro_w877.json")
    forward, weights = jit_forward(model)
    out = forward(weights, np.transpose(ref["input_ncthw"], (0, 2, 3, 4, 1)))
    odd = forward(weights, odd_clips())
    np.savez(odd_path, feature_map=np.asarray(odd["feature_map"]), features=np.asarray(odd["features"]))
    feature_map = np.transpose(ref["backbone_ncdhw"], (0, 2, 3, 4, 1))
    return {
        "feature_map": float(np.abs(np.asarray(out["feature_map"]) - feature_map).max()),
        "features": float(np.abs(np.asarray(out["features"]) - ref["features"]).max()),
        "logits": float(np.abs(np.asarray(out["logits"]) - ref["logits"]).max()),
    }


def image_errors(fixtures: Path) -> dict[str, dict[str, float]]:
    """Every image case, the timm layout and the video attention, each model call under jax.jit."""
    import jax

    import vswin.model
    from tests.model import test_image_parity as parity

    original_call = vswin.model.SwinFeatureExtractor.__call__
    vswin.model.SwinFeatureExtractor.__call__ = lambda self, x, **kw: jax.jit(lambda y: original_call(self, y, **kw))(x)
    try:
        errors = {name: parity.image_case(name) for name in parity.IMAGE_CASES}
        errors["timm"] = parity.image_case("swin_micro_w7", "swin_micro_w7_timm.safetensors")
        errors["video_attention"] = parity.video_attention_case(fixtures)
    finally:
        vswin.model.SwinFeatureExtractor.__call__ = original_call
    return errors


def main(fixtures: str, odd_path: str) -> None:
    import keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    errors = {"video": video_errors(Path(fixtures), Path(odd_path)), "image": image_errors(Path(fixtures))}
    print(json.dumps(errors))


if __name__ == "__main__":
    main(*sys.argv[1:])
