"""The fine-tuning recipe of docs/model.md, run on the micro fixture for a few steps (tests/model/finetune_recipe.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import prefetch
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow  # trains and exports

# The recipe in a process of its own, ahead of its test (tests/prefetch.py).
prefetch.register("finetuned", lambda work: [sys.executable, "-m", "tests.model.finetune_recipe", str(FIXTURES),
                                             str(work)])  # fmt: skip


@pytest.fixture()
def finetuned(prefetched, fixtures_dir) -> tuple[dict, dict[str, np.ndarray]]:
    """What the recipe did (facts.json) and what it computed (outputs.npz)."""
    finished = prefetched.result("finetuned")
    assert finished.returncode == 0, finished.stderr[-3000:]
    work: Path = prefetched.jobs["finetuned"].work
    with np.load(work / "outputs.npz") as outputs:
        return json.loads((work / "facts.json").read_text()), {key: outputs[key] for key in outputs.files}


def test_freeze_train_head_unfreeze_fine_tune_export(finetuned):
    facts, outputs = finetuned
    # Phase 1: frozen backbone, train the head.
    phase1 = facts["phase1"]
    assert not phase1["backbone_changed"]
    assert phase1["head_changed"]
    assert phase1["loss"][-1] < phase1["loss"][0]

    # Phase 2: everything trainable at a low learning rate.
    assert facts["phase2"]["backbone_changed"]

    # Saved weights come back through from_preset with the new head.
    np.testing.assert_allclose(outputs["reloaded_logits"], outputs["logits"], atol=1e-5)

    # Export: the classifier's head serves `classify` with the new label names, and `features`.
    np.testing.assert_allclose(outputs["classify_logits"], outputs["logits"], atol=1e-4)
    assert set(outputs["top_k_labels"]) <= set(facts["classes"])
    np.testing.assert_allclose(outputs["served_features"], outputs["features"], atol=1e-4)
