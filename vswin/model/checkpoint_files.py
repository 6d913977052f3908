"""Official checkpoint files as numpy state dicts with one key layout per family.

Accepted:
- Video Swin (mmaction2): `{'state_dict': {'backbone.*', 'cls_head.fc_cls.*'}}`, or a
  bare state dict with or without the `backbone.` prefix.
- Swin / Swin-S3, microsoft/Swin-Transformer release: `{'model': state_dict}` with
  `layers.{i}.downsample` at the end of stage i and the head as `head.*`.
- The same weights in timm's layout (`.safetensors` or `.pth`): `downsample` at
  the start of the next stage, head as `head.fc.*`; renamed to the release layout.

A leading `module.` (DistributedDataParallel) is dropped everywhere. Buffers
(`relative_position_index`, `attn_mask`) are kept here; the converter checks
them against the architecture and assigns nothing from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vswin.contract import IMAGE, VIDEO

VIDEO_PREFIX = "backbone."
VIDEO_HEAD = "cls_head.fc_cls"
IMAGE_HEAD = "head"
_TIMM_HEAD = "head.fc."
_DOWNSAMPLE = re.compile(r"^layers\.(\d+)\.downsample\.")


class CheckpointError(ValueError):
    """The checkpoint cannot be read or does not fit the requested architecture."""


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a `.pth` or `.safetensors` file as numpy (floats as float32), wrappers removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    state = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"checkpoint {path} holds no state dict")
    arrays = {}
    for key, value in state.items():
        if hasattr(value, "detach"):  # a torch tensor; half and bfloat16 weights widen to float32 here
            value = value.detach().cpu()
            value = (value.float() if value.is_floating_point() else value).numpy()
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"checkpoint {path}: entry {key!r} is not a tensor")
        arrays[key.removeprefix("module.")] = value.astype("float32") if value.dtype.kind == "f" else value
    return arrays


def _read_torch(path: Path):
    try:
        import torch
    except ImportError as err:
        raise CheckpointError(
            f"reading {path} needs PyTorch: pip install 'vswin-serving[convert]' (a CPU build of torch is enough)"
        ) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file: {err}") from err


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as err:
        raise CheckpointError(f"reading {path} needs safetensors: pip install 'vswin-serving[convert]'") from err
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for foreign files
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file: {err}") from err


def family_of(state: dict[str, np.ndarray]) -> str | None:
    """VIDEO when the patch embedding is a 3D convolution, IMAGE when 2D, None when there is none."""
    for key in ("backbone.patch_embed.proj.weight", "patch_embed.proj.weight"):
        if key in state:
            return {5: VIDEO, 4: IMAGE}.get(state[key].ndim)
    return None


def video_layout(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keys as `backbone.*` and `cls_head.fc_cls.*`."""
    if any(key.startswith(VIDEO_PREFIX) for key in state):
        return state
    return {key if key.startswith("cls_head.") else VIDEO_PREFIX + key: value for key, value in state.items()}


def image_layout(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keys as the microsoft/Swin-Transformer release names them; timm's layout is renamed to it."""
    stages_with_downsample = {int(m.group(1)) for key in state if (m := _DOWNSAMPLE.match(key))}
    timm = any(key.startswith(_TIMM_HEAD) for key in state) or (
        bool(stages_with_downsample) and 0 not in stages_with_downsample
    )
    if not timm:
        return state
    renamed = {}
    for key, value in state.items():
        key = _DOWNSAMPLE.sub(lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", key)
        renamed["head." + key.removeprefix(_TIMM_HEAD) if key.startswith(_TIMM_HEAD) else key] = value
    return renamed
