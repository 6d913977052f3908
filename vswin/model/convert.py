"""Checkpoints into the Keras model: official `.pth`, timm `.safetensors`/`.pth`, converted `.weights.h5`.

Every Keras variable gets exactly one tensor, checked for shape. Buffers are
not trusted (the model computes its own) but must agree with the
architecture when present: `relative_position_index` with each block's
window, and (image family) `attn_mask` with the shifted-window mask at the
architecture's img_size. Any key that is missing, left over or of the wrong
shape, and a checkpoint of the other family, stops the conversion with a
`CheckpointError` naming it; nothing is assigned before everything is checked.
This module depends on the model, never the reverse.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
from keras import ops

from vswin.atomic import publish
from vswin.contract import IMAGE, VIDEO
from vswin.model import checkpoint_files as files
from vswin.model.checkpoint_files import CheckpointError
from vswin.model.layers import MASKED, bias_index, effective_window
from vswin.model.presets import Preset

_FAMILY_NAMES = {VIDEO: "a Video Swin (video) model", IMAGE: "an image Swin model"}
_BUFFERS = ("relative_position_index", "attn_mask", "num_batches_tracked")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One checkpoint tensor for one Keras variable; `layout` names the axis change from PyTorch."""

    key: str
    variable: object
    layout: str | None = None  # None, "linear", "conv3d", "conv2d" (into a 1 x kH x kW Conv3D kernel)

    def torch_shape(self) -> tuple[int, ...]:
        shape = tuple(self.variable.shape)
        if self.layout == "linear":
            return shape[::-1]
        if self.layout == "conv3d":  # Keras [kT, kH, kW, in, out] <- PyTorch [out, in, kT, kH, kW]
            return (shape[4], shape[3], *shape[:3])
        if self.layout == "conv2d":
            return (shape[4], shape[3], *shape[1:3])
        return shape

    def to_keras(self, value: np.ndarray) -> np.ndarray:
        if self.layout == "linear":
            return value.T
        if self.layout == "conv3d":
            return np.transpose(value, (2, 3, 4, 1, 0))
        if self.layout == "conv2d":
            return np.transpose(value, (2, 3, 1, 0))[None]
        return value


def _dense(layer, key: str) -> Iterator[Entry]:
    yield Entry(f"{key}.weight", layer.kernel, "linear")
    if layer.use_bias:
        yield Entry(f"{key}.bias", layer.bias)


def _norm(layer, key: str) -> Iterator[Entry]:
    yield Entry(f"{key}.weight", layer.gamma)
    yield Entry(f"{key}.bias", layer.beta)


def weight_map(backbone, head=None) -> list[Entry]:
    """Every variable of `backbone` (and `head`) with its key in the family's official layout."""
    prefix = files.VIDEO_PREFIX if backbone.family == VIDEO else ""
    conv = "conv3d" if backbone.family == VIDEO else "conv2d"
    entries = [
        Entry(f"{prefix}patch_embed.proj.weight", backbone.patch_embed.proj.kernel, conv),
        Entry(f"{prefix}patch_embed.proj.bias", backbone.patch_embed.proj.bias),
    ]
    if backbone.patch_embed.norm is not None:
        entries += _norm(backbone.patch_embed.norm, f"{prefix}patch_embed.norm")
    for i, stage in enumerate(backbone.stages):
        for j, block in enumerate(stage.blocks):
            key = f"{prefix}layers.{i}.blocks.{j}"
            entries += _norm(block.norm1, f"{key}.norm1")
            entries.append(Entry(f"{key}.attn.relative_position_bias_table", block.attn.relative_position_bias_table))
            entries += _dense(block.attn.qkv, f"{key}.attn.qkv")
            entries += _dense(block.attn.proj, f"{key}.attn.proj")
            entries += _norm(block.norm2, f"{key}.norm2")
            entries += _dense(block.fc1, f"{key}.mlp.fc1")
            entries += _dense(block.fc2, f"{key}.mlp.fc2")
        if stage.downsample is not None:
            entries += _dense(stage.downsample.reduction, f"{prefix}layers.{i}.downsample.reduction")
            entries += _norm(stage.downsample.norm, f"{prefix}layers.{i}.downsample.norm")
    entries += _norm(backbone.norm, f"{prefix}norm")
    if head is not None:
        entries += _dense(head, head_key(backbone.family))
    return entries


def head_key(family: str) -> str:
    return files.VIDEO_HEAD if family == VIDEO else files.IMAGE_HEAD


@dataclasses.dataclass(frozen=True)
class CheckpointWeights:
    """A checkpoint file read once, checked against `preset`, ready to assign to a task or backbone."""

    path: Path
    preset: Preset
    state: dict[str, np.ndarray] | None  # None for Keras .weights.h5 files
    head_classes: int | None

    @property
    def has_head(self) -> bool:
        return self.head_classes is not None

    def assign(self, model, head: bool = True) -> None:
        """Set every weight of `model` (a task or a backbone); the head too when `head` and the model has one."""
        backbone = getattr(model, "backbone", model)
        target_head = getattr(model, "head", None) if head else None
        if self.state is None:
            _assign_keras_weights(self, backbone, target_head)
        else:
            assign_state_dict(backbone, target_head, self.state, self.preset.name, str(self.path))


def open_checkpoint(path: str | Path, preset: Preset) -> CheckpointWeights:
    """Read `path` (`.pth`, `.safetensors` or `.weights.h5`) for `preset`; errors name the file and the problem."""
    path = Path(path)
    if path.name.endswith(".weights.h5"):
        return CheckpointWeights(path, preset, None, _keras_head_classes(path))
    state = files.read_arrays(path)
    found = files.family_of(state)
    if found is not None and found != preset.family:
        raise CheckpointError(
            f"{path} holds {_FAMILY_NAMES[found]} (its patch embedding is a {4 if found == IMAGE else 5}-D "
            f"convolution), but architecture {preset.name!r} is {_FAMILY_NAMES[preset.family]}: "
            f"pick {'an image' if found == IMAGE else 'a video'} architecture for this checkpoint"
        )
    state = files.video_layout(state) if preset.family == VIDEO else files.image_layout(state)
    head_weight = state.get(f"{head_key(preset.family)}.weight")
    return CheckpointWeights(path, preset, state, None if head_weight is None else int(head_weight.shape[0]))


def assign_state_dict(backbone, head, state: dict[str, np.ndarray], arch_name: str, source: str) -> None:
    """Set every weight of `backbone` (and `head`) from `state`, or raise naming the first key that does not fit."""
    entries = weight_map(backbone, head)
    expected = {entry.key for entry in entries}
    checkpoint_head = head_key(backbone.family) + "."
    _check_buffers(backbone, state, source)
    for key in state:
        if key in expected or key.endswith(_BUFFERS) or (head is None and key.startswith(checkpoint_head)):
            continue
        raise CheckpointError(
            f"{source}: key {key!r} has no place in architecture {arch_name!r} "
            "(is the checkpoint for a deeper or different model?)"
        )
    values = []
    for entry in entries:
        if entry.key not in state:
            raise CheckpointError(f"{source}: missing key {entry.key!r} required by architecture {arch_name!r}")
        value = state[entry.key]
        if tuple(value.shape) != entry.torch_shape():
            raise CheckpointError(
                f"{source}: key {entry.key!r} has shape {tuple(value.shape)}, "
                f"architecture {arch_name!r} needs {entry.torch_shape()}"
            )
        values.append((entry.variable, entry.to_keras(value)))
    for variable, value in values:
        variable.assign(value)


def _check_buffers(backbone, state: dict[str, np.ndarray], source: str) -> None:
    """`relative_position_index` and `attn_mask` buffers, where present, must be what the architecture implies."""
    prefix = files.VIDEO_PREFIX if backbone.family == VIDEO else ""
    for i, stage in enumerate(backbone.stages):
        index = ops.convert_to_numpy(bias_index(stage.window_size, stage.window_size))
        masks = _original_masks(backbone, i) if backbone.family == IMAGE else {}
        for j in range(stage.depth):
            key = f"{prefix}layers.{i}.blocks.{j}.attn.relative_position_index"
            if key in state and not _equal(state[key], index):
                raise CheckpointError(
                    f"{source}: key {key!r} does not match window {stage.window_size} "
                    f"(shape {tuple(state[key].shape)}, expected {index.shape})"
                )
            key = f"{prefix}layers.{i}.blocks.{j}.attn_mask"
            if key in state and not _equal(state[key], masks.get(j % 2)):
                expected = "no mask (unshifted windows)" if masks.get(j % 2) is None else f"{masks[j % 2].shape}"
                raise CheckpointError(
                    f"{source}: key {key!r} (shape {tuple(state[key].shape)}) does not match the shifted windows of "
                    f"architecture at img_size {backbone.arch_args()['img_size']}: expected {expected}"
                )


def _original_masks(backbone, stage_index: int) -> dict[int, np.ndarray | None]:
    """{0: None, 1: mask or None}: the image original's attn_mask of the unshifted/shifted blocks of a stage."""
    args = backbone.arch_args()
    resolution = args["img_size"] // args["patch_size"] // 2**stage_index
    stage = backbone.stages[stage_index]
    size = (1, resolution, resolution)
    window, shift = effective_window(size, stage.window_size, stage.shift_size, IMAGE)
    if not any(shift):
        return {0: None, 1: None}
    regions = ops.convert_to_numpy(stage.shift_regions(size))
    return {0: None, 1: np.where(regions[:, None, :] != regions[:, :, None], MASKED, 0.0).astype("float32")}


def _equal(value: np.ndarray, expected: np.ndarray | None) -> bool:
    return expected is not None and value.shape == expected.shape and np.array_equal(value, expected)


def _keras_head_classes(path: Path) -> int | None:
    import h5py

    try:
        with h5py.File(path, "r") as weights:
            head = weights.get("head/vars")
            return int(head["0"].shape[-1]) if head is not None and len(head) else None
    except OSError as err:
        raise CheckpointError(f"weights file {path} is not readable: {err}") from err


def _assign_keras_weights(weights: CheckpointWeights, backbone, head) -> None:
    """Load a `.weights.h5` written from a task of `weights.preset` (by `vswin convert` or `save_weights`)."""
    from vswin.model.backbone import BACKBONES
    from vswin.model.tasks import SwinFeatureExtractor

    preset = weights.preset
    source = SwinFeatureExtractor(BACKBONES[preset.family](**preset.backbone), num_classes=weights.head_classes)
    try:
        source.load_weights(weights.path)
    except (ValueError, KeyError) as err:
        raise CheckpointError(
            f"weights file {weights.path} does not fit architecture {weights.preset.name!r}: {err}"
        ) from err
    if head is not None and (source.head is None or tuple(source.head.kernel.shape) != tuple(head.kernel.shape)):
        raise CheckpointError(f"weights file {weights.path} has no head of {head.units} classes")
    backbone.set_weights(source.backbone.get_weights())
    if head is not None:
        head.set_weights(source.head.get_weights())


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


__all__ = ["CheckpointError", "CheckpointWeights", "assign_state_dict", "open_checkpoint", "save_weights_atomically",
           "weight_map"]
