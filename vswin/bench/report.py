"""A benchmark run's report: a rich table on the terminal, JSON and CSV files, and matplotlib PNG plots."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

from vswin.bench.stats import SettingResult

SCHEMA = "vswin.bench.serve/1"


def run_document(
    results: list[SettingResult],
    machine: dict[str, object],
    target: dict[str, object],
    settings: dict[str, object],
    failed: list[dict[str, object]] = (),
) -> dict[str, object]:
    """Everything a figure needs to be read later: results plus machine, versions, model and settings.

    `failed` lists the settings that produced no result ({mode, value, error}).
    """
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "target": target,
        "settings": settings,
        "results": [jsonable(dataclasses.asdict(r)) for r in results],
        "failed_settings": list(failed),
    }


def context_columns(document: dict[str, object]) -> dict[str, object]:
    """The run's identity as flat CSV columns, so a CSV read alone still says where its figures come from."""
    machine = document.get("machine") or {}
    target = document.get("target") or {}
    packages = machine.get("packages") or {}
    return {
        "created": document.get("created"),
        "model": target.get("model") or target.get("export_dir"),
        "version": target.get("version"),
        "signature": target.get("signature"),
        "transport": target.get("transport"),
        "server_flags": target.get("server_flags"),
        "cpu": machine.get("cpu"),
        "cores": machine.get("cores"),
        "gpus": ";".join(str(g) for g in machine.get("gpus") or []),
        "vswin_serving": packages.get("vswin-serving"),
        "tensorflow": packages.get("tensorflow"),
        "grpcio": packages.get("grpcio"),
        "vswin_commit": machine.get("vswin_commit"),
    }


def jsonable(value: object) -> object:
    """NaN becomes null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write_json(document: dict[str, object], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    return path


def write_csv(results: list[SettingResult], path: Path, context: dict[str, object] | None = None) -> Path:
    """One row per setting, columns as SettingResult.row() (the perf_analyzer-style export), then `context`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{**r.row(), **(context or {})} for r in results]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def table(results: list[SettingResult], title: str = "") -> object:
    """A rich Table of the headline figures per setting."""
    from rich.table import Table

    out = Table(title=title or None)
    columns = (
        "setting", "stable", "requests", "errors", "clips/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms",
        "prep ms", "ser ms", "rtt ms", "queue p99 ms",
    )  # fmt: skip
    for name in columns:
        out.add_column(name, justify="left" if name == "setting" else "right")
    for r in results:
        lat = r.latency_ms
        label = f"c={r.value:g}" if r.mode == "concurrency" else f"rate={r.value:g}/s"
        errors = ", ".join(f"{k}:{v}" for k, v in sorted(r.errors.items())) or "0"
        stable = "yes" if r.stable else f"no ({r.stop_reason})"
        out.add_row(
            f"{label} b={r.batch_size}", stable, str(r.requests), errors, f"{r.clips_per_s:.2f}",
            *(f"{v:.1f}" for v in (lat.p50, lat.p90, lat.p95, lat.p99, lat.max)),
            *(f"{v:.2f}" for v in (r.preprocess_ms, r.serialize_ms, r.round_trip_ms)),
            f"{r.queue_ms.p99:.1f}",
        )  # fmt: skip
    return out


def print_table(results: list[SettingResult], title: str = "") -> None:
    """To the terminal; when piped to a file, wide enough that no column is cut."""
    import sys

    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 220).print(table(results, title))


def plot(results: list[SettingResult], out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """Closed loop: latency percentiles and throughput vs concurrency. Open loop: latency vs offered rate.

    One file per mode, STEM_MODE.png (STEM.png when the stem already ends with the mode).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for mode, xlabel in (("concurrency", "concurrency (requests in flight)"), ("rate", "offered rate (requests/s)")):
        rows = sorted((r for r in results if r.mode == mode), key=lambda r: r.value)
        if not rows:
            continue
        x = [r.value for r in rows]
        fig, (ax_lat, ax_tput) = plt.subplots(1, 2, figsize=(11, 4.2))
        for name in ("p50", "p90", "p95", "p99"):
            ax_lat.plot(x, [getattr(r.latency_ms, name) for r in rows], marker="o", label=name)
        if mode == "rate":
            ax_lat.plot(x, [r.queue_ms.p99 for r in rows], marker="x", linestyle="--", label="client queue p99")
        ax_lat.set(xlabel=xlabel, ylabel="latency (ms)", title="latency")
        ax_lat.legend()
        ax_lat.grid(alpha=0.3)
        ax_tput.plot(x, [r.clips_per_s for r in rows], marker="o", color="tab:green", label="clips/s answered")
        if mode == "rate":
            batch = rows[0].batch_size
            ax_tput.plot(x, [v * batch for v in x], linestyle=":", color="gray", label="clips/s offered")
        ax_tput.set(xlabel=xlabel, ylabel="clips/s", title="throughput")
        ax_tput.legend()
        ax_tput.grid(alpha=0.3)
        fig.suptitle(title or stem)
        fig.tight_layout()
        path = out_dir / (f"{stem}.png" if stem.endswith(f"_{mode}") else f"{stem}_{mode}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_all(
    results: list[SettingResult], document: dict[str, object], out_dir: Path, stem: str, title: str = "",
    plots: bool = True,
) -> list[Path]:  # fmt: skip
    """JSON under out_dir, named after `stem`; with results also the CSV and (unless `plots` is off) the plots."""
    paths = [write_json(document, out_dir / f"{stem}.json")]
    if not results:  # every setting failed: the JSON's failed_settings says why
        return paths
    paths.append(write_csv(results, out_dir / f"{stem}.csv", context_columns(document)))
    return paths + (plot(results, out_dir, stem, title) if plots else [])
