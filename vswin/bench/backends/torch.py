"""PyTorch: the original implementation, `SwinTransformer3D` from a checkout (`original_repo`), eager or compiled.

Options: `compile` (torch.compile, with `compile_backend`, default inductor,
and `compile_mode`), `precision` (bfloat16: autocast, as mixed-precision
inference runs the original). It writes the shared weights in the official
checkpoint layout, which vswin's converter reads for the other arms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vswin.bench.backends import Forward
from vswin.bench.case import Case, clips


def prepare(case: Case, options: dict[str, Any], write_weights: bool = False) -> Forward:
    import torch

    device = torch.device(case.device)
    model = _original(case, options, write_weights).to(device)
    inputs = torch.from_numpy(clips(case)).permute(0, 4, 1, 2, 3).contiguous().to(device)  # NTHWC -> NCTHW
    forward = model
    if options.get("compile"):
        forward = torch.compile(model, backend=options.get("compile_backend", "inductor"),
                                mode=options.get("compile_mode"))  # fmt: skip
    bfloat16 = options.get("precision", "float32") == "bfloat16"

    def call():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            feature_map = forward(inputs)  # [B, C, T', H', W']
        return feature_map.float().mean(dim=(2, 3, 4)).cpu().numpy()  # the I3D head's pooling; waits for the device

    return call


def _original(case: Case, options: dict[str, Any], write_weights: bool):
    import torch

    from vswin.bench import original
    from vswin.model.presets import get_preset

    repo = options.get("original_repo")
    if not repo:
        raise ValueError("the original PyTorch arm needs --original-repo (a Video-Swin-Transformer checkout)")
    torch.manual_seed(case.seed)
    model = original.build(repo, get_preset(case.arch))
    if write_weights:
        _save_original_weights(model, case.weights)
    else:
        model.load_state_dict(_read_original_weights(case.weights))
    return model


def _save_original_weights(model, path: str) -> None:
    """The backbone's state dict in the official checkpoint layout (`state_dict` of `backbone.*` keys)."""
    import torch

    if not path.endswith(".pth"):
        raise ValueError(f"the original arm writes a .pth checkpoint, not {path}")
    state = {f"backbone.{key}": value for key, value in model.state_dict().items()}
    partial = f"{path}.partial"
    torch.save({"state_dict": state}, partial)
    os.replace(partial, path)


def _read_original_weights(path: str):
    import torch

    if not Path(path).name.endswith(".pth"):
        raise ValueError(f"the original arm reads the shared weights as .pth, got {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {key.removeprefix("backbone."): value for key, value in state.items()}
