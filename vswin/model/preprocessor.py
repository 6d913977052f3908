"""The preprocessor: uint8 RGB frames or images -> the model's normalised float32 input.

It is the one normalisation of the project: export traces it into every
uint8 signature. It also carries the preset's `Preprocessing` (sampling,
resize, crop), which it does not apply itself: a client does that to raw
video or images before sending uint8 pixels, reading it from the export's
metadata.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from vswin.contract import Preprocessing, video_preprocessing


@keras.saving.register_keras_serializable(package="vswin")
class SwinPreprocessor(keras.layers.Layer):
    """(pixels - mean) / std in float32, any input shape ending in 3 RGB channels."""

    def __init__(self, preprocessing: Preprocessing | dict[str, Any] | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # model input stays float32 whatever the model computes in
        super().__init__(**kwargs)
        if isinstance(preprocessing, dict):
            preprocessing = Preprocessing.from_dict(preprocessing)
        self.preprocessing = preprocessing or video_preprocessing()

    @property
    def family(self) -> str:
        return self.preprocessing.family

    def call(self, pixels):
        mean = ops.convert_to_tensor(self.preprocessing.mean, "float32")
        std = ops.convert_to_tensor(self.preprocessing.std, "float32")
        return (ops.cast(pixels, "float32") - mean) / std

    def compute_output_spec(self, pixels):
        return keras.KerasTensor(pixels.shape, "float32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "preprocessing": self.preprocessing.to_dict()}
