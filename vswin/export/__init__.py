"""SavedModel export: pinned serving signatures, XLA, warmup records, atomic versions."""
