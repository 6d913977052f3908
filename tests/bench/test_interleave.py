"""The interleaved harness: rotated rounds, ratios per round, agreement, failures and the budget.

Workers are replaced by an in-process fake answering the same protocol, so
these tests pin the scheduling and the arithmetic without starting frameworks
(tests/bench/test_bench_model.py runs real workers).
"""

from __future__ import annotations

import pytest

from vswin.bench import interleave
from vswin.bench.arms import KERAS_JAX, KERAS_TF, TORCH, Arm, with_baseline
from vswin.bench.case import Case
from vswin.bench.worker import ArmFailed

CASE = Case("micro", 4, 32, batch=2, weights="w.pth")


class FakeWorkers:
    """Stands in for WorkerProcess: per arm a time per round (or a failure), features, a call log."""

    def __init__(self, times, features=None, fail_prepare=(), die_in_round=None):
        self.times, self.features = times, features or {}
        self.fail_prepare, self.die_in_round = set(fail_prepare), die_in_round or {}
        self.calls: list[tuple[str, str]] = []
        self.rounds: dict[str, int] = {}
        self.sources: dict[str, str | None] = {}

    def __call__(self, name, env, work_dir, source=None):
        fake = self
        fake.sources[name] = source

        class Worker:
            alive = True

            def request(self, message):
                op, arm = message["op"], message.get("arm")
                fake.calls.append((op, arm))
                if op == "prepare":
                    if arm in fake.fail_prepare:
                        raise ArmFailed(f"{arm} cannot run")
                    return {"setup_s": 0.1, "first_call_s": 1.0, "settings": {"environment": env},
                            "features": fake.features.get(arm, [[1.0, 2.0]])}
                if op == "time":
                    index = fake.rounds.get(arm, 0)
                    fake.rounds[arm] = index + 1
                    if fake.die_in_round.get(arm) == index:
                        self.alive = False
                        raise ArmFailed("worker exited with code -11", died=True)
                    return {"times_s": [fake.times[arm][index]] * message["calls"], "user_s": 0.2, "sys_s": 0.1,
                            "minor_faults": 10 * message["calls"]}
                return {}

            def close(self):
                pass

        return Worker()


def arms(*names, kind=KERAS_TF):
    return [Arm(name, kind) for name in names]


def run(monkeypatch, fake, arm_list, plan=None, cases=(CASE,), tmp_path="."):
    monkeypatch.setattr(interleave, "WorkerProcess", fake)
    return interleave.run(arm_list, list(cases), plan or interleave.Plan(rounds=3, warmup=1), tmp_path)


def test_rounds_rotate_the_order_and_speedups_are_medians_of_per_round_ratios(monkeypatch):
    # Round 2 is slow for everyone (drift): per-round ratios stay 2 and 4, whatever the drift.
    fake = FakeWorkers({"a": [1.0, 3.0, 1.0], "b": [0.5, 1.5, 0.5], "c": [0.25, 0.75, 0.25]})
    result = run(monkeypatch, fake, arms("a", "b", "c"))
    timed = [arm for op, arm in fake.calls if op == "time"]
    assert timed == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    (case,) = result["cases"]
    assert case["reference"] == "a" and case["status"] == "ok"
    b, c = case["arms"]["b"], case["arms"]["c"]
    assert b["speedup_vs_reference"] == {"median": 2.0, "min": 2.0, "max": 2.0, "rounds": [2.0, 2.0, 2.0]}
    assert c["speedup_vs_reference"]["median"] == 4.0
    assert b["median_s"] == 0.5 and b["clips_per_s"] == 4.0  # batch 2 / 0.5 s
    assert b["minor_faults_per_call"] == 10 and b["cpu_s_per_call"] == pytest.approx(0.3)


def test_spread_shows_rounds_that_disagree(monkeypatch):
    fake = FakeWorkers({"a": [1.0, 1.0, 1.0], "b": [0.5, 1.0, 0.25]})
    speedup = run(monkeypatch, fake, arms("a", "b"))["cases"][0]["arms"]["b"]["speedup_vs_reference"]
    assert (speedup["median"], speedup["min"], speedup["max"]) == (2.0, 1.0, 4.0)


def test_each_arm_is_timed_against_its_baseline_twin_in_its_own_worker(monkeypatch):
    # a is 2x its baseline in every round, b 1.25x; the slow round 2 (drift) cancels in the ratios.
    paired = with_baseline(arms("a", "b"), "v1", "c0ffee", "/tmp/v1")
    fake = FakeWorkers({"a": [1.0, 2.0, 1.0], "a@v1": [2.0, 4.0, 2.0], "b": [0.8, 1.6, 0.8], "b@v1": [1.0, 2.0, 1.0]})
    case = run(monkeypatch, fake, paired)["cases"][0]
    entries = case["arms"]
    assert entries["a"]["speedup_vs_baseline"]["rounds"] == [2.0, 2.0, 2.0]
    assert entries["b"]["speedup_vs_baseline"]["median"] == pytest.approx(1.25)
    assert "speedup_vs_baseline" not in entries["a@v1"]  # a twin has no baseline of its own
    assert entries["b"]["speedup_vs_reference"]["median"] == pytest.approx(1.25)  # reference: a, the first arm
    assert fake.sources == {"a": None, "a@v1": "/tmp/v1", "b": None, "b@v1": "/tmp/v1"}


def test_agreement_against_the_reference_uses_the_precision_tolerance(monkeypatch):
    fake = FakeWorkers({"a": [1] * 3, "b": [1] * 3, "c": [1] * 3},
                       features={"a": [[1.0, 2.0]], "b": [[1.0, 2.01]], "c": [[1.0, 2.01]]})
    arm_list = [Arm("a", KERAS_TF), Arm("b", KERAS_TF), Arm("c", KERAS_JAX, {"precision": "bfloat16"})]
    entries = run(monkeypatch, fake, arm_list)["cases"][0]["arms"]
    assert entries["a"]["agreement"]["max_abs"] == 0.0
    assert entries["b"]["agreement"]["max_abs"] == pytest.approx(0.01)
    assert not entries["b"]["agreement"]["within_tolerance"]
    assert entries["c"]["agreement"]["within_tolerance"]  # bfloat16 tolerance 5e-2
    assert entries["b"]["agreement"]["max_rel"] == pytest.approx(0.005)


def test_the_original_pytorch_arm_prepares_first_and_writes_the_weights(monkeypatch):
    fake = FakeWorkers({"tf": [1] * 3, "pt": [2] * 3})
    arm_list = [Arm("tf", KERAS_TF), Arm("pt", TORCH)]
    case = run(monkeypatch, fake, arm_list)["cases"][0]
    assert [arm for op, arm in fake.calls if op == "prepare"] == ["pt", "tf"]
    assert case["reference"] == "tf"  # the first listed arm stays the reference


def test_a_crashed_arm_is_recorded_as_failed_and_the_others_go_on(monkeypatch):
    fake = FakeWorkers({"a": [1.0] * 3, "b": [0.5] * 3, "c": [0.5] * 3}, fail_prepare={"c"}, die_in_round={"b": 1})
    case = run(monkeypatch, fake, arms("a", "b", "c"))["cases"][0]
    assert case["status"] == "ok"
    assert case["arms"]["c"] == {"status": "failed", "error": "c cannot run"}
    assert case["arms"]["b"]["status"] == "failed" and "code -11" in case["arms"]["b"]["error"]
    assert case["arms"]["b"]["round_s"] == [0.5]  # what it measured before dying is kept
    assert len(case["arms"]["a"]["round_s"]) == 3


def test_when_the_weights_writer_fails_the_case_fails(monkeypatch):
    fake = FakeWorkers({"a": [1] * 3, "b": [1] * 3}, fail_prepare={"a"})
    case = run(monkeypatch, fake, arms("a", "b"))["cases"][0]
    assert case["status"] == "failed" and "could not write the shared weights" in case["reason"]


def test_when_no_arm_can_run_the_case_fails_and_names_each_arms_error(monkeypatch):
    # An export's arms carry their weights (no shared file to write): each fails on its own.
    fake = FakeWorkers({"a": [1] * 3, "b": [1] * 3}, fail_prepare={"a", "b"})
    case = run(monkeypatch, fake, arms("a", "b"), cases=(Case("export", 4, 32, 1, ""),))["cases"][0]
    assert case["status"] == "failed"
    assert case["reason"] == "no arm could run: a: a cannot run; b: b cannot run"


def test_cases_past_the_budget_are_skipped_and_said_so(monkeypatch):
    fake = FakeWorkers({"a": [1] * 9})
    plan = interleave.Plan(rounds=1, warmup=1, budget_s=1e-9)
    result = run(monkeypatch, fake, arms("a"), plan, cases=(CASE, CASE))
    assert [case["status"] for case in result["cases"]] == ["skipped", "skipped"]
    assert result["cases"][0]["reason"] == "over the time budget"
    assert result["load_average"]["before"] is None or len(result["load_average"]["before"]) == 3


def test_plan_rejects_empty_measurements():
    with pytest.raises(ValueError):
        interleave.Plan(rounds=0)
