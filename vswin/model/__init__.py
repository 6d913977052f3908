"""Keras 3 Swin models of both families: backbones, tasks, preprocessor, presets, checkpoint conversion.

    import vswin.model
    model = vswin.model.load("swin_tiny_k400.pth", arch="swin_tiny_patch244_window877_kinetics400_1k")
    out = model(clips)      # clips: float32 [B, T, H, W, 3], normalised (images: [B, H, W, 3])
    out["features"]         # [B, C]

`load` and `build` are the short API and return a `SwinFeatureExtractor`;
`SwinFeatureExtractor`, `SwinClassifier`, `VideoSwinBackbone` and
`SwinBackbone` each have `from_preset`. Keras loads on first use of a model
class, so listing presets stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from vswin.contract import MEAN, STD
from vswin.lazy import lazy_exports
from vswin.model.presets import PRESETS, Preset, get_preset

_EXPORTS = {
    **{name: "vswin.model.backbone" for name in ("Backbone", "SwinBackbone", "VideoSwinBackbone")},
    **{name: "vswin.model.tasks" for name in ("SwinClassifier", "SwinFeatureExtractor", "SwinTask")},
    "SwinPreprocessor": "vswin.model.preprocessor",
    "CheckpointError": "vswin.model.checkpoint_files",
}
__all__ = sorted(["MEAN", "PRESETS", "STD", "Preset", "build", "get_preset", "load", *_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def build(arch: str | Path | Preset, include_head: bool = True, dtype: str | None = None):
    """A `SwinFeatureExtractor` with random weights. dtype: a Keras dtype policy, e.g. "mixed_bfloat16"."""
    from vswin.model.tasks import SwinFeatureExtractor

    return SwinFeatureExtractor.from_preset(arch, include_head=include_head, dtype=dtype)


def load(checkpoint: str | Path, arch: str | Path | Preset, dtype: str | None = None):
    """A `SwinFeatureExtractor` with the weights of an official `.pth`, a timm file or a converted `.weights.h5`.

    The classification head is included exactly when the checkpoint has one.
    Raises `vswin.model.CheckpointError` when the file does not fit `arch`.
    """
    from vswin.model.tasks import SwinFeatureExtractor

    return SwinFeatureExtractor.from_preset(arch, checkpoint=checkpoint, dtype=dtype)
