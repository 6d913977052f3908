"""The fine-tuning recipe of docs/model.md, run on the micro fixture for a few steps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from vswin.export import export_model
from vswin.model import SwinClassifier

pytestmark = pytest.mark.slow  # trains and exports

CLASSES = ["wave", "clap", "jump"]


def _weights(layer) -> list[np.ndarray]:
    return [np.array(w) for w in layer.get_weights()]


def _changed(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_freeze_train_head_unfreeze_fine_tune_export(tmp_path, micro_checkpoint, micro_arch):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(12, 2, 48, 48, 3), dtype=np.uint8)
    labels = np.arange(12) % len(CLASSES)

    # New classes: the checkpoint's backbone, a new head.
    classifier = SwinClassifier.from_preset(micro_arch, checkpoint=micro_checkpoint, num_classes=len(CLASSES))
    clips = classifier.preprocessor(frames)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Phase 1: frozen backbone, train the head.
    classifier.backbone.trainable = False
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    backbone_before, head_before = _weights(classifier.backbone), _weights(classifier.head)
    history = classifier.fit(clips, labels, batch_size=4, epochs=6, verbose=0)
    assert not _changed(backbone_before, _weights(classifier.backbone))
    assert _changed(head_before, _weights(classifier.head))
    assert history.history["loss"][-1] < history.history["loss"][0]

    # Phase 2: everything trainable at a low learning rate.
    classifier.backbone.trainable = True
    classifier.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    backbone_before = _weights(classifier.backbone)
    classifier.fit(clips, labels, batch_size=4, epochs=1, verbose=0)
    assert _changed(backbone_before, _weights(classifier.backbone))

    # Saved weights come back through from_preset with the new head.
    classifier.save_weights(tmp_path / "finetuned.weights.h5")
    reloaded = SwinClassifier.from_preset(micro_arch, checkpoint=tmp_path / "finetuned.weights.h5",
                                          num_classes=len(CLASSES))
    np.testing.assert_allclose(np.asarray(reloaded(clips[:2])), np.asarray(classifier(clips[:2])), atol=1e-5)

    # Export: the classifier's head serves `classify` with the new label names, and `features`.
    path = export_model(classifier, tmp_path, "finetuned", frames=2, size=(48, 48), batch_sizes=(1,),
                        labels=CLASSES, default_signature="graph")
    loaded = tf.saved_model.load(str(path))
    classified = loaded.signatures["classify"](frames=tf.constant(frames[:2]))
    np.testing.assert_allclose(classified["logits"].numpy(), np.asarray(classifier(clips[:2])), atol=1e-4)
    assert {label.decode() for label in classified["top_k_labels"].numpy().ravel()} <= set(CLASSES)
    features = loaded.signatures["serving_default"](frames=tf.constant(frames[:2]))["features"].numpy()
    np.testing.assert_allclose(features, np.asarray(classifier.extract(clips[:2])["features"]), atol=1e-4)
