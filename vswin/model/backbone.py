"""Backbones of both families: the network only, from keyword arguments.

`VideoSwinBackbone` maps normalised clips [B, T, H, W, 3] to the feature map
[B, T/2, H/32, W/32, C] after the final LayerNorm; `SwinBackbone` maps
normalised images [B, H, W, 3] to [B, H/32, W/32, C]. Both run the same
blocks (vswin.model.layers): an image is a one-frame clip with 1x4x4 patches
and 1xWxW windows, under the 2D original's window rules. Pooling and heads
belong to the tasks (vswin.model.tasks).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import keras
from keras import ops

from vswin.contract import IMAGE, VIDEO, input_rank
from vswin.model.layers import LAYER_NORM_EPSILON, PatchEmbedding3D, SwinStage3D, Window, effective_window
from vswin.model.presets import Preset, get_preset, normalize_backbone_args

_INPUT_NAMES = {VIDEO: "clips [B, T, H, W, 3]", IMAGE: "images [B, H, W, 3]"}


class Backbone(keras.Model):
    """Patch embedding, stages of (shifted) window attention with patch merging, final norm.

    Subclasses fix the family and turn their constructor's arguments into
    the 3D geometry: patch size and one window per stage (the size its
    relative-position table is built for).
    """

    family: ClassVar[str]

    def _make_layers(self, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                     windows: list[Window], patch: Window, mlp_ratio: float, qkv_bias: bool, patch_norm: bool) -> None:
        policy = self.dtype_policy
        self.patch_embed = PatchEmbedding3D(embed_dim, patch, patch_norm, name="patch_embed", dtype=policy)
        last = len(depths) - 1
        self.stages = [
            SwinStage3D(embed_dim * 2**i, depth, heads, window, mlp_ratio, qkv_bias, downsample=i < last,
                        family=self.family, name=f"layers_{i}", dtype=policy)
            for i, (depth, heads, window) in enumerate(zip(depths, num_heads, windows))
        ]
        self.features_dim = embed_dim * 2**last
        self.norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm", dtype=policy)
        self.build((None,) * (input_rank(self.family) - 1) + (3,))

    @property
    def stage_windows(self) -> list[Window]:
        """The (T, H, W) window each stage's relative-position table is sized for."""
        return [stage.window_size for stage in self.stages]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(stage.depth for stage in self.stages)

    def build(self, input_shape):
        self.check_input_shape(input_shape)
        self.patch_embed.build((None, None, None, None, 3))
        for stage in self.stages:
            stage.build((None, None, None, None, stage.dim))
        self.norm.build((None, None, None, None, self.features_dim))
        self.built = True

    def check_input_shape(self, shape) -> None:
        """Raise a ValueError that names the expected input when `shape` is of the other family (or neither)."""
        shape = tuple(shape)
        rank = input_rank(self.family)
        if len(shape) == rank and shape[-1] in (None, 3):
            return
        other = IMAGE if self.family == VIDEO else VIDEO
        hint = ""
        if len(shape) == input_rank(other):
            hint = f" (the rank of {_INPUT_NAMES[other]}: use {'an image' if other == IMAGE else 'a video'} model)"
        raise ValueError(f"{type(self).__name__} takes {_INPUT_NAMES[self.family]} RGB, got shape {shape}{hint}")

    def call(self, inputs, return_attention: bool = False):
        """The feature map; with `return_attention`, also every block's attention, stage by stage."""
        self.check_input_shape(inputs.shape)
        x = self.patch_embed(self._to_clips(inputs))
        attention = []
        for stage in self.stages:
            x, stage_attention = stage(x, return_attention=True)
            attention.extend(stage_attention)
        feature_map = self._from_clips(self.norm(x))
        return (feature_map, attention) if return_attention else feature_map

    def _to_clips(self, inputs):
        return inputs

    def _from_clips(self, x):
        return x

    def attention_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """[B * num_windows, heads, N, N] of every block's attention for an input of `input_shape`."""
        self.check_input_shape(input_shape)
        batch, *spatial = input_shape[:-1]
        size = tuple([1] * (3 - len(spatial)) + list(spatial))
        size = tuple(math.ceil(extent / p) for extent, p in zip(size, self.patch_embed.patch_size))
        shapes = []
        for stage in self.stages:
            for block in stage.blocks:
                window, _ = effective_window(size, block.window_size, block.shift_size, self.family)
                windows = math.prod(math.ceil(extent / w) for extent, w in zip(size, window))
                tokens = math.prod(window)
                shapes.append((batch * windows, block.num_heads, tokens, tokens))
            if stage.downsample is not None:
                size = (size[0], math.ceil(size[1] / 2), math.ceil(size[2] / 2))
        return shapes

    def arch_args(self) -> dict[str, Any]:
        """The constructor's keyword arguments, completed and checked (what `get_config` adds to Keras's keys)."""
        return dict(self._args)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.arch_args()}

    @classmethod
    def from_preset(cls, preset: str | Path | Preset, checkpoint: str | Path | None = None,
                    dtype: str | None = None) -> "Backbone":
        """The backbone of a preset or architecture JSON, with the weights of `checkpoint` if given.

        On `Backbone` itself the family's class is chosen; on a family's class
        a preset of the other family is an error. A checkpoint's head is ignored.
        """
        preset = get_preset(preset)
        backbone_class = BACKBONES[preset.family]
        if cls is not Backbone and cls is not backbone_class:
            raise ValueError(f"{preset.name!r} is a {preset.family} model; build it with {backbone_class.__name__}")
        backbone = backbone_class(**preset.backbone, dtype=dtype, name="backbone")
        if checkpoint is not None:
            from vswin.model import convert  # the model never imports conversion at module level

            convert.open_checkpoint(checkpoint, preset).assign(backbone)
        return backbone


@keras.saving.register_keras_serializable(package="vswin")
class VideoSwinBackbone(Backbone):
    """Video Swin (SwinTransformer3D): clips [B, T, H, W, 3] -> [B, T/2, H/32, W/32, C]."""

    family = VIDEO

    def __init__(self, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                 window_size: tuple[int, int, int] = (8, 7, 7), patch_size: tuple[int, int, int] = (2, 4, 4),
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, patch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._args = normalize_backbone_args(VIDEO, {
            "embed_dim": embed_dim, "depths": depths, "num_heads": num_heads, "window_size": window_size,
            "patch_size": patch_size, "mlp_ratio": mlp_ratio, "qkv_bias": qkv_bias, "patch_norm": patch_norm,
        }, type(self).__name__)
        a = self._args
        windows = [a["window_size"]] * len(a["depths"])
        self._make_layers(a["embed_dim"], a["depths"], a["num_heads"], windows, a["patch_size"], a["mlp_ratio"],
                          a["qkv_bias"], a["patch_norm"])


@keras.saving.register_keras_serializable(package="vswin")
class SwinBackbone(Backbone):
    """Swin and Swin-S3 (2D): images [B, H, W, 3] -> [B, H/32, W/32, C].

    Arguments keep the original constructor's names. `window_size` is one
    int or one per stage (Swin-S3). At `img_size` each stage's window is
    clamped to its feature map as the original clamps it, and its
    relative-position table sized to match, so official checkpoints fit;
    other input sizes run with those windows.
    """

    family = IMAGE

    def __init__(self, img_size: int = 224, patch_size: int = 4, embed_dim: int = 96,
                 depths: tuple[int, ...] = (2, 2, 6, 2), num_heads: tuple[int, ...] = (3, 6, 12, 24),
                 window_size: int | tuple[int, ...] = 7, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 patch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._args = normalize_backbone_args(IMAGE, {
            "img_size": img_size, "patch_size": patch_size, "embed_dim": embed_dim, "depths": depths,
            "num_heads": num_heads, "window_size": window_size, "mlp_ratio": mlp_ratio, "qkv_bias": qkv_bias,
            "patch_norm": patch_norm,
        }, type(self).__name__)
        a = self._args
        self._make_layers(a["embed_dim"], a["depths"], a["num_heads"], self._table_windows(),
                          (1, a["patch_size"], a["patch_size"]), a["mlp_ratio"], a["qkv_bias"], a["patch_norm"])

    def _table_windows(self) -> list[Window]:
        """Per stage: the configured window, or the stage's resolution at img_size where that is not larger."""
        a = self._args
        configured = a["window_size"]
        per_stage = configured if isinstance(configured, tuple) else (configured,) * len(a["depths"])
        windows = []
        for stage, window in enumerate(per_stage):
            resolution = a["img_size"] // a["patch_size"] // 2**stage
            side = min(window, resolution) if resolution > 0 else window
            windows.append((1, side, side))
        return windows

    def _to_clips(self, inputs):
        return ops.expand_dims(inputs, 1)

    def _from_clips(self, x):
        return ops.squeeze(x, 1)


BACKBONES: dict[str, type[Backbone]] = {VIDEO: VideoSwinBackbone, IMAGE: SwinBackbone}
