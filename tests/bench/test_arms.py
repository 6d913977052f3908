"""Benchmark arms: catalog names with variants, and the process setting each arm's worker gets."""

from __future__ import annotations

import pytest

from vswin import contract
from vswin.bench.arms import CATALOG, TORCH, Arm, parse_arm, parse_arms
from vswin.bench.interleave import Plan, check_workers, worker_env


def test_variants_add_environment_and_make_a_separate_worker():
    arm = parse_arm("tf_onednn+bfc+malloc")
    assert arm.env["TF_ENABLE_ONEDNN_OPTS"] == "1" and arm.env["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert any(key.startswith("MALLOC_") for key in arm.env)
    assert arm.worker == "tf_onednn+bfc+malloc" != parse_arm("tf_onednn").worker
    assert "TF_CPU_ALLOCATOR_USE_BFC" not in CATALOG["tf_onednn"].env  # the catalog entry is untouched


def test_graph_arms_pin_onednn_and_export_arms_run_the_serving_environment():
    assert parse_arm("tf_graph").env["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert parse_arm("tf_onednn").env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert parse_arm("export_graph").env == contract.SERVING_ENVIRONMENT
    assert "--xla_cpu_use_onednn=true" in parse_arm("tf_xla_onednn").env["XLA_FLAGS"]


@pytest.mark.parametrize("text, message", [
    ("tf_nope", "unknown arm 'tf_nope'"), ("tf_xla+turbo", "unknown variant 'turbo'"),
    ("tf_xla,tf_xla", "arms repeat"), (",", "no arms"),
])  # fmt: skip
def test_bad_arm_lists_are_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_arms(text)


def test_each_worker_runs_its_keras_backend_and_the_arm_env_wins_over_the_plan():
    plan = Plan(env={"OMP_NUM_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert worker_env(parse_arm("jax_jit"), plan)["KERAS_BACKEND"] == "jax"
    graph = worker_env(parse_arm("tf_graph"), plan)
    assert graph["KERAS_BACKEND"] == "tensorflow" and graph["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert graph["OMP_NUM_THREADS"] == "2"
    assert "KERAS_BACKEND" not in worker_env(parse_arm("pytorch"), plan)


def test_arms_sharing_a_worker_must_share_its_environment():
    same = [Arm("a", TORCH, {"precision": "float32"}, worker="w"),
            Arm("b", TORCH, {"precision": "bfloat16"}, worker="w")]
    check_workers(same, Plan())
    clash = [Arm("a", TORCH, worker="w"), Arm("b", TORCH, env={"XLA_FLAGS": "--x"}, worker="w")]
    with pytest.raises(ValueError, match="sharing worker 'w'"):
        check_workers(clash, Plan())


def test_unknown_kind_or_precision_is_refused():
    with pytest.raises(ValueError, match="kind"):
        Arm("x", "onnx")
    with pytest.raises(ValueError, match="precision"):
        Arm("x", TORCH, {"precision": "int8"})
