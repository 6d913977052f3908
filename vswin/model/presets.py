"""The models of the collection as data: architecture, preprocessing, catalogue entry.

A `Preset` names a backbone (its family and keyword arguments), the head's
class count, the `Preprocessing` the original evaluation used (what a client
must do to raw frames or images), and what a user reads in a catalogue. An
architecture JSON file describes any other model with the original
constructor's keyword names: `embed_dim, depths, num_heads, window_size,
patch_size, ...` for Video Swin (the fields of
shared/fixtures/vswin_micro_w877.json), and `img_size, patch_size,
embed_dim, depths, num_heads, window_size, num_classes` for image Swin
(`img_size` or `"family": "image"` marks it). Pure Python: listing presets
needs neither Keras nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from vswin import contract
from vswin.contract import IMAGE, VIDEO, Preprocessing

# Keyword arguments of each family's backbone, in constructor order.
VIDEO_ARGS = ("embed_dim", "depths", "num_heads", "window_size", "patch_size", "mlp_ratio", "qkv_bias", "patch_norm")
IMAGE_ARGS = ("img_size", "patch_size", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "qkv_bias",
              "patch_norm")
BACKBONE_ARGS = {VIDEO: VIDEO_ARGS, IMAGE: IMAGE_ARGS}
_REQUIRED = ("embed_dim", "depths", "num_heads")
_DEFAULTS = {
    VIDEO: {"window_size": (8, 7, 7), "patch_size": (2, 4, 4), "mlp_ratio": 4.0, "qkv_bias": True, "patch_norm": True},
    IMAGE: {"img_size": 224, "patch_size": 4, "window_size": 7, "mlp_ratio": 4.0, "qkv_bias": True,
            "patch_norm": True},
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """One model: what builds it (family, backbone kwargs, head), how it is fed, and its catalogue entry."""

    name: str
    family: str
    backbone: Mapping[str, Any]
    num_classes: int
    preprocessing: Preprocessing
    dataset: str = ""  # what the weights were trained (and evaluated) on
    top1: float | None = None  # top-1 accuracy reported by the source, in %
    source: str = ""
    classes: str = ""  # the label set of the head

    def __post_init__(self) -> None:
        object.__setattr__(self, "backbone", normalize_backbone_args(self.family, self.backbone, self.name))
        if self.preprocessing.family != self.family:
            raise ValueError(f"{self.name}: {self.preprocessing.family} preprocessing for a {self.family} model")
        if self.num_classes < 1:
            raise ValueError(f"{self.name}: num_classes must be positive, got {self.num_classes}")

    @property
    def features_dim(self) -> int:
        """Width of the pooled features: embed_dim doubled at each patch merging."""
        return self.backbone["embed_dim"] * 2 ** (len(self.backbone["depths"]) - 1)

    def to_arch(self) -> dict[str, Any]:
        """The architecture JSON of this preset (what `get_preset` reads back), JSON-ready."""
        return {"name": self.name, "family": self.family, **json_ready(self.backbone),
                "num_classes": self.num_classes, "preprocessing": self.preprocessing.to_dict()}


def normalize_backbone_args(family: str, args: Mapping[str, Any], name: str = "architecture") -> dict[str, Any]:
    """Complete `args` with the family's defaults, as tuples and ints, and check they describe a network."""
    if family not in BACKBONE_ARGS:
        raise ValueError(f"{name}: family must be one of {contract.FAMILIES}, not {family!r}")
    unknown = set(args) - set(BACKBONE_ARGS[family])
    if unknown:
        raise ValueError(f"{name}: {family} backbones take no {sorted(unknown)}; they take {list(BACKBONE_ARGS[family])}")
    missing = [key for key in _REQUIRED if key not in args]
    if missing:
        raise ValueError(f"{name}: architecture lacks {missing}")
    full = {**_DEFAULTS[family], **args}
    full = {key: full[key] for key in BACKBONE_ARGS[family]}
    full["embed_dim"] = int(full["embed_dim"])
    full["depths"] = tuple(int(v) for v in full["depths"])
    full["num_heads"] = tuple(int(v) for v in full["num_heads"])
    full["mlp_ratio"] = float(full["mlp_ratio"])
    stages = len(full["depths"])
    if family == VIDEO:
        for key in ("window_size", "patch_size"):
            full[key] = tuple(int(v) for v in full[key])
            if len(full[key]) != 3:
                raise ValueError(f"{name}: {key} needs 3 entries (T, H, W), got {list(full[key])}")
    else:
        full["img_size"] = int(full["img_size"])
        full["patch_size"] = int(full["patch_size"])
        window = full["window_size"]
        full["window_size"] = int(window) if isinstance(window, (int, float)) else tuple(int(v) for v in window)
        if isinstance(full["window_size"], tuple) and len(full["window_size"]) != stages:
            raise ValueError(f"{name}: window_size needs one entry per stage ({stages}), got {list(window)}")
    if len(full["num_heads"]) != stages:
        raise ValueError(
            f"{name}: depths {list(full['depths'])} and num_heads {list(full['num_heads'])} need one entry per stage"
        )
    for stage, heads in enumerate(full["num_heads"]):
        width = full["embed_dim"] * 2**stage
        if heads < 1 or width % heads:
            raise ValueError(f"{name}: stage {stage} width {width} is not divisible by {heads} heads")
    return full


def json_ready(args: Mapping[str, Any]) -> dict[str, Any]:
    """Backbone arguments with tuples as lists, as JSON writes them."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in args.items()}


def preset_from_arch(data: Mapping[str, Any], name: str | None = None) -> Preset:
    """A preset from an architecture dict (a JSON file's content); unknown keys are ignored.

    The family is `data["family"]`, else image when `img_size` is given, else video.
    `preprocessing` (a `Preprocessing` dict) is optional: the family's original evaluation by default.
    """
    name = name or data.get("name") or "architecture"
    family = data.get("family") or (IMAGE if "img_size" in data else VIDEO)
    if family not in contract.FAMILIES:
        raise ValueError(f"{name}: family must be one of {contract.FAMILIES}, not {family!r}")
    args = {key: data[key] for key in BACKBONE_ARGS[family] if key in data}
    if "preprocessing" in data:
        preprocessing = Preprocessing.from_dict(data["preprocessing"])
    elif family == IMAGE:
        preprocessing = contract.image_preprocessing(int(args.get("img_size", _DEFAULTS[IMAGE]["img_size"])))
    else:
        preprocessing = contract.video_preprocessing()
    classes = data.get("num_classes") or (1000 if family == IMAGE else 400)  # None: a headless export's
    classes = int(classes)
    return Preset(name=name, family=family, backbone=args, num_classes=classes, preprocessing=preprocessing, dataset=data.get("dataset", ""), top1=data.get("top1"),
                  source=data.get("source", ""), classes=data.get("classes", ""))


_VIDEO_SOURCE = "https://github.com/SwinTransformer/Video-Swin-Transformer (Apache-2.0)"
_SWIN_SOURCE = "https://github.com/microsoft/Swin-Transformer (MIT)"
_S3_SOURCE = "https://github.com/microsoft/Cream/tree/main/AutoFormerV2 (MIT)"
_TINY, _DEEP, _DEEPER = (2, 2, 6, 2), (2, 2, 18, 2), (2, 2, 30, 2)
_HEADS_96, _HEADS_128, _HEADS_192 = (3, 6, 12, 24), (4, 8, 16, 32), (6, 12, 24, 48)
_KINETICS = contract.video_preprocessing()
# configs/recognition/swin/swin_base_patch244_window1677_sthv2.py, test_pipeline: SampleFrames(clip_len=32,
# num_clips=1, frame_uniform=True) -> 32 frames spread over the whole video; Resize(-1, 224), ThreeCrop(224).
_SSV2 = contract.video_preprocessing(sampling="segments", num_clips=1)


def _video(name: str, embed_dim: int, depths: tuple[int, ...], heads: tuple[int, ...], label_set: str,
           classes: int, pretrained: str, top1: float, window: tuple[int, int, int] = (8, 7, 7),
           preprocessing: Preprocessing = _KINETICS) -> Preset:
    return Preset(name=name, family=VIDEO,
                  backbone={"embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": window},
                  num_classes=classes, preprocessing=preprocessing, dataset=f"{label_set} ({pretrained} pre-trained)",
                  top1=top1, source=_VIDEO_SOURCE, classes=f"{label_set} ({classes})")


def _image(name: str, img_size: int, window: int | tuple[int, ...], embed_dim: int, depths: tuple[int, ...],
           heads: tuple[int, ...], in22k: bool = False, top1: float | None = None, source: str = _SWIN_SOURCE,
           dataset: str | None = None) -> Preset:
    return Preset(
        name=name, family=IMAGE,
        backbone={"img_size": img_size, "embed_dim": embed_dim, "depths": depths, "num_heads": heads,
                  "window_size": window},
        num_classes=21841 if in22k else 1000, preprocessing=contract.image_preprocessing(img_size),
        dataset=dataset or ("ImageNet-22k" if in22k else "ImageNet-1k (ImageNet-22k pre-trained)"),
        top1=top1, source=source, classes="ImageNet-22k (21841)" if in22k else "ImageNet-1k (1000)",
    )


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _video("swin_tiny_patch244_window877_kinetics400_1k", 96, _TINY, _HEADS_96, "kinetics400", 400,
               "ImageNet-1k", 78.8),
        _video("swin_small_patch244_window877_kinetics400_1k", 96, _DEEP, _HEADS_96, "kinetics400", 400,
               "ImageNet-1k", 80.6),
        _video("swin_base_patch244_window877_kinetics400_1k", 128, _DEEP, _HEADS_128, "kinetics400", 400,
               "ImageNet-1k", 80.6),
        _video("swin_base_patch244_window877_kinetics400_22k", 128, _DEEP, _HEADS_128, "kinetics400", 400,
               "ImageNet-22k", 82.7),
        _video("swin_base_patch244_window877_kinetics600_22k", 128, _DEEP, _HEADS_128, "kinetics600", 600,
               "ImageNet-22k", 84.0),
        _video("swin_base_patch244_window1677_sthv2", 128, _DEEP, _HEADS_128, "sthv2", 174, "Kinetics-400", 69.6,
               window=(16, 7, 7), preprocessing=_SSV2),
        _image("swin_tiny_patch4_window7_224", 224, 7, 96, _TINY, _HEADS_96, top1=81.2, dataset="ImageNet-1k"),
        _image("swin_small_patch4_window7_224", 224, 7, 96, _DEEP, _HEADS_96, top1=83.2, dataset="ImageNet-1k"),
        _image("swin_base_patch4_window7_224", 224, 7, 128, _DEEP, _HEADS_128, top1=85.2),
        _image("swin_base_patch4_window7_224_in22k", 224, 7, 128, _DEEP, _HEADS_128, in22k=True),
        _image("swin_base_patch4_window12_384", 384, 12, 128, _DEEP, _HEADS_128, top1=86.4),
        _image("swin_base_patch4_window12_384_in22k", 384, 12, 128, _DEEP, _HEADS_128, in22k=True),
        _image("swin_large_patch4_window7_224", 224, 7, 192, _DEEP, _HEADS_192, top1=86.3),
        _image("swin_large_patch4_window7_224_in22k", 224, 7, 192, _DEEP, _HEADS_192, in22k=True),
        _image("swin_large_patch4_window12_384", 384, 12, 192, _DEEP, _HEADS_192, top1=87.3),
        _image("swin_large_patch4_window12_384_in22k", 384, 12, 192, _DEEP, _HEADS_192, in22k=True),
        _image("swin_s3_tiny_224", 224, (7, 7, 14, 7), 96, _TINY, _HEADS_96, top1=82.1, source=_S3_SOURCE,
               dataset="ImageNet-1k"),
        _image("swin_s3_small_224", 224, (14, 14, 14, 7), 96, _DEEP, _HEADS_96, top1=83.7, source=_S3_SOURCE,
               dataset="ImageNet-1k"),
        _image("swin_s3_base_224", 224, (7, 7, 14, 7), 96, _DEEPER, _HEADS_96, top1=84.0, source=_S3_SOURCE,
               dataset="ImageNet-1k"),
    )
}


def get_preset(arch: str | Path | Preset | Mapping[str, Any]) -> Preset:
    """A preset by name, an architecture JSON file by path, an architecture dict, or a preset passed through."""
    if isinstance(arch, Preset):
        return arch
    if isinstance(arch, Mapping):
        return preset_from_arch(arch)
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
        if not isinstance(data, dict):
            raise ValueError(f"architecture file {path} must hold a JSON object")
        return preset_from_arch(data, name=data.get("name", path.stem))
    raise ValueError(f"unknown architecture {arch_str!r}: expected a JSON file or one of {sorted(PRESETS)}")
