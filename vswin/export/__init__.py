"""SavedModel export: pinned serving signatures, XLA, warmup records, atomic versions.

    from vswin.export import dtype_policy, export_model
    model = vswin.model.load(checkpoint, arch, dtype=dtype_policy("float32"))
    export_model(model, "models", "vswin_tiny", frames=32, size=(224, 224), batch_sizes=(1, 4, 8))

Names load on first use, so `vswin.export.options` (and the CLI) stay free of TensorFlow.
"""

from __future__ import annotations

from vswin.lazy import lazy_exports

_EXPORTS = {name: "vswin.export.savedmodel" for name in ("dtype_policy", "export_model", "read_labels")}
_EXPORTS["PRECISIONS"] = "vswin.export.options"

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
