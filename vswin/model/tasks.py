"""Tasks: a backbone plus what a use of it needs, pooling, head and preprocessor.

`SwinFeatureExtractor` returns what the project serves: `features` [B, C]
(the feature map averaged over T, H, W or H, W, as the original heads pool),
`feature_map`, and `logits` when it has the checkpoint's head.
`SwinClassifier` returns logits only, so `compile`/`fit` train it as any
Keras classifier (fine-tuning, docs/model.md). Both work for either family,
carry the `SwinPreprocessor` that export traces in front of them, and are
built from a preset with `from_preset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
from keras import ops

from vswin import contract
from vswin.contract import IMAGE, image_preprocessing, video_preprocessing
from vswin.model.backbone import BACKBONES, Backbone
from vswin.model.preprocessor import SwinPreprocessor
from vswin.model.presets import Preset, get_preset, json_ready


class SwinTask(keras.Model):
    """What the two tasks share: backbone, pooling, optional linear head, preprocessor, `from_preset`."""

    def __init__(self, backbone: Backbone, num_classes: int | None = None,
                 preprocessor: SwinPreprocessor | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be a positive number of classes or None, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.preprocessor = preprocessor or SwinPreprocessor(_default_preprocessing(backbone))
        if self.preprocessor.family != backbone.family:
            raise ValueError(f"the preprocessor is for {self.preprocessor.family} input, the backbone takes "
                             f"{backbone.family} input")
        self.head = keras.layers.Dense(num_classes, name="head", dtype=self.dtype_policy) if num_classes else None
        if self.head is not None:
            self.head.build((None, backbone.features_dim))
        self.built = True

    @property
    def family(self) -> str:
        return self.backbone.family

    @property
    def has_head(self) -> bool:
        return self.head is not None

    @property
    def features_dim(self) -> int:
        return self.backbone.features_dim

    def extract(self, inputs, return_attention: bool = False) -> dict[str, Any]:
        """The served outputs for normalised `inputs`, float32 whatever the compute dtype.

        `features` [B, C], `feature_map`, `logits` with a head, and with
        `return_attention` the list `attention` of every block's post-softmax
        attention [B * num_windows, heads, N, N], stage by stage.
        """
        result = self.backbone(inputs, return_attention=return_attention)
        feature_map, attention = result if return_attention else (result, None)
        feature_map = ops.cast(feature_map, "float32")
        features = ops.mean(feature_map, axis=tuple(range(1, len(feature_map.shape) - 1)))
        outputs = {contract.FEATURES: features, contract.FEATURE_MAP_OUTPUT: feature_map}
        if self.head is not None:
            outputs[contract.LOGITS] = ops.cast(self.head(ops.cast(features, self.compute_dtype)), "float32")
        if return_attention:
            outputs[contract.ATTENTION] = list(attention)
        return outputs

    def architecture(self) -> dict[str, Any]:
        """This task as an architecture JSON (`vswin.model.get_preset` reads it back), JSON-ready."""
        return {"name": self.name, "family": self.family, **json_ready(self.backbone.arch_args()),
                "num_classes": self.num_classes, "preprocessing": self.preprocessor.preprocessing.to_dict()}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_classes": self.num_classes,
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)

    @classmethod
    def _from_preset(cls, preset: str | Path | Preset, checkpoint: str | Path | None, head_size, dtype: str | None,
                     **kwargs):
        """Build from `preset`; `head_size(weights)` picks the head's classes (None: no head) from the checkpoint."""
        preset = get_preset(preset)
        weights = None
        if checkpoint is not None:
            from vswin.model import convert  # the model never imports conversion at module level

            weights = convert.open_checkpoint(checkpoint, preset)
        num_classes = head_size(preset, weights)
        backbone = BACKBONES[preset.family](**preset.backbone, dtype=dtype, name="backbone")
        task = cls(backbone, num_classes=num_classes, preprocessor=SwinPreprocessor(preset.preprocessing),
                   name=preset.name, dtype=dtype, **kwargs)
        if weights is not None:
            weights.assign(task, head=_loads_head(num_classes, preset, weights))
        return task


@keras.saving.register_keras_serializable(package="vswin")
class SwinFeatureExtractor(SwinTask):
    """Backbone -> {`features`, `feature_map`, `logits` with a head}: the outputs every export serves.

    `model(x, return_attention=True)` adds `attention` (see `SwinTask.extract`).
    """

    def call(self, inputs, return_attention: bool = False):
        return self.extract(inputs, return_attention=return_attention)

    @classmethod
    def from_preset(cls, preset: str | Path | Preset, checkpoint: str | Path | None = None,
                    include_head: bool | None = None, dtype: str | None = None, **kwargs) -> "SwinFeatureExtractor":
        """The preset's extractor; the weights of `checkpoint` (`.pth`, `.safetensors` or `.weights.h5`) if given.

        `include_head` defaults to whether the checkpoint has a classification
        head (with no checkpoint: True, a random head of the preset's classes).
        """

        def head_size(preset: Preset, weights) -> int | None:
            if include_head is None:
                return preset.num_classes if weights is None or weights.has_head else None
            if include_head and weights is not None and not weights.has_head:
                raise ValueError(f"include_head=True, but checkpoint {checkpoint} has no classification head")
            return preset.num_classes if include_head else None

        return cls._from_preset(preset, checkpoint, head_size, dtype, **kwargs)


@keras.saving.register_keras_serializable(package="vswin")
class SwinClassifier(SwinTask):
    """Backbone -> logits [B, num_classes]: a plain Keras classifier for `compile`, `fit` and `predict`."""

    def __init__(self, backbone: Backbone, num_classes: int, preprocessor: SwinPreprocessor | None = None, **kwargs):
        if not num_classes:
            raise ValueError("a classifier needs num_classes")
        super().__init__(backbone, num_classes=num_classes, preprocessor=preprocessor, **kwargs)

    def call(self, inputs):
        return self.extract(inputs)[contract.LOGITS]

    @classmethod
    def from_preset(cls, preset: str | Path | Preset, checkpoint: str | Path | None = None,
                    num_classes: int | None = None, dtype: str | None = None, **kwargs) -> "SwinClassifier":
        """The preset's classifier with the weights of `checkpoint` if given.

        With `num_classes` other than the checkpoint's, the head is new (random)
        and only the backbone is loaded: the start of fine-tuning for new classes.
        """

        def head_size(preset: Preset, weights) -> int:
            return num_classes or preset.num_classes

        return cls._from_preset(preset, checkpoint, head_size, dtype, **kwargs)


def _loads_head(num_classes: int | None, preset: Preset, weights) -> bool:
    """Whether the checkpoint's head goes into the task's: yes, unless the task has none or was asked for
    classes that are neither the checkpoint's nor the preset's (a new head). A head of the preset's size
    is loaded, so a checkpoint of another size is reported, not silently replaced."""
    return (num_classes is not None and weights.has_head
            and num_classes in (weights.head_classes, preset.num_classes))


def _default_preprocessing(backbone: Backbone):
    if backbone.family == IMAGE:
        return image_preprocessing(backbone.arch_args()["img_size"])
    return video_preprocessing()
