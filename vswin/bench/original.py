"""The original PyTorch Video Swin (`SwinTransformer3D`) imported from a checkout, without mmcv or mmaction.

The reference arm of the benchmarks runs the authors' own code. Its module,
`mmaction/models/backbones/swin_transformer.py` of
github.com/SwinTransformer/Video-Swin-Transformer, imports mmcv, mmaction,
timm and einops for things inference never uses (checkpoint loading,
logging, the backbone registry, DropPath at rate 0) or uses trivially
(`rearrange` for two permutations). Small stand-ins for those are put into
`sys.modules` before the file is executed; timm and einops are used
instead when installed. The file is read from the checkout the user gives
and never copied into this repository.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import types
from pathlib import Path
from typing import Any

from vswin import contract

MODULE_PATH = Path("mmaction/models/backbones/swin_transformer.py")
_MODULE_NAME = "mmaction.models.backbones.swin_transformer"


def module_file(repo: str | Path) -> Path:
    """The original's backbone file in checkout `repo`; a clear error when it is not there."""
    path = Path(repo) / MODULE_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: --original-repo must be a checkout of "
            "github.com/SwinTransformer/Video-Swin-Transformer (the directory holding mmaction/)"
        )
    return path


@functools.cache
def load_swin3d(repo: str | Path) -> type:
    """The `SwinTransformer3D` class of the original code in `repo` (executed once per process)."""
    path = module_file(repo)
    _install_stand_ins()
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module.SwinTransformer3D


def build(repo: str | Path, preset) -> Any:
    """The original backbone for a video `vswin.model.Preset`, initialised as its `init_weights` does, eval mode."""
    if preset.family != contract.VIDEO:
        raise ValueError(f"{preset.name} is not a Video Swin model: the original Video Swin code cannot build it")
    args = preset.backbone
    model = load_swin3d(repo)(
        patch_size=tuple(args["patch_size"]), embed_dim=args["embed_dim"], depths=list(args["depths"]),
        num_heads=list(args["num_heads"]), window_size=tuple(args["window_size"]), mlp_ratio=args["mlp_ratio"],
        qkv_bias=args["qkv_bias"], patch_norm=args["patch_norm"], drop_path_rate=0.0,
    )  # fmt: skip
    model.init_weights()
    model.eval()  # the original's train() override returns None, so eval() cannot be chained
    return model


def _install_stand_ins() -> None:
    """Minimal mmcv/mmaction (and, where missing, timm/einops) modules for the original's imports."""
    registry = types.SimpleNamespace(register_module=lambda *args, **kwargs: (lambda cls: cls))
    _module("mmcv")
    _module("mmcv.runner", load_checkpoint=_no_checkpoint_loading)
    _module("mmaction", __path__=[])
    _module("mmaction.utils", get_root_logger=lambda *args, **kwargs: logging.getLogger("original"))
    _module("mmaction.models", __path__=[])
    _module("mmaction.models.builder", BACKBONES=registry)
    _module("mmaction.models.backbones", __path__=[])
    if not _importable("timm"):
        import torch

        _module("timm", __path__=[])
        _module("timm.models", __path__=[])
        _module("timm.models.layers", DropPath=_drop_path_class(), trunc_normal_=torch.nn.init.trunc_normal_)
    if not _importable("einops"):
        _module("einops", rearrange=rearrange)


def _importable(name: str) -> bool:
    """Whether the real package is there (a stand-in installed earlier does not count)."""
    if name in sys.modules:
        return not getattr(sys.modules[name], "_vswin_stand_in", False)
    return importlib.util.find_spec(name) is not None


def _module(name: str, **attributes: Any) -> None:
    if name in sys.modules and not getattr(sys.modules[name], "_vswin_stand_in", False):
        return  # the real package is imported already
    module = types.ModuleType(name)
    module._vswin_stand_in = True
    module.__dict__.update(attributes)
    sys.modules[name] = module


def _no_checkpoint_loading(*args, **kwargs):
    raise NotImplementedError("the benchmark's stand-in mmcv loads no checkpoints; weights come from vswin")


def rearrange(tensor, pattern: str):
    """einops.rearrange for plain axis permutations ('n c d h w -> n d h w c'), all the original needs."""
    source, _, target = (side.split() for side in pattern.partition("->"))
    if sorted(source) != sorted(target) or len(source) != tensor.dim():
        raise ValueError(f"stand-in rearrange handles permutations of all axes only, not {pattern!r}")
    return tensor.permute(*[source.index(axis) for axis in target])


def _drop_path_class():
    import torch

    class DropPath(torch.nn.Module):
        """Stochastic depth; the benchmark builds with rate 0 and runs in eval mode, so it passes x through."""

        def __init__(self, drop_prob: float = 0.0):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            if self.drop_prob and self.training:
                raise NotImplementedError("the stand-in DropPath is for inference only")
            return x

    return DropPath

