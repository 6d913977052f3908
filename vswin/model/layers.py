"""Building blocks of both Swin families, written with keras.ops only.

They follow `SwinTransformer3D` of the Video Swin implementation operation
for operation, so that converted checkpoints give the same numbers: padding
to the patch and window sizes, the window clamped to small feature maps
(with the shift turned off there), the cyclic shift with its attention mask,
and the relative position bias indexed exactly as the original indexes it.

An image is a one-frame clip (patch 1x4x4, windows 1xWxW): the arithmetic is
the same, and where the 2D original (`SwinTransformer` of
microsoft/Swin-Transformer) has its own rule, the `family` argument picks
it: the window is clamped to min(H, W) with the shift off for the whole
block, and a window smaller than the table is indexed by its relative
offsets (the 2D original never meets that case at its own img_size).

Input sizes are not fixed at construction: every shape-dependent constant
(window clamp, padding, mask) is derived from the static T/H/W of the input
at call time, so one set of weights serves any input geometry.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from vswin.contract import IMAGE, VIDEO

Window = tuple[int, int, int]

LAYER_NORM_EPSILON = 1e-5  # PyTorch's nn.LayerNorm default, which the checkpoints were trained with.
MASKED = -100.0  # the original's additive mask value for tokens from different shifted regions


def effective_window(size: Window, window: Window, shift: Window, family: str = VIDEO) -> tuple[Window, Window]:
    """Window and shift actually used on a T/H/W map.

    Video Swin clamps each axis to the map and turns the shift off on that axis;
    the 2D Swin uses one window of min(H, W) and no shift at all once
    min(H, W) <= window (its `SwinTransformerBlock.__init__`).
    """
    if family == IMAGE:
        smallest = min(size[1:])
        if smallest <= window[1]:
            return (1, smallest, smallest), (0, 0, 0)
        return tuple(window), tuple(shift)
    use_window, use_shift = list(window), list(shift)
    for axis, extent in enumerate(size):
        if extent <= window[axis]:
            use_window[axis] = extent
            use_shift[axis] = 0
    return tuple(use_window), tuple(use_shift)


def relative_position_index(window: Window, table_window: Window | None = None):
    """[N, N] int32 index into the bias table for every pair of tokens of one window (N = prod(window)).

    The table is laid out for `table_window` (default: `window`), as the
    original lays it out: (2w - 1) entries per axis, offsets counted from -(w - 1).
    Built with ops from three aranges rather than stored: as a constant it
    would put N*N values into every traced graph (600 KB per block for 8x7x7).
    """
    table = tuple(table_window or window)
    grids = ops.meshgrid(*[ops.arange(w, dtype="int32") for w in window], indexing="ij")
    coords = ops.reshape(ops.stack(grids), (3, -1))
    relative = ops.transpose(coords[:, :, None] - coords[:, None, :], (1, 2, 0))
    offsets = ops.convert_to_tensor([w - 1 for w in table], dtype="int32")
    strides = ops.convert_to_tensor(
        [(2 * table[1] - 1) * (2 * table[2] - 1), 2 * table[2] - 1, 1], dtype="int32"
    )
    return ops.sum((relative + offsets) * strides, axis=-1)


def bias_index(window: Window, table_window: Window, family: str = VIDEO):
    """[N, N] bias-table index of a `window` that may be smaller than the table's.

    Video Swin takes the top-left N x N block of the full window's index
    (`relative_position_index[:N, :N]` in its WindowAttention3D); the image
    family looks every pair up by its relative offset.
    """
    if tuple(window) == tuple(table_window):
        return relative_position_index(window)
    if family == IMAGE:
        return relative_position_index(window, table_window)
    tokens = int(np.prod(window))
    return relative_position_index(table_window)[:tokens, :tokens]


def shifted_window_regions(padded: tuple[int, int, int], window: tuple[int, int, int],
                           shift: tuple[int, int, int]) -> np.ndarray:
    """[nW, N] region label of each token, per window, after the cyclic shift.

    Tokens with different labels came from non-adjacent parts of the clip and
    must not attend to each other. The slices reproduce the original's
    `compute_mask`, including its behaviour on axes whose shift is zero.
    """
    labels = np.zeros((1, *padded, 1), dtype="int32")
    count = 0
    slices = [(slice(-w), slice(-w, -s), slice(-s, None)) for w, s in zip(window, shift)]
    for d in slices[0]:
        for h in slices[1]:
            for w in slices[2]:
                labels[:, d, h, w, :] = count
                count += 1
    return _partition_numpy(labels, window)[..., 0]


def _partition_numpy(x: np.ndarray, window: tuple[int, int, int]) -> np.ndarray:
    _, d, h, w, c = x.shape
    x = x.reshape(-1, d // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, int(np.prod(window)), c)


def window_partition(x, window: tuple[int, int, int]):
    """[B, D, H, W, C] (D, H, W multiples of window) -> [B * nW, N, C]."""
    _, d, h, w, c = x.shape
    x = ops.reshape(x, (-1, d // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))
    return ops.reshape(x, (-1, window[0] * window[1] * window[2], c))


def window_merge(windows, window: tuple[int, int, int], size: tuple[int, int, int]):
    """Inverse of `window_partition`: [B * nW, N, C] -> [B, D, H, W, C]."""
    d, h, w = size
    c = windows.shape[-1]
    x = ops.reshape(windows, (-1, d // window[0], h // window[1], w // window[2], *window, c))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3, 6, 7))
    return ops.reshape(x, (-1, d, h, w, c))


def _layer_norm(name: str, dtype) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


class PatchEmbedding3D(keras.layers.Layer):
    """Non-overlapping 3D patches (zero-padded to the patch size), projected and normalised."""

    def __init__(self, embed_dim: int, patch_size: tuple[int, int, int], patch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.patch_size = tuple(patch_size)
        self.patch_norm = patch_norm
        self.proj = keras.layers.Conv3D(embed_dim, self.patch_size, strides=self.patch_size, name="proj",
                                        dtype=self.dtype_policy)
        self.norm = _layer_norm("norm", self.dtype_policy) if patch_norm else None

    def build(self, input_shape):
        self.proj.build((None, None, None, None, input_shape[-1]))
        if self.norm is not None:
            self.norm.build((None, None, None, None, self.embed_dim))

    def call(self, x):
        pads = [(0, 0)] + [(0, (-extent) % p) for extent, p in zip(x.shape[1:4], self.patch_size)] + [(0, 0)]
        if any(after for _, after in pads):
            x = ops.pad(x, pads)
        x = self.proj(x)
        return self.norm(x) if self.norm is not None else x

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "patch_size": self.patch_size,
                "patch_norm": self.patch_norm}


class WindowAttention3D(keras.layers.Layer):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    `window_size` is the window the bias table is sized for; `call` takes the
    window actually used (never larger) and, for shifted windows, the region
    labels that become the additive mask.
    """

    def __init__(self, dim: int, num_heads: int, window_size: Window, qkv_bias: bool = True,
                 family: str = VIDEO, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.qkv_bias = qkv_bias
        self.family = family
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = keras.layers.Dense(dim * 3, use_bias=qkv_bias, name="qkv", dtype=self.dtype_policy)
        self.proj = keras.layers.Dense(dim, name="proj", dtype=self.dtype_policy)

    def build(self, input_shape):
        table_size = int(np.prod([2 * w - 1 for w in self.window_size]))
        self.relative_position_bias_table = self.add_weight(
            shape=(table_size, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.qkv.build((None, None, self.dim))
        self.proj.build((None, None, self.dim))

    def relative_position_bias(self, window: Window):
        """[heads, N, N] bias of one `window` (N = prod(window)) from the table."""
        tokens = int(np.prod(window))
        index = ops.reshape(bias_index(window, self.window_size, self.family), (-1,))
        bias = ops.take(self.relative_position_bias_table, index, axis=0)
        return ops.transpose(ops.reshape(bias, (tokens, tokens, self.num_heads)), (2, 0, 1))

    def call(self, x, window: Window, regions=None, return_attention: bool = False):
        """x: [B * nW, N, C] tokens of `window`; regions: optional [nW, N] shifted-window labels.

        With `return_attention`, also the post-softmax probabilities [B * nW, heads, N, N] in float32.
        """
        tokens = x.shape[1]
        head_dim = self.dim // self.num_heads
        qkv = ops.reshape(self.qkv(x), (-1, tokens, 3, self.num_heads, head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        q, k, v = qkv[0] * ops.cast(self.scale, x.dtype), qkv[1], qkv[2]
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        attn = attn + ops.cast(self.relative_position_bias(window), attn.dtype)[None]

        if regions is not None:
            num_windows = regions.shape[0]
            mask = ops.where(ops.not_equal(regions[:, None, :], regions[:, :, None]), MASKED, 0.0)
            attn = ops.reshape(attn, (-1, num_windows, self.num_heads, tokens, tokens))
            attn = attn + ops.cast(mask, attn.dtype)[None, :, None]
            attn = ops.reshape(attn, (-1, self.num_heads, tokens, tokens))
        if tokens == 1:  # a one-token window attends to itself (and ops.softmax warns on a size-1 axis)
            probabilities = ops.ones_like(attn, dtype="float32")
        else:
            probabilities = ops.softmax(ops.cast(attn, "float32"), axis=-1)

        out = ops.matmul(ops.cast(probabilities, v.dtype), v)
        out = self.proj(ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, tokens, self.dim)))
        return (out, probabilities) if return_attention else out

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "qkv_bias": self.qkv_bias, "family": self.family}


class SwinBlock3D(keras.layers.Layer):
    """(Shifted) window attention then MLP, each pre-normalised with a residual connection."""

    def __init__(self, dim: int, num_heads: int, window_size: Window, shift_size: Window, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, family: str = VIDEO, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.shift_size = tuple(shift_size)
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.family = family
        policy = self.dtype_policy
        self.norm1 = _layer_norm("norm1", policy)
        self.attn = WindowAttention3D(dim, num_heads, self.window_size, qkv_bias, family, name="attn", dtype=policy)
        self.norm2 = _layer_norm("norm2", policy)
        self.fc1 = keras.layers.Dense(int(dim * mlp_ratio), name="fc1", dtype=policy)
        self.fc2 = keras.layers.Dense(dim, name="fc2", dtype=policy)

    def build(self, input_shape):
        shape = (None, None, self.dim)
        for layer in (self.norm1, self.attn, self.norm2):
            layer.build(shape)
        self.fc1.build(shape)
        self.fc2.build((None, None, int(self.dim * self.mlp_ratio)))

    def call(self, x, regions=None, return_attention: bool = False):
        """x: [B, D, H, W, C]; regions: the stage's shifted-window labels (used only when shifting)."""
        size = tuple(x.shape[1:4])
        window, shift = effective_window(size, self.window_size, self.shift_size, self.family)
        attended, attention = self._attend(self.norm1(x), size, window, shift, regions)
        x = x + attended
        hidden = keras.activations.gelu(self.fc1(self.norm2(x)), approximate=False)
        x = x + self.fc2(hidden)
        return (x, attention) if return_attention else x

    def _attend(self, x, size, window, shift, regions):
        pads = [(0, (-extent) % w) for extent, w in zip(size, window)]
        if any(after for _, after in pads):
            x = ops.pad(x, [(0, 0), *pads, (0, 0)])
        padded = tuple(extent + after for extent, (_, after) in zip(size, pads))
        shifted = any(shift)
        axes = tuple(axis + 1 for axis in range(3) if shift[axis])
        if shifted:
            x = ops.roll(x, shift=tuple(-shift[a - 1] for a in axes), axis=axes)
        windows, attention = self.attn(window_partition(x, window), window=window,
                                       regions=regions if shifted else None, return_attention=True)
        x = window_merge(windows, window, padded)
        if shifted:
            x = ops.roll(x, shift=tuple(shift[a - 1] for a in axes), axis=axes)
        if padded != size:
            x = x[:, : size[0], : size[1], : size[2], :]
        return x, attention

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "shift_size": self.shift_size, "mlp_ratio": self.mlp_ratio,
                "qkv_bias": self.qkv_bias, "family": self.family}


class PatchMerging3D(keras.layers.Layer):
    """Halves H and W (zero-padding odd sizes) by concatenating 2x2 neighbours, then projects 4C -> 2C."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.norm = _layer_norm("norm", self.dtype_policy)
        self.reduction = keras.layers.Dense(2 * dim, use_bias=False, name="reduction", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.norm.build((None, None, 4 * self.dim))
        self.reduction.build((None, None, 4 * self.dim))

    def call(self, x):
        _, d, h, w, c = x.shape
        if h % 2 or w % 2:
            x = ops.pad(x, [(0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)])
            h, w = h + h % 2, w + w % 2
        # [B, D, H/2, (h), W/2, (w), C] -> neighbours ordered (h0,w0), (h1,w0), (h0,w1), (h1,w1) as the original.
        x = ops.reshape(x, (-1, d, h // 2, 2, w // 2, 2, c))
        x = ops.transpose(x, (0, 1, 2, 4, 5, 3, 6))
        x = ops.reshape(x, (-1, d, h // 2, w // 2, 4 * c))
        return self.reduction(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


class SwinStage3D(keras.layers.Layer):
    """`depth` blocks alternating plain and shifted windows, then an optional patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: Window, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, downsample: bool = False, family: str = VIDEO, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.depth = depth
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.family = family
        self.shift_size = tuple(w // 2 for w in self.window_size)
        policy = self.dtype_policy
        self.blocks = [
            SwinBlock3D(dim, num_heads, self.window_size, (0, 0, 0) if i % 2 == 0 else self.shift_size,
                        mlp_ratio, qkv_bias, family, name=f"blocks_{i}", dtype=policy)
            for i in range(depth)
        ]
        self.downsample = PatchMerging3D(dim, name="downsample", dtype=policy) if downsample else None

    def build(self, input_shape):
        for block in self.blocks:
            block.build((None, None, None, None, self.dim))
        if self.downsample is not None:
            self.downsample.build((None, None, None, None, self.dim))

    def call(self, x, return_attention: bool = False):
        """x: [B, D, H, W, C]; with `return_attention`, also the list of each block's attention."""
        size = tuple(x.shape[1:4])
        regions = self.shift_regions(size)
        attention = []
        for block in self.blocks:
            x, probabilities = block(x, regions=regions, return_attention=True)
            attention.append(probabilities)
        if self.downsample is not None:
            x = self.downsample(x)
        return (x, attention) if return_attention else x

    def shift_regions(self, size: Window):
        """[nW, N] region labels of the shifted blocks on a `size` map, or None where nothing shifts."""
        window, shift = effective_window(size, self.window_size, self.shift_size, self.family)
        if not any(shift):
            return None
        padded = tuple(math.ceil(extent / w) * w for extent, w in zip(size, window))
        return ops.convert_to_tensor(shifted_window_regions(padded, window, shift))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "window_size": self.window_size, "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias,
                "downsample": self.downsample is not None, "family": self.family}
