"""Every arm of a model benchmark measured in one run, interleaved, so that the ratios cannot mislead.

For each case every arm is prepared in its worker (the first call, which
compiles, is timed apart), its features are compared with the reference
arm's, and then the arms are timed in rounds: each round calls every arm in
turn, in an order rotated by one per round, so no arm always runs first or
after the same neighbour. Machine drift (other jobs, thermal state) hits all
arms of a round alike; the reported speedup of an arm is the median of its
per-round speedups over the reference (reference time / arm time), with the
spread (min, max) beside it. An arm that fails (an error, a crashed worker)
is recorded as failed with its message, and the others go on.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vswin.bench import machine
from vswin.bench.arms import KERAS_JAX, KERAS_TF, SAVEDMODEL, Arm
from vswin.bench.case import Case
from vswin.bench.worker import ArmFailed, WorkerProcess

log = logging.getLogger(__name__)

_BACKEND_OF_KIND = {KERAS_TF: "tensorflow", SAVEDMODEL: "tensorflow", KERAS_JAX: "jax"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to measure: rounds per case, timed calls per arm per round, untimed warmup calls, budget."""

    rounds: int = 5
    calls: int = 1
    warmup: int = 2
    tolerance: float = 1e-3  # max abs difference of a float32 arm's features from the reference arm's
    bfloat16_tolerance: float = 5e-2  # the same for bfloat16 arms (the export's bf16 error is ~1e-2)
    reference: str | None = None  # default: the first arm that prepared
    budget_s: float | None = None  # stop starting rounds and cases past this many seconds
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # added to every worker's environment

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.calls < 1 or self.warmup < 1:
            raise ValueError(f"rounds, calls and warmup must be >= 1, got {self.rounds}, {self.calls}, {self.warmup}")


def worker_env(arm: Arm, plan: Plan) -> dict[str, str]:
    """The environment an arm's worker is started with: the plan's, the Keras backend, the arm's own."""
    env = dict(plan.env)
    if arm.kind in _BACKEND_OF_KIND:
        env["KERAS_BACKEND"] = _BACKEND_OF_KIND[arm.kind]
    env.update(arm.env)
    return env


def check_workers(arms: list[Arm], plan: Plan) -> None:
    """Arms that share a worker must agree on its environment (a process has one)."""
    seen: dict[str, dict[str, str]] = {}
    for arm in arms:
        env = worker_env(arm, plan)
        if seen.setdefault(arm.worker, env) != env:
            raise ValueError(f"arms sharing worker {arm.worker!r} need the same environment: "
                             f"{seen[arm.worker]} vs {env} ({arm.name})")  # fmt: skip


def run(arms: list[Arm], cases: list[Case], plan: Plan, work_dir: Path,
        on_result: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Measure `cases` with `arms`; the report's `cases` hold one entry per case (run, failed or skipped)."""
    check_workers(arms, plan)
    started = time.monotonic()
    deadline = started + plan.budget_s if plan.budget_s else None
    workers: dict[str, WorkerProcess] = {}
    results, load_before = [], machine.load_average()
    try:
        for case in cases:
            if deadline is not None and not _fits(case, results, deadline):
                results.append({"case": case.to_dict(), "label": case.label, "status": "skipped",
                                "reason": "over the time budget"})  # fmt: skip
                log.warning("%s: skipped, over the time budget", case.label)
                continue
            result = _run_case(arms, case, plan, workers, Path(work_dir), deadline)
            results.append(result)
            if on_result:
                on_result(result)
    finally:
        for worker in workers.values():
            worker.close()
    return {
        "load_average": {"before": load_before, "after": machine.load_average()},
        "wall_s": round(time.monotonic() - started, 1),
        "plan": dataclasses.asdict(plan),
        "arms": [arm.to_dict() | {"worker_env": worker_env(arm, plan)} for arm in arms],
        "cases": results,
    }


def _fits(case: Case, done: list[dict], deadline: float) -> bool:
    """Whether a case like `case` (same arch, scaled by batch) finished within the time left, if one ran."""
    similar = [r for r in done if r.get("status") == "ok" and r["case"]["arch"] == case.arch]
    if not similar:
        return time.monotonic() < deadline
    last = similar[-1]
    estimate = last["wall_s"] * max(1.0, case.batch / last["case"]["batch"])
    return time.monotonic() + estimate < deadline


def _writer_first(arms: list[Arm]) -> list[Arm]:
    """The arm that writes the shared weights first: the original PyTorch arm if there is one."""
    writer = next((arm for arm in arms if arm.writes_original_weights), arms[0])
    return [writer] + [arm for arm in arms if arm is not writer]


def _worker(arm: Arm, plan: Plan, workers: dict[str, WorkerProcess], work_dir: Path) -> WorkerProcess:
    worker = workers.get(arm.worker)
    if worker is None or not worker.alive:
        worker = workers[arm.worker] = WorkerProcess(arm.worker, worker_env(arm, plan), work_dir)
    return worker


def _run_case(arms: list[Arm], case: Case, plan: Plan, workers: dict[str, WorkerProcess], work_dir: Path,
              deadline: float | None) -> dict[str, Any]:
    started = time.monotonic()
    load_before = machine.load_average()
    entries: dict[str, dict[str, Any]] = {arm.name: {"status": "failed"} for arm in arms}
    features: dict[str, np.ndarray] = {}
    order = _writer_first(arms)
    for index, arm in enumerate(order):
        writes = index == 0 and bool(case.weights)  # exports of --savedmodel carry their own weights
        try:
            reply = _worker(arm, plan, workers, work_dir).request({
                "op": "prepare", "arm": arm.name, "kind": arm.kind, "options": arm.options, "case": case.to_dict(),
                "write_weights": writes, "warmup": plan.warmup,
            })  # fmt: skip
        except ArmFailed as err:
            entries[arm.name]["error"] = str(err)
            log.error("%s %s: failed to prepare: %s", case.label, arm.name, err)
            if writes:  # no shared weights: nothing else can run this case
                return _failed(case, f"{arm.name} could not write the shared weights: {_first_line(err)}", entries)
            continue
        features[arm.name] = np.asarray(reply.pop("features"), dtype=np.float64)
        entries[arm.name] = {"status": "ok", **{k: reply[k] for k in ("setup_s", "first_call_s", "settings")}}
        log.info("%s %s: ready (build %.1f s, first call %.1f s)", case.label, arm.name, reply["setup_s"],
                 reply["first_call_s"])

    ready = [arm for arm in arms if entries[arm.name]["status"] == "ok"]
    if not ready:
        return _failed(case, "no arm could run: " + "; ".join(
            f"{name}: {_first_line(entry.get('error', ''))}" for name, entry in entries.items()), entries)
    reference = plan.reference if plan.reference in features else (ready[0].name if ready else None)
    for arm in ready:
        bfloat16 = arm.options.get("precision") == "bfloat16"
        entries[arm.name]["agreement"] = agreement(features[arm.name], features[reference],
                                                   plan.bfloat16_tolerance if bfloat16 else plan.tolerance)

    rounds: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in ready}
    for round_index in range(plan.rounds):
        live = [arm for arm in ready if entries[arm.name]["status"] == "ok"]
        if not live:
            break
        round_started = time.monotonic()
        for arm in live[round_index % len(live):] + live[: round_index % len(live)]:
            try:
                measured = workers[arm.worker].request({"op": "time", "arm": arm.name, "calls": plan.calls})
            except ArmFailed as err:
                entries[arm.name].update(status="failed", error=str(err))
                log.error("%s %s: failed in round %d: %s", case.label, arm.name, round_index + 1, err)
                continue
            rounds[arm.name].append({"round": round_index, **measured})
        log.info("%s: round %d/%d in %.1f s", case.label, round_index + 1, plan.rounds,
                 time.monotonic() - round_started)
        if deadline is not None and time.monotonic() + (time.monotonic() - round_started) > deadline:
            log.warning("%s: stopping after %d rounds, over the time budget", case.label, round_index + 1)
            break
    for arm in ready:
        worker = workers.get(arm.worker)
        if worker is not None and worker.alive:
            try:
                worker.request({"op": "release", "arm": arm.name})
            except ArmFailed:
                pass

    summarize(entries, rounds, reference, case.batch)
    return {"case": case.to_dict(), "label": case.label, "status": "ok", "reference": reference,
            "load_average": {"before": load_before, "after": machine.load_average()},
            "wall_s": round(time.monotonic() - started, 1), "arms": entries}  # fmt: skip


def _failed(case: Case, reason: str, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"case": case.to_dict(), "label": case.label, "status": "failed", "reason": reason, "arms": entries}


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def agreement(values: np.ndarray, reference: np.ndarray, tolerance: float) -> dict[str, Any]:
    """Max abs and relative (to the reference's largest magnitude) difference, and whether within tolerance."""
    if values.shape != reference.shape:
        return {"max_abs": None, "max_rel": None, "within_tolerance": False,
                "error": f"shape {list(values.shape)} vs reference {list(reference.shape)}"}  # fmt: skip
    difference = float(np.abs(values - reference).max())
    scale = float(np.abs(reference).max()) or 1.0
    return {"max_abs": difference, "max_rel": difference / scale, "tolerance": tolerance,
            "within_tolerance": difference <= tolerance}  # fmt: skip


def summarize(entries: dict[str, dict[str, Any]], rounds: dict[str, list[dict[str, Any]]],
              reference: str | None, batch: int) -> None:
    """Per arm: median/min of its round times, clips/s, and the median and spread of per-round speedups."""
    per_round = {name: {r["round"]: statistics.median(r["times_s"]) for r in measured}
                 for name, measured in rounds.items()}  # fmt: skip
    for name, measured in rounds.items():
        if not measured:
            continue
        times = list(per_round[name].values())
        calls = sum(len(r["times_s"]) for r in measured)
        entry = entries[name]
        entry.update({
            "round_s": times, "median_s": statistics.median(times), "min_s": min(times),
            "clips_per_s": batch / statistics.median(times),
            "cpu_s_per_call": sum(r["user_s"] + r["sys_s"] for r in measured) / calls,
            "sys_s_per_call": sum(r["sys_s"] for r in measured) / calls,
            "minor_faults_per_call": sum(r["minor_faults"] for r in measured) / calls,
            "worker_peak_rss_mib": max(r.get("peak_rss_mib", 0) for r in measured),
        })  # fmt: skip
        if reference is not None and per_round.get(reference):
            base = per_round[reference]
            speedups = [base[i] / per_round[name][i] for i in per_round[name] if i in base]
            if speedups:
                entry["speedup_vs_reference"] = {"median": statistics.median(speedups), "min": min(speedups),
                                                 "max": max(speedups), "rounds": speedups}  # fmt: skip
