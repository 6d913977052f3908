"""Architectures of the Video Swin collection as data, and how to look one up.

A `VideoSwinConfig` is everything needed to build the network and to feed it
like the original test pipeline does. Presets mirror the six checkpoints of
the official release (DESIGN.md, "The models"); a JSON file with the fields
of `shared/fixtures/vswin_micro_w877.json` describes any other.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from vswin.contract import CLIP_LEN, FRAME_INTERVAL, MEAN, STD  # noqa: F401  (MEAN, STD re-exported)


@dataclasses.dataclass(frozen=True)
class VideoSwinConfig:
    """One Video Swin architecture plus the metadata a user reads."""

    name: str
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: tuple[int, int, int] = (8, 7, 7)
    patch_size: tuple[int, int, int] = (2, 4, 4)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True
    num_classes: int = 400
    # Test-time sampling of the original config: clip_len frames, every frame_interval-th.
    clip_len: int = CLIP_LEN
    frame_interval: int = FRAME_INTERVAL
    dataset: str = ""
    top1: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"{self.name}: depths {self.depths} and num_heads {self.num_heads} must have one entry per stage"
            )
        if len(self.window_size) != 3 or len(self.patch_size) != 3:
            raise ValueError(f"{self.name}: window_size and patch_size need 3 entries (T, H, W)")
        for stage, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**stage
            if dim % heads:
                raise ValueError(f"{self.name}: stage {stage} width {dim} is not divisible by {heads} heads")

    @property
    def features_dim(self) -> int:
        """Width of the pooled features: embed_dim doubled at each patch merging."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["features_dim"] = self.features_dim
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str | None = None) -> "VideoSwinConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        known = {key: value for key, value in data.items() if key in fields}
        for key in ("depths", "num_heads", "window_size", "patch_size"):
            if key in known:
                known[key] = tuple(int(v) for v in known[key])
        if name is not None:
            known["name"] = name
        missing = {"name", "embed_dim", "depths", "num_heads"} - known.keys()
        if missing:
            raise ValueError(f"architecture {name or data.get('name')!r} lacks fields {sorted(missing)}")
        return cls(**known)


_SOURCE = "https://github.com/SwinTransformer/Video-Swin-Transformer (Apache-2.0)"


def _kinetics(name: str, embed_dim: int, depths: tuple[int, ...], heads: tuple[int, ...], classes: int,
              dataset: str, top1: float) -> VideoSwinConfig:
    return VideoSwinConfig(name=name, embed_dim=embed_dim, depths=depths, num_heads=heads, num_classes=classes,
                           dataset=dataset, top1=top1, source=_SOURCE)


_TINY, _SMALL_BASE = (2, 2, 6, 2), (2, 2, 18, 2)
_HEADS_96, _HEADS_128 = (3, 6, 12, 24), (4, 8, 16, 32)

PRESETS: dict[str, VideoSwinConfig] = {
    config.name: config
    for config in (
        _kinetics("swin_tiny_patch244_window877_kinetics400_1k", 96, _TINY, _HEADS_96, 400, "kinetics400", 78.8),
        _kinetics("swin_small_patch244_window877_kinetics400_1k", 96, _SMALL_BASE, _HEADS_96, 400, "kinetics400", 80.6),
        _kinetics("swin_base_patch244_window877_kinetics400_1k", 128, _SMALL_BASE, _HEADS_128, 400, "kinetics400", 80.6),
        _kinetics("swin_base_patch244_window877_kinetics400_22k", 128, _SMALL_BASE, _HEADS_128, 400, "kinetics400", 82.7),
        _kinetics("swin_base_patch244_window877_kinetics600_22k", 128, _SMALL_BASE, _HEADS_128, 600, "kinetics600", 84.0),
        VideoSwinConfig(
            name="swin_base_patch244_window1677_sthv2", embed_dim=128, depths=_SMALL_BASE, num_heads=_HEADS_128,
            window_size=(16, 7, 7), num_classes=174, dataset="sthv2", top1=69.6, source=_SOURCE,
        ),
    )
}


def get_config(arch: str | Path | VideoSwinConfig) -> VideoSwinConfig:
    """A preset by name, a JSON architecture file by path, or a config passed through."""
    if isinstance(arch, VideoSwinConfig):
        return arch
    arch_str = str(arch)
    if arch_str in PRESETS:
        return PRESETS[arch_str]
    path = Path(arch_str)
    if path.suffix == ".json" or path.exists():
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"architecture file {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"architecture file {path} is not valid JSON: {err}") from None
        return VideoSwinConfig.from_dict(data, name=data.get("name", path.stem))
    raise ValueError(f"unknown architecture {arch_str!r}: expected a JSON file or one of {sorted(PRESETS)}")
