"""SavedModel export: pinned serving signatures, XLA, warmup records, atomic versions.

    from vswin.export import export_model
    model = vswin.model.load(checkpoint, arch, dtype=dtype_policy("float32"))
    export_model(model, "models", "vswin_tiny", frames=32, size=(224, 224), batch_sizes=(1, 4, 8))
"""

from vswin.export.savedmodel import PRECISIONS, dtype_policy, export_model, read_labels

__all__ = ["PRECISIONS", "dtype_policy", "export_model", "read_labels"]
