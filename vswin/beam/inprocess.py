"""In-process inference: the exported SavedModel loaded in each worker (GPU worker pools), as a Beam ModelHandler.

Keras 3 cannot load a SavedModel directory and Beam's TensorFlow handler
loads through Keras, so this handler calls the export's signature from
tf.saved_model.load, as TF Serving does.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from vswin import contract
from vswin.beam import inference
from vswin.beam.elements import View, ViewFeatures
from vswin.beam.metrics import FirstUse
from vswin.beam.models import ExportedModel


class LoadedExport:
    """The export's signature, loaded once per worker process (or per shared copy).

    Batches are zero-padded up to the next of the export's batch plan sizes, as
    TF Serving's batcher pads them, so an XLA signature compiles a handful of
    programs instead of one per batch size; the padding rows are dropped.
    """

    def __init__(self, spec: ExportedModel) -> None:
        import tensorflow as tf

        self._tf = tf
        self.first_use = FirstUse()
        metadata = spec.metadata()
        self.version = int(metadata["version"])
        self._input = contract.uint8_input(metadata.get("family", contract.VIDEO))  # frames or images
        self._loaded = tf.saved_model.load(spec.path)
        self._signature = self._loaded.signatures[spec.signature]

    def features(self, views: np.ndarray) -> tuple[np.ndarray, int]:
        count = len(views)
        padded = np.zeros((padded_size(count), *views.shape[1:]), views.dtype)
        padded[:count] = views
        outputs = self._signature(**{self._input: self._tf.constant(padded)})
        return outputs[contract.FEATURES].numpy()[:count], self.version


def padded_size(count: int) -> int:
    """The smallest batch-plan size that holds `count` rows (count itself above the largest)."""
    sizes = contract.ALLOWED_BATCH_SIZES
    index = bisect.bisect_left(sizes, count)
    return sizes[index] if index < len(sizes) else count


class SavedModelHandler(ModelHandler[View, ViewFeatures, LoadedExport]):
    def __init__(self, spec: ExportedModel) -> None:
        super().__init__(**inference.batching(spec.max_batch), model_copies=spec.model_copies)
        self.spec = spec

    def load_model(self) -> LoadedExport:
        return LoadedExport(self.spec)

    def run_inference(self, batch: Sequence[View], model: LoadedExport, inference_args=None) -> list[ViewFeatures]:
        return inference.infer(batch, model)

    def get_num_bytes(self, batch: Sequence[View]) -> int:
        return inference.view_bytes(batch)

    def get_metrics_namespace(self) -> str:
        return "vswin_inference"
