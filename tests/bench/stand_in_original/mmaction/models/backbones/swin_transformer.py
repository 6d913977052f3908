"""A stand-in for the original Video Swin backbone file, for tests where no checkout of the original exists.

Same place in the tree, same imports (mmcv, mmaction, timm, einops: what
vswin.bench.original stands in for), same constructor, parameter names and
NCTHW -> NCDHW forward as `SwinTransformer3D` of
github.com/SwinTransformer/Video-Swin-Transformer, written for these tests
from the architecture (not copied); tests/bench/test_original.py checks it
against the original's outputs in shared/fixtures to 1e-4, so a benchmark
arm running it computes what the original computes.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from mmaction.utils import get_root_logger
from mmcv.runner import load_checkpoint
from timm.models.layers import DropPath, trunc_normal_

from ..builder import BACKBONES

MASKED = -100.0


def effective_window(size, window, shift):
    window, shift = list(window), list(shift)
    for axis, extent in enumerate(size):
        if extent <= window[axis]:
            window[axis], shift[axis] = extent, 0
    return tuple(window), tuple(shift)


def partition(x, window):
    b, d, h, w, c = x.shape
    x = x.view(b, d // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, window[0] * window[1] * window[2], c)


def merge(windows, window, b, d, h, w):
    x = windows.view(b, d // window[0], h // window[1], w // window[2], *window, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def shift_mask(padded, window, shift, device):
    labels = torch.zeros((1, *padded, 1), device=device)
    count = 0
    for d in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for h in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for w in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                labels[:, d, h, w, :] = count
                count += 1
    regions = partition(labels, window).squeeze(-1)
    difference = regions[:, None, :] - regions[:, :, None]
    return difference.masked_fill(difference != 0, MASKED)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention3D(nn.Module):
    def __init__(self, dim, window_size, num_heads, qkv_bias=True):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        span = [2 * w - 1 for w in window_size]
        self.relative_position_bias_table = nn.Parameter(torch.zeros(span[0] * span[1] * span[2], num_heads))
        coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window_size], indexing="ij")).flatten(1)
        offsets = torch.tensor([w - 1 for w in window_size])
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + offsets
        strides = torch.tensor([span[1] * span[2], span[2], 1])
        self.register_buffer("relative_position_index", (relative * strides).sum(-1))
        self.qkv, self.proj = nn.Linear(dim, dim * 3, bias=qkv_bias), nn.Linear(dim, dim)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index[:n, :n].reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.view(b // windows, windows, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(b, self.num_heads, n, n)
        return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c))


class SwinTransformerBlock3D(nn.Module):
    def __init__(self, dim, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, drop_path):
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window_size, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, mask):
        b, d, h, w, _ = x.shape
        window, shift = effective_window((d, h, w), self.window_size, self.shift_size)
        pads = [(-extent) % size for extent, size in zip((d, h, w), window)]
        y = F.pad(self.norm1(x), (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        _, dp, hp, wp, _ = y.shape
        if any(shift):
            y = torch.roll(y, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        y = merge(self.attn(partition(y, window), mask if any(shift) else None), window, b, dp, hp, wp)
        if any(shift):
            y = torch.roll(y, shifts=shift, dims=(1, 2, 3))
        x = x + self.drop_path(y[:, :d, :h, :w].contiguous())
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction, self.norm = nn.Linear(4 * dim, 2 * dim, bias=False), nn.LayerNorm(4 * dim)

    def forward(self, x):
        _, _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop_path, downsample):
        super().__init__()
        self.window_size, self.shift_size = window_size, tuple(w // 2 for w in window_size)
        self.blocks = nn.ModuleList([
            SwinTransformerBlock3D(dim, num_heads, window_size, (0, 0, 0) if i % 2 == 0 else self.shift_size,
                                   mlp_ratio, qkv_bias, drop_path)
            for i in range(depth)
        ])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x):
        _, _, d, h, w = x.shape
        window, shift = effective_window((d, h, w), self.window_size, self.shift_size)
        x = rearrange(x, "b c d h w -> b d h w c")
        padded = [math.ceil(extent / size) * size for extent, size in zip((d, h, w), window)]
        mask = shift_mask(padded, window, shift, x.device)
        for block in self.blocks:
            x = block(x, mask)
        if self.downsample is not None:
            x = self.downsample(x)
        return rearrange(x, "b d h w c -> b c d h w")


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size, in_chans, embed_dim, norm):
        super().__init__()
        self.patch_size, self.embed_dim = patch_size, embed_dim
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x):
        _, _, d, h, w = x.shape
        p = self.patch_size
        x = self.proj(F.pad(x, (0, (-w) % p[2], 0, (-h) % p[1], 0, (-d) % p[0])))
        if self.norm is not None:
            _, _, d, h, w = x.shape
            x = self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(-1, self.embed_dim, d, h, w)
        return x


@BACKBONES.register_module()
class SwinTransformer3D(nn.Module):
    def __init__(self, pretrained=None, pretrained2d=True, patch_size=(4, 4, 4), in_chans=3, embed_dim=96,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=(2, 7, 7), mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.2, norm_layer=nn.LayerNorm,
                 patch_norm=False, frozen_stages=-1, use_checkpoint=False):
        super().__init__()
        self.pretrained = pretrained
        self.patch_embed = PatchEmbed3D(patch_size, in_chans, embed_dim, patch_norm)
        last = len(depths) - 1
        self.layers = nn.ModuleList([
            BasicLayer(embed_dim * 2**i, depths[i], num_heads[i], window_size, mlp_ratio, qkv_bias, drop_path_rate,
                       downsample=i < last)
            for i in range(len(depths))
        ])
        self.norm = norm_layer(embed_dim * 2**last)

    def init_weights(self, pretrained=None):
        def init(module):
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.LayerNorm):
                nn.init.constant_(module.bias, 0)
                nn.init.constant_(module.weight, 1.0)

        self.apply(init)
        if pretrained or self.pretrained:
            load_checkpoint(self, pretrained or self.pretrained, strict=False, logger=get_root_logger())

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x.contiguous())
        x = rearrange(x, "n c d h w -> n d h w c")
        return rearrange(self.norm(x), "n d h w c -> n c d h w")
