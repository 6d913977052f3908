"""Official PyTorch checkpoints (mmaction2 layout) into the Keras model.

A checkpoint is `{'state_dict': {'backbone.*': ..., 'cls_head.fc_cls.*': ...}}`
or a bare state dict (with or without the `backbone.` prefix). Every Keras
variable gets exactly one tensor, checked for shape; `relative_position_index`
buffers are not trusted (the model computes its own) but must agree with the
architecture's window when present. Any key that is missing, left over or of
the wrong shape stops the conversion with a `CheckpointError` naming it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from vswin.atomic import publish
from vswin.model.layers import relative_position_index

HEAD_PREFIX = "cls_head.fc_cls."
_IGNORED_SUFFIXES = ("relative_position_index", "num_batches_tracked")


class CheckpointError(ValueError):
    """The checkpoint cannot be read or does not fit the requested architecture."""


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a `.pth` file as float32/int numpy arrays, keys normalised to `backbone.*`/`cls_head.*`."""
    try:
        import torch
    except ImportError as err:
        raise CheckpointError(
            f"reading {path} needs PyTorch: pip install 'vswin-serving[convert]' (a CPU build of torch is enough)"
        ) from err

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file: {err}") from err
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"checkpoint {path} holds no state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    if not any(key.startswith("backbone.") for key in state):
        state = {key if key.startswith("cls_head.") else f"backbone.{key}": value for key, value in state.items()}
    arrays = {}
    for key, value in state.items():
        if not hasattr(value, "detach"):
            raise CheckpointError(f"checkpoint {path}: entry {key!r} is not a tensor")
        array = value.detach().cpu().numpy()
        arrays[key] = array.astype("float32") if array.dtype.kind == "f" else array
    return arrays


def has_head(state: dict[str, np.ndarray]) -> bool:
    return f"{HEAD_PREFIX}weight" in state


# Axis permutations from PyTorch's layout to Keras's: Linear [out, in] -> [in, out];
# Conv3d [out, in, kT, kH, kW] -> [kT, kH, kW, in, out].
_LINEAR = (1, 0)
_CONV3D = (2, 3, 4, 1, 0)
Entry = tuple[str, object, "tuple[int, ...] | None"]


def _dense(layer, prefix: str) -> Iterator[Entry]:
    yield f"{prefix}.weight", layer.kernel, _LINEAR
    if layer.use_bias:
        yield f"{prefix}.bias", layer.bias, None


def _norm(layer, prefix: str) -> Iterator[Entry]:
    yield f"{prefix}.weight", layer.gamma, None
    yield f"{prefix}.bias", layer.beta, None


def weight_map(model) -> list[Entry]:
    """(checkpoint key, Keras variable, axis permutation) for every variable of a `VideoSwin` model."""
    backbone = model.backbone
    entries = [
        ("backbone.patch_embed.proj.weight", backbone.patch_embed.proj.kernel, _CONV3D),
        ("backbone.patch_embed.proj.bias", backbone.patch_embed.proj.bias, None),
    ]
    if backbone.patch_embed.norm is not None:
        entries += _norm(backbone.patch_embed.norm, "backbone.patch_embed.norm")
    for i, stage in enumerate(backbone.stages):
        for j, block in enumerate(stage.blocks):
            prefix = f"backbone.layers.{i}.blocks.{j}"
            entries += _norm(block.norm1, f"{prefix}.norm1")
            entries.append((f"{prefix}.attn.relative_position_bias_table",
                            block.attn.relative_position_bias_table, None))
            entries += _dense(block.attn.qkv, f"{prefix}.attn.qkv")
            entries += _dense(block.attn.proj, f"{prefix}.attn.proj")
            entries += _norm(block.norm2, f"{prefix}.norm2")
            entries += _dense(block.fc1, f"{prefix}.mlp.fc1")
            entries += _dense(block.fc2, f"{prefix}.mlp.fc2")
        if stage.downsample is not None:
            entries += _dense(stage.downsample.reduction, f"backbone.layers.{i}.downsample.reduction")
            entries += _norm(stage.downsample.norm, f"backbone.layers.{i}.downsample.norm")
    entries += _norm(backbone.norm, "backbone.norm")
    if model.head is not None:
        entries += _dense(model.head, HEAD_PREFIX.rstrip("."))
    return entries


def assign_state_dict(model, state: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Set every weight of `model` from `state`, or raise naming the first key that does not fit."""
    entries = weight_map(model)
    expected = {key for key, _, _ in entries}
    _check_position_index(model, state, source)
    for key in state:
        if key not in expected and not key.endswith(_IGNORED_SUFFIXES) and (model.has_head or not key.startswith(HEAD_PREFIX)):
            raise CheckpointError(
                f"{source}: key {key!r} has no place in architecture {model.config.name!r} "
                "(is the checkpoint for a deeper or different model?)"
            )
    values = []
    for key, variable, perm in entries:
        if key not in state:
            raise CheckpointError(f"{source}: missing key {key!r} required by architecture {model.config.name!r}")
        needed = tuple(variable.shape) if perm is None else tuple(variable.shape[i] for i in np.argsort(perm))
        if tuple(state[key].shape) != needed:
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"architecture {model.config.name!r} needs {needed}"
            )
        values.append((variable, state[key] if perm is None else np.transpose(state[key], perm)))
    for variable, value in values:
        variable.assign(value)


def _check_position_index(model, state: dict[str, np.ndarray], source: str) -> None:
    from keras import ops

    expected = ops.convert_to_numpy(relative_position_index(model.config.window_size))
    for key, value in state.items():
        if key.endswith("relative_position_index") and (
            value.shape != expected.shape or not np.array_equal(value, expected)
        ):
            raise CheckpointError(
                f"{source}: key {key!r} does not match window {model.config.window_size} "
                f"(shape {tuple(value.shape)}, expected {expected.shape})"
            )


def save_weights_atomically(model, out: str | Path) -> Path:
    """Write Keras weights to `out` (must end in .weights.h5) without ever leaving a partial file there."""
    out = Path(out)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"output {out} must end with .weights.h5 (Keras weights format)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".weights.h5", dir=out.parent)
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        publish(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def load_keras_weights(path: str | Path, config, dtype: str | None = None):
    """A model with weights from a `.weights.h5` written by `vswin convert` (head kept if the file has one)."""
    import h5py

    from vswin.model import build

    path = Path(path)
    try:
        with h5py.File(path, "r") as weights:
            include_head = len(weights.get("head/vars", {})) > 0
    except (OSError, FileNotFoundError) as err:
        raise CheckpointError(f"weights file {path} is not readable: {err}") from err
    model = build(config, include_head=include_head, dtype=dtype)
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"weights file {path} does not fit architecture {config.name!r}: {err}") from err
    return model
