"""`vswin bench model`'s measurement: the forward pass on every path, interleaved (vswin.bench.interleave).

Two ways to name the arms: model arms from the catalog (vswin.bench.arms:
the original PyTorch code, Keras on TF graph / oneDNN / XLA / XLA options,
Keras on JAX, the export's signatures), all computing the same weights on the
same clips; or existing exports (`--savedmodel`), one arm per signature.
Model arms can time the backbone stage by stage (`stage_list`) and run
beside their twins at a baseline revision (vswin.bench.revision), so that
the gain of a change is read per stage from one interleaved run (`gains`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from vswin import contract
from vswin.bench import machine
from vswin.bench.arms import CPU_TABLE, SAVEDMODEL, TORCH, Arm, parse_arms
from vswin.bench.case import Case


def xla_and_graph(signatures: Sequence[str]) -> tuple[str, str]:
    """The export's XLA and graph forward passes: (serving_default, features_graph) for an XLA-default
    export, (features_xla, serving_default) for a graph-default one."""
    if contract.FEATURES_XLA in signatures:
        return contract.FEATURES_XLA, contract.SERVING_DEFAULT
    if contract.FEATURES_GRAPH in signatures:
        return contract.SERVING_DEFAULT, contract.FEATURES_GRAPH
    raise ValueError(f"no features_graph or features_xla signature (has {sorted(signatures)}): not a vswin export")


def model_arms(names: str | None, original_repo: str | None, torch_compile: bool = False,
               precision: str = "float32") -> list[Arm]:
    """Catalog arms; the default is the CPU table, whose PyTorch rows need `original_repo`."""
    if names is None:
        table = [name for name in CPU_TABLE if original_repo or not name.startswith("pytorch")]
        if torch_compile and original_repo:
            table.insert(1, "pytorch_compile")
        names = ",".join(table)
    arms = []
    for arm in parse_arms(names):
        options = {**arm.options, "precision": precision}
        if arm.kind == TORCH:
            if not original_repo:
                raise ValueError(f"arm {arm.name!r} runs the original PyTorch code: give --original-repo PATH")
            options["original_repo"] = str(original_repo)
        arms.append(dataclasses.replace(arm, options=options))
    return arms


MODEL = "model"  # in a stage list: the whole model


def stage_list(text: str, arch: str) -> list[int | None]:
    """`--stages`: comma-separated stage indices and `model` (None: the whole model), or `all`: every
    stage of `arch` in order, then the model."""
    from vswin.model.presets import get_preset

    count = len(get_preset(arch).backbone["depths"])
    if text.strip() == "all":
        return [*range(count), None]
    stages: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part == MODEL:
            stages.append(None)
        elif part.isdigit() and int(part) < count:
            stages.append(int(part))
        else:
            raise ValueError(f"--stages: {part!r} is not a stage of {arch} (0-{count - 1}), {MODEL!r} or 'all'")
    if len(set(stages)) != len(stages):
        raise ValueError(f"--stages repeats: {text!r}")
    return stages


def savedmodel_arms(directories: Sequence[str], signatures: Sequence[str] | None) -> list[Arm]:
    """One arm per (export, signature), each run with `vswin serve`'s settings; default signatures: the
    export's XLA and graph forward passes. A signature that an export's vswin.json does not list is an
    error here, before any worker starts."""
    arms = []
    for index, directory in enumerate(directories):
        if not (Path(directory) / "saved_model.pb").is_file():
            raise ValueError(f"{directory} is not a SavedModel version directory")
        _check_signatures(directory, signatures or ())
        label = Path(directory).parent.name + "/" + Path(directory).name
        if len(directories) > 1 and len({Path(d).parent.name for d in directories}) < len(directories):
            label = f"{index}:{label}"
        for signature in signatures or (contract.XLA, contract.GRAPH):
            arms.append(Arm(f"{label}:{signature}", SAVEDMODEL, {"savedmodel": str(directory), "signature": signature},
                            dict(contract.SERVING_ENVIRONMENT)))
    return arms


def _check_signatures(directory: str, signatures: Sequence[str]) -> None:
    """ValueError for the first of `signatures` that the export's vswin.json does not list.

    `xla` and `graph` stand for whichever signatures hold those passes; an export without a listing
    (not written by `vswin export`) is left to its worker, which loads it.
    """
    from vswin.bench.transport import missing_signature, read_export_metadata

    listed = (read_export_metadata(directory) or {}).get("signatures")
    if not listed:
        return
    for name in signatures:
        if name not in (contract.XLA, contract.GRAPH) and name not in listed:
            raise missing_signature(directory, name, listed)


def savedmodel_case(directory: str, batch: int, seed: int = 0) -> Case:
    """A case with an export's own geometry (from its vswin.json) and no shared weights (the export has them)."""
    from vswin.bench.transport import read_export_metadata

    meta = read_export_metadata(directory) or {}
    clip = meta.get("clip") or {}
    arch = (meta.get("architecture") or {}).get("name") or meta.get("architecture_name") or "export"
    return Case(arch=arch, frames=int(clip.get("clip_len", 0)), size=int(clip.get("height", 0)), batch=batch,
                weights="", seed=seed)  # fmt: skip


def document(results: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The result file: machine, settings, and the interleaved run's cases."""
    return {"benchmark": "model_interleaved", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine.describe(), "parent_environment": machine.environment(), "settings": settings,
            **results}  # fmt: skip


def table(case_result: dict[str, Any]) -> str:
    """A plain-text table of one case: time, clips/s, speedup (median [min-max]), first call, agreement."""
    lines = [f"{case_result['label']}: {case_result['status']}"
             + (f" ({case_result['reason']})" if case_result.get("reason") else "")]
    if case_result["status"] != "ok":
        lines += [f"  {name}: {entry['error'].strip().splitlines()[0]}"
                  for name, entry in case_result.get("arms", {}).items() if entry.get("error")]  # fmt: skip
        return "\n".join(lines)
    reference = case_result["reference"]
    paired = any("speedup_vs_baseline" in entry for entry in case_result["arms"].values())
    lines.append(f"  {'arm':<28} {'median s':>9} {'clips/s':>8} {'vs ' + str(reference):>24} {'first s':>8} "
                 f"{'max abs diff':>12} {'faults/call':>11}" + (f" {'vs baseline':>22}" if paired else ""))  # fmt: skip
    for name, entry in case_result["arms"].items():
        if "median_s" not in entry:
            lines.append(f"  {name:<28} FAILED: {entry.get('error', '').splitlines()[0] if entry.get('error') else ''}")
            continue
        spread = _spread(entry.get("speedup_vs_reference"))
        diff = entry.get("agreement", {}).get("max_abs")
        flag = "" if entry.get("agreement", {}).get("within_tolerance", True) else " !"
        status = "" if entry["status"] == "ok" else " (failed later)"
        baseline = f" {_spread(entry.get('speedup_vs_baseline'), ''):>22}" if paired else ""
        lines.append(f"  {name:<28} {entry['median_s']:9.3f} {entry['clips_per_s']:8.2f} {spread:>24} "
                     f"{entry['first_call_s']:8.1f} {diff if diff is None else format(diff, '.2e'):>12}{flag} "
                     f"{entry['minor_faults_per_call']:11.0f}{baseline}{status}")  # fmt: skip
    load = case_result["load_average"]
    lines.append(f"  load average before {load['before']}, after {load['after']}")
    return "\n".join(lines)


def _spread(speed: dict[str, Any] | None, missing: str = "-") -> str:
    return f"{speed['median']:.2f}x [{speed['min']:.2f}-{speed['max']:.2f}]" if speed else missing


def gains(cases: list[dict[str, Any]]) -> str:
    """Each arm's gain over its baseline twin, case by case (per stage), as a plain-text table; '' without twins."""
    columns = [case for case in cases if case["status"] == "ok"]
    names = [name for case in columns for name, entry in case["arms"].items() if "speedup_vs_baseline" in entry]
    names = list(dict.fromkeys(names))
    if not names:
        return ""
    several_batches = len({case["case"]["batch"] for case in columns}) > 1
    labels = [(MODEL if case["case"].get("stage") is None else f"stage{case['case']['stage']}")
              + (f" b{case['case']['batch']}" if several_batches else "") for case in columns]  # fmt: skip
    lines = ["gain over the baseline (median of per-round ratios [min-max]):",
             f"  {'arm':<28}" + "".join(f" {label:>20}" for label in labels)]
    for name in names:
        cells = [_spread(case["arms"].get(name, {}).get("speedup_vs_baseline")) for case in columns]
        lines.append(f"  {name:<28}" + "".join(f" {cell:>20}" for cell in cells))
    return "\n".join(lines)
