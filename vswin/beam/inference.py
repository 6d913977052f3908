"""What both inference modes share: a batch of views in, one ViewFeatures per view out, counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from vswin.beam import metrics
from vswin.beam.elements import View, ViewFeatures


class FeatureModel(Protocol):
    """A worker's model: uint8 views [B, T, H, W, 3] -> (features [B, C], the version that answered)."""

    def features(self, views: np.ndarray) -> tuple[np.ndarray, int]: ...

    def first_use(self) -> bool: ...


def infer(batch: Sequence[View], model: FeatureModel) -> list[ViewFeatures]:
    """Run one batch (views of any videos) and key each row's features back to its video and view."""
    views = np.stack([view.pixels for view in batch])
    if model.first_use():
        metrics.counter(metrics.MODEL_SETUPS).inc()
    features, version = model.features(views)
    if len(features) != len(batch):
        raise ValueError(f"the model returned {len(features)} rows for a batch of {len(batch)} views")
    metrics.counter(metrics.REQUESTS).inc()
    metrics.counter(metrics.BYTES_SENT).inc(views.nbytes)
    return [ViewFeatures(view.key, view.index, row, version) for view, row in zip(batch, features)]


def batching(max_batch: int) -> dict[str, int]:
    """BatchElements settings: full batches of the model's largest batch size (the tail of a bundle may be short)."""
    return {"min_batch_size": max_batch, "max_batch_size": max_batch}


def view_bytes(batch: Sequence[View]) -> int:
    """Pixel bytes of a batch (RunInference's own byte metric; pickling 40 MB to count them would be waste)."""
    return sum(view.pixels.nbytes for view in batch)
