"""Tiny SavedModels that follow the export contract, served by the real server in client and bench tests.

Same signature set and tensor names as `vswin export` (vswin.contract: serving_default,
features_graph, features_float, feature_map, classify, metadata), with a
model whose answer numpy reproduces bit for bit: features[c] = mean of RGB
channel c % 3 over the view / 255 + c, summed in integers and divided in
float64, so tests compare served features exactly. `metadata` answers the
export's serving metadata JSON (family, preprocessing, geometry, features_dim),
or is left out, as in exports written before it existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vswin import contract

FEATURE_DIM = 8
LABELS = ["abseiling", "bowling", "cooking", "dancing", "eating"]
CLIP = (4, 32, 32)  # T, H, W of the video models
IMAGE_SIZE = 32
_LOGIT_SCALE = np.array([1, -1, 2, -2, 0.5], np.float32)


def expected_features(views: np.ndarray) -> np.ndarray:
    """What the tiny models answer for uint8 views [B, ..., 3] (clips or images)."""
    axes = tuple(range(1, views.ndim - 1))
    per_channel = views.astype(np.float64).mean(axis=axes) / 255.0  # [B, 3]
    return (per_channel[:, np.arange(FEATURE_DIM) % 3] + np.arange(FEATURE_DIM)).astype(np.float32)


def expected_logits(views: np.ndarray) -> np.ndarray:
    return expected_features(views)[:, : len(LABELS)] * _LOGIT_SCALE


def serving_metadata(family: str, preprocessing: contract.Preprocessing, view_shape: tuple[int, ...]) -> dict:
    """The `metadata` signature's answer, with the fields vswin.export.metadata.serving_metadata writes."""
    if family == contract.VIDEO:
        layout = {"clip": {"clip_len": view_shape[0], "height": view_shape[1], "width": view_shape[2], "channels": 3}}
    else:
        layout = {"image": {"height": view_shape[0], "width": view_shape[1], "channels": 3}}
    return {"family": family, "preprocessing": preprocessing.to_dict(), **layout, "features_dim": FEATURE_DIM,
            "num_classes": len(LABELS)}


def write_export_json(version_dir: Path, name: str) -> Path:
    """Give a tiny export the assets.extra/vswin.json that `vswin export` writes (model_name, version, the
    `metadata` signature's answer, signatures), for readers of the file such as `vswin beam --savedmodel`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    answer = loaded.signatures[contract.METADATA](**{contract.METADATA_INPUT: tf.zeros([1], tf.int32)})
    served = json.loads(answer[contract.METADATA_OUTPUT].numpy()[0])
    data = {"model_name": name, "version": int(version_dir.name), **served, "signatures": sorted(loaded.signatures),
            "labels": LABELS}  # fmt: skip
    path = version_dir / contract.ASSETS_EXTRA / contract.METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def save_tiny_export(path: Path, family: str = contract.VIDEO, preprocessing: contract.Preprocessing | None = None,
                     with_metadata: bool = True) -> Path:  # fmt: skip
    """Write a tiny export of `family` to the version directory `path`; `preprocessing` goes into its `metadata`
    signature (left out when `with_metadata` is false). Views: 4x32x32 clips, or 32x32 images."""
    import tensorflow as tf

    view = (*CLIP, 3) if family == contract.VIDEO else (IMAGE_SIZE, IMAGE_SIZE, 3)
    axes = list(range(1, len(view)))
    count = float(np.prod(view[:-1]))
    frames = tf.TensorSpec([None, *view], tf.uint8, name=contract.uint8_input(family))
    floats = tf.TensorSpec([None, *view], tf.float32, name=contract.float_input(family))
    columns = tf.constant(np.arange(FEATURE_DIM) % 3)
    offsets = tf.constant(np.arange(FEATURE_DIM, dtype=np.float64))
    labels = tf.constant(np.array(LABELS, dtype=object))
    top_k = min(contract.DEFAULT_TOP_K, len(LABELS))

    def features_of(sums):  # sums [B, 3] float64
        per_channel = sums / count / 255.0
        return tf.cast(tf.gather(per_channel, columns, axis=1) + offsets, tf.float32)

    def uint8_features(views):
        return features_of(tf.cast(tf.reduce_sum(tf.cast(views, tf.int64), axis=axes), tf.float64))

    module = tf.Module()
    module.serving_default = tf.function(lambda views: {contract.FEATURES: uint8_features(views)},
                                         input_signature=[frames])  # fmt: skip
    module.features_graph = tf.function(lambda views: {contract.FEATURES: uint8_features(views)},
                                        input_signature=[frames])  # fmt: skip
    map_shape = [-1, *([1] * (len(view) - 1)), FEATURE_DIM]  # the features as a 1x1(x1) feature map
    module.feature_map = tf.function(
        lambda views: {contract.FEATURE_MAP_OUTPUT: tf.reshape(uint8_features(views), map_shape)},
        input_signature=[frames],
    )
    module.features_float = tf.function(
        lambda views: {contract.FEATURES: features_of(tf.reduce_sum(tf.cast(views, tf.float64), axis=axes))},
        input_signature=[floats],
    )

    def classify(views):
        logits = uint8_features(views)[:, : len(LABELS)] * tf.constant(_LOGIT_SCALE)
        probabilities = tf.nn.softmax(logits)
        top = tf.math.top_k(probabilities, k=top_k)
        return {contract.LOGITS: logits, contract.PROBABILITIES: probabilities, contract.TOP_K_SCORES: top.values,
                contract.TOP_K_CLASSES: tf.cast(top.indices, tf.int32),
                contract.TOP_K_LABELS: tf.gather(labels, top.indices)}  # fmt: skip

    module.classify = tf.function(classify, input_signature=[frames])
    signatures = {contract.SERVING_DEFAULT: module.serving_default, contract.FEATURES_GRAPH: module.features_graph,
                  contract.FEATURES_FLOAT: module.features_float, contract.FEATURE_MAP: module.feature_map,
                  contract.CLASSIFY: module.classify}  # fmt: skip
    if with_metadata:
        preprocessing = preprocessing or (contract.video_preprocessing(clip_len=CLIP[0], size=CLIP[1])
                                          if family == contract.VIDEO else contract.image_preprocessing(IMAGE_SIZE))
        text = json.dumps(serving_metadata(family, preprocessing, view[:-1]))
        module.metadata = tf.function(
            lambda row: {contract.METADATA_OUTPUT: tf.fill(tf.shape(row), tf.constant(text))},
            input_signature=[tf.TensorSpec([None], tf.int32, name=contract.METADATA_INPUT)],
        )
        signatures[contract.METADATA] = module.metadata
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


# -- the tiny exports served -----------------------------------------------------------------------------------

# Preprocessing of the `fake` model: not the contract's defaults, so tests see the client follow the export.
FAKE_PREPROCESSING = contract.video_preprocessing(clip_len=CLIP[0], size=CLIP[1], num_clips=2, num_crops=1)
SSV2_PREPROCESSING = contract.video_preprocessing(clip_len=CLIP[0], size=CLIP[1], sampling="segments", num_clips=1)
MODELS = ("fake", "legacy", "ssv2", "img")


def write_tiny_exports(base: Path) -> Path:
    """BASE/NAME/VERSION: `fake` (video, versions 1 and 2), `legacy` (video, no `metadata` signature), `ssv2`
    (video, segments sampling) and `img` (image, the 224-style evaluation at 32: resize 36, crop 32)."""
    import shutil

    save_tiny_export(base / "fake" / "1", contract.VIDEO, FAKE_PREPROCESSING)
    shutil.copytree(base / "fake" / "1", base / "fake" / "2")
    save_tiny_export(base / "legacy" / "1", contract.VIDEO, with_metadata=False)
    save_tiny_export(base / "ssv2" / "1", contract.VIDEO, SSV2_PREPROCESSING)
    save_tiny_export(base / "img" / "1", contract.IMAGE)
    return base


def tiny_config(base: Path, names: tuple[str, ...] = MODELS):
    """A ModelServerConfig serving `names` from `base`; `fake` serves versions 1 and 2, labelled stable and canary."""
    from vswin.serving.model_config import ModelServerConfig

    config = ModelServerConfig()
    for name in names:
        entry = config.model_config_list.config.add(name=name, base_path=str(base / name), model_platform="tensorflow")
        if name == "fake":
            entry.model_version_policy.specific.versions.extend([1, 2])
            entry.version_labels["stable"] = 1
            entry.version_labels["canary"] = 2
    return config


class TinyServer:
    """vswin serve in this process on 127.0.0.1 serving `config`, with a Faults interceptor; stop() by whoever
    started it.

    XLA stays allowed (TensorFlow's default) unless asked otherwise: the server's switch is process-wide, and a
    server that lives through many tests must not refuse XLA to the in-process models of other tests.
    """

    def __init__(self, config, port: int = 0, **options: object) -> None:
        from tests.faults import Faults
        from vswin.serving.server import ModelServer, ServerOptions

        self.faults = Faults()
        options.setdefault("file_system_poll_wait_seconds", 0)
        options.setdefault("xla_cpu_compilation_enabled", True)
        self.server = ModelServer(ServerOptions(model_config=config, port=port, host="127.0.0.1",
                                                interceptors=[self.faults], **options))  # fmt: skip
        self.port = self.server.start()
        self.target = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.faults.release()
        self.server.stop(grace=1)
