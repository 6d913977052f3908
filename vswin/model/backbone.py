"""The Video Swin backbone and the feature extractor built on it.

`VideoSwinBackbone` maps normalised clips [B, T, H, W, 3] to the final
feature map [B, T/2, H/32, W/32, C] (after the last LayerNorm).
`VideoSwin` adds what a serving user asks for: the pooled `features`
(mean over T, H, W, the I3D head's pooling), and `logits` when the
checkpoint carries the classification head.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from vswin import contract
from vswin.model.layers import LAYER_NORM_EPSILON, PatchEmbedding3D, SwinStage3D
from vswin.model.presets import VideoSwinConfig


@keras.saving.register_keras_serializable(package="vswin")
class VideoSwinBackbone(keras.Model):
    """Patch embedding, four stages of (shifted) window attention with patch merging, final norm."""

    def __init__(self, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                 window_size: tuple[int, int, int] = (8, 7, 7), patch_size: tuple[int, int, int] = (2, 4, 4),
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, patch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.depths = tuple(depths)
        self.num_heads = tuple(num_heads)
        self.window_size = tuple(window_size)
        self.patch_size = tuple(patch_size)
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.patch_norm = patch_norm
        policy = self.dtype_policy
        self.patch_embed = PatchEmbedding3D(embed_dim, self.patch_size, patch_norm, name="patch_embed", dtype=policy)
        last = len(self.depths) - 1
        self.stages = [
            SwinStage3D(embed_dim * 2**i, depth, heads, self.window_size, mlp_ratio, qkv_bias,
                        downsample=i < last, name=f"layers_{i}", dtype=policy)
            for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads))
        ]
        self.features_dim = embed_dim * 2**last
        self.norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm", dtype=policy)

    def build(self, input_shape):
        self.patch_embed.build(input_shape)
        for i, stage in enumerate(self.stages):
            stage.build((None, None, None, None, self.embed_dim * 2**i))
        self.norm.build((None, None, None, None, self.features_dim))
        self.built = True

    def call(self, clips):
        x = self.patch_embed(clips)
        for stage in self.stages:
            x = stage(x)
        return self.norm(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "embed_dim": self.embed_dim, "depths": self.depths,
                "num_heads": self.num_heads, "window_size": self.window_size, "patch_size": self.patch_size,
                "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias, "patch_norm": self.patch_norm}


@keras.saving.register_keras_serializable(package="vswin")
class VideoSwin(keras.Model):
    """Feature extractor: backbone, global average pooling, optional classification head.

    Returns a dict with `features` [B, C], `feature_map` [B, T', H', W', C]
    and, with a head, `logits` [B, K]; all float32 whatever the compute dtype.
    """

    def __init__(self, arch: dict[str, Any], include_head: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.config = VideoSwinConfig.from_dict(arch)
        self.include_head = include_head
        cfg = self.config
        self.backbone = VideoSwinBackbone(
            cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.window_size, cfg.patch_size, cfg.mlp_ratio,
            cfg.qkv_bias, cfg.patch_norm, name="backbone", dtype=self.dtype_policy,
        )
        self.head = (
            keras.layers.Dense(cfg.num_classes, name="fc_cls", dtype=self.dtype_policy) if include_head else None
        )

    @property
    def has_head(self) -> bool:
        return self.head is not None

    def build(self, input_shape):
        self.backbone.build(input_shape)
        if self.head is not None:
            self.head.build((None, self.config.features_dim))
        self.built = True

    def call(self, clips):
        feature_map = self.backbone(clips)
        features = ops.mean(ops.cast(feature_map, "float32"), axis=(1, 2, 3))
        outputs = {contract.FEATURES: features, contract.FEATURE_MAP_OUTPUT: ops.cast(feature_map, "float32")}
        if self.head is not None:
            outputs[contract.LOGITS] = ops.cast(self.head(ops.cast(features, self.compute_dtype)), "float32")
        return outputs

    def get_config(self) -> dict[str, Any]:
        arch = {key: value for key, value in self.config.to_dict().items() if key != "features_dim"}
        return {**super().get_config(), "arch": arch, "include_head": self.include_head}
