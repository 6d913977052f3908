"""Which warmup requests an export writes, and how the export's log names them."""

from __future__ import annotations

from vswin.export.warmup import describe_plan, warmup_plan

VIDEO = ["serving_default", "features_graph", "feature_map", "classify"]


def test_serving_default_at_every_size_the_others_once_at_the_smallest():
    assert warmup_plan(VIDEO, (4, 1, 2, 2)) == [
        ("serving_default", 1), ("serving_default", 2), ("serving_default", 4),
        ("features_graph", 1), ("feature_map", 1), ("classify", 1),
    ]  # fmt: skip


def test_the_log_groups_signatures_by_their_batch_sizes():
    assert describe_plan(warmup_plan(VIDEO, (1, 2))) == (
        "serving_default at batch sizes 1,2, features_graph, feature_map, classify at 1")
    assert describe_plan(warmup_plan(["serving_default"], (1, 2, 4, 8))) == "serving_default at batch sizes 1,2,4,8"
    assert describe_plan(warmup_plan(["serving_default", "classify"], (1,))) == "serving_default, classify at 1"
