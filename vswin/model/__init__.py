"""Keras 3 Video Swin Transformer: layers, backbone, presets, checkpoint conversion.

    import vswin.model
    model = vswin.model.load("swin_tiny_k400.pth", arch="swin_tiny_patch244_window877_kinetics400_1k")
    out = model(clips)      # clips: float32 [B, T, H, W, 3], normalised
    out["features"]         # [B, C]
"""

from __future__ import annotations

from pathlib import Path

from vswin.model.presets import MEAN, PRESETS, STD, VideoSwinConfig, get_config

__all__ = ["MEAN", "PRESETS", "STD", "VideoSwinConfig", "build", "get_config", "load"]

# Smallest clip that creates every weight: one patch in time, a 2x2 map at the last stage.
_BUILD_SHAPE = (1, 2, 64, 64, 3)


def build(arch: str | Path | VideoSwinConfig, include_head: bool = True, dtype: str | None = None):
    """A `VideoSwin` model with random weights. dtype: a Keras dtype policy, e.g. "mixed_bfloat16"."""
    from vswin.model.backbone import VideoSwin

    config = get_config(arch)
    arch_dict = {key: value for key, value in config.to_dict().items() if key != "features_dim"}
    model = VideoSwin(arch_dict, include_head=include_head, dtype=dtype, name="video_swin")
    model.build(_BUILD_SHAPE)
    return model


def load(checkpoint: str | Path, arch: str | Path | VideoSwinConfig, dtype: str | None = None):
    """A `VideoSwin` model with the weights of an official `.pth` or a converted `.weights.h5`.

    The classification head is included exactly when the checkpoint has one.
    Raises `vswin.model.convert.CheckpointError` when the file does not fit `arch`.
    """
    from vswin.model import convert

    config = get_config(arch)
    path = Path(checkpoint)
    if path.name.endswith(".weights.h5"):
        return convert.load_keras_weights(path, config, dtype)
    state = convert.read_state_dict(path)
    model = build(config, include_head=convert.has_head(state), dtype=dtype)
    convert.assign_state_dict(model, state, source=str(path))
    return model
