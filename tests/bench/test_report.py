"""Result files: JSON with machine and settings, CSV per setting, PNG plots, the terminal table."""

from __future__ import annotations

import csv
import json

import pytest

from vswin.bench import machine, report
from vswin.bench.loadgen import LoadSettings, closed_loop, open_loop
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import FakeTransport

from tests.bench.virtual_clock import VirtualClock

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results():
    """Two closed-loop and two open-loop settings against a fake endpoint on a virtual clock (no real waits)."""
    clock = VirtualClock()
    transport = FakeTransport(latency=lambda i: 0.003, error=lambda i: "UNAVAILABLE" if i % 11 == 0 else None,
                              sleep=clock.sleep, now=clock.now)  # fmt: skip
    pool = ClipPool(random_clips((2, 8, 8)))
    settings = LoadSettings(measurement_interval_s=0.2, warmup_s=0.05, max_trials=3, stability_pct=100)
    return [closed_loop(transport, pool, c, settings, clock) for c in (1, 2)] + [
        open_loop(transport, pool, r, settings, clock=clock) for r in (50.0, 100.0)
    ]


def test_files_are_valid_and_record_machine_settings_and_target(results, tmp_path):
    document = report.run_document(results, machine.describe(), {"transport": "fake"}, {"batch_size": 1})
    paths = report.write_all(results, document, tmp_path, "fake", "fake endpoint")
    names = sorted(p.name for p in paths)
    assert names == ["fake.csv", "fake.json", "fake_concurrency.png", "fake_rate.png"]

    loaded = json.loads((tmp_path / "fake.json").read_text())
    assert loaded["schema"] == report.SCHEMA
    assert loaded["machine"]["cores"] >= 1 and "numpy" in loaded["machine"]["packages"]
    assert loaded["target"] == {"transport": "fake"} and loaded["settings"] == {"batch_size": 1}
    assert [r["value"] for r in loaded["results"]] == [1, 2, 50.0, 100.0]
    first = loaded["results"][0]
    assert first["latency_ms"]["p99"] >= first["latency_ms"]["p50"] > 0
    assert first["errors"] == {"UNAVAILABLE": first["errors"]["UNAVAILABLE"]}

    with (tmp_path / "fake.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {"latency_p95_ms", "clips_per_s", "errors_by_code", "serialize_ms", "queue_p99_ms"} <= set(rows[0])
    assert int(rows[0]["requests"]) == int(rows[0]["ok"]) + int(rows[0]["errors"])

    for name in ("fake_concurrency.png", "fake_rate.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_missing_values_become_json_null(results, tmp_path):
    clock = VirtualClock()
    transport = FakeTransport(latency=lambda i: 0.001, error=lambda i: "INTERNAL", sleep=clock.sleep, now=clock.now)
    settings = LoadSettings(measurement_interval_s=0.1, warmup_s=0.0, max_trials=3, stability_pct=100)
    failed = closed_loop(transport, ClipPool(random_clips((2, 4, 4))), 1, settings, clock)
    document = report.run_document([failed], {}, {}, {})
    report.write_json(document, tmp_path / "failed.json")
    loaded = json.loads((tmp_path / "failed.json").read_text())
    assert loaded["results"][0]["ok"] == 0 and loaded["results"][0]["latency_ms"]["p50"] is None


def test_table_has_one_row_per_setting(results):
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(report.table(results, "t"))
    text = console.export_text()
    assert "c=1 b=1" in text and "rate=100/s b=1" in text and "UNAVAILABLE" in text


def test_machine_is_collected_once():
    assert machine.describe() is machine.describe()
    assert machine.describe()["cpu"]
