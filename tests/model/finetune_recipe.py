"""The fine-tuning recipe of docs/model.md on the micro fixture: `python -m tests.model.finetune_recipe FIXTURES OUT`.

Run by tests/model/test_finetune.py, in a process of its own so that it can run ahead of its test
(tests/prefetch.py). Writes OUT/facts.json (which weights each phase changed, phase 1's losses) and
OUT/outputs.npz (what the test compares: logits and features of the model, its reloaded weights and its
export).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

CLASSES = ["wave", "clap", "jump"]


def _weights(layer) -> list[np.ndarray]:
    return [np.array(w) for w in layer.get_weights()]


def _changed(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def run(fixtures: Path, out: Path) -> None:
    import keras
    import tensorflow as tf

    from vswin.export import export_model
    from vswin.model import SwinClassifier

    arch, checkpoint = fixtures / "vswin_micro_w877.json", fixtures / "vswin_micro_w877.pth"
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(12, 2, 48, 48, 3), dtype=np.uint8)
    labels = np.arange(12) % len(CLASSES)

    # New classes: the checkpoint's backbone, a new head.
    classifier = SwinClassifier.from_preset(arch, checkpoint=checkpoint, num_classes=len(CLASSES))
    clips = classifier.preprocessor(frames)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Phase 1: frozen backbone, train the head.
    classifier.backbone.trainable = False
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    backbone_before, head_before = _weights(classifier.backbone), _weights(classifier.head)
    history = classifier.fit(clips, labels, batch_size=4, epochs=6, verbose=0)
    phase1 = {"backbone_changed": _changed(backbone_before, _weights(classifier.backbone)),
              "head_changed": _changed(head_before, _weights(classifier.head)),
              "loss": [float(value) for value in history.history["loss"]]}  # fmt: skip

    # Phase 2: everything trainable at a low learning rate.
    classifier.backbone.trainable = True
    classifier.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    backbone_before = _weights(classifier.backbone)
    classifier.fit(clips, labels, batch_size=4, epochs=1, verbose=0)
    phase2 = {"backbone_changed": _changed(backbone_before, _weights(classifier.backbone))}

    # Saved weights come back through from_preset with the new head.
    classifier.save_weights(out / "finetuned.weights.h5")
    reloaded = SwinClassifier.from_preset(arch, checkpoint=out / "finetuned.weights.h5", num_classes=len(CLASSES))

    # Export: the classifier's head serves `classify` with the new label names, and `features`.
    path = export_model(classifier, out, "finetuned", frames=2, size=(48, 48), batch_sizes=(1,), labels=CLASSES,
                        default_signature="graph")  # fmt: skip
    loaded = tf.saved_model.load(str(path))
    classified = loaded.signatures["classify"](frames=tf.constant(frames[:2]))
    served = loaded.signatures["serving_default"](frames=tf.constant(frames[:2]))["features"].numpy()
    top_k_labels = np.array([label.decode() for label in classified["top_k_labels"].numpy().ravel()])
    np.savez(out / "outputs.npz", logits=np.asarray(classifier(clips[:2])),
             reloaded_logits=np.asarray(reloaded(clips[:2])), classify_logits=classified["logits"].numpy(),
             top_k_labels=top_k_labels, features=np.asarray(classifier.extract(clips[:2])["features"]),
             served_features=served)  # fmt: skip
    (out / "facts.json").write_text(json.dumps({"classes": CLASSES, "phase1": phase1, "phase2": phase2}))


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
