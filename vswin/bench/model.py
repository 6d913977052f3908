"""In-process timing of an export's signatures (XLA vs graph), per batch size and precision.

The signatures under comparison are called alternately (A B A B ...) on the
same inputs, so machine drift hits both alike; ratios are taken between
medians of one run. No server and no gRPC: this is the model's own cost.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from vswin import contract
from vswin.bench.transport import SavedModelTransport


def xla_and_graph(signatures: Sequence[str]) -> tuple[str, str]:
    """The export's XLA and graph forward passes: (serving_default, features_graph) for an XLA-default
    export, (features_xla, serving_default) for a graph-default one."""
    if contract.FEATURES_XLA in signatures:
        return contract.FEATURES_XLA, contract.SERVING_DEFAULT
    if contract.FEATURES_GRAPH in signatures:
        return contract.SERVING_DEFAULT, contract.FEATURES_GRAPH
    raise ValueError(f"no features_graph or features_xla signature (has {sorted(signatures)}): not a vswin export")


def _inputs(transport: SavedModelTransport, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch, *transport.input.clip_shape, 3)
    if transport.input.dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.normal(size=shape).astype(transport.input.dtype)


def time_export(export_dir: str | Path, signatures: Sequence[str],
                batch_sizes: Sequence[int] = contract.ALLOWED_BATCH_SIZES, iters: int = 10, warmup: int = 2) -> list[dict]:
    """One row per (signature, batch size): latency percentiles in ms and clips/s, after warmup."""
    transports = [SavedModelTransport(export_dir, name) for name in signatures]
    rng = np.random.default_rng(0)
    rows = []
    try:
        for batch in batch_sizes:
            inputs = {t.signature: _inputs(t, batch, rng) for t in transports}
            first_call = {}
            for transport in transports:
                start = time.perf_counter()
                for _ in range(warmup):
                    transport.send(inputs[transport.signature])
                first_call[transport.signature] = time.perf_counter() - start
            latencies: dict[str, list[float]] = {t.signature: [] for t in transports}
            for i in range(iters):
                order = transports if i % 2 == 0 else transports[::-1]
                for transport in order:
                    timings = transport.send(inputs[transport.signature])
                    latencies[transport.signature].append(
                        timings.serialize_s + timings.round_trip_s + timings.deserialize_s)
            for name, values in latencies.items():
                ms = sorted(v * 1e3 for v in values)
                median = statistics.median(ms)
                rows.append({
                    "signature": name, "batch_size": batch, "iters": iters,
                    "warmup_s": round(first_call[name], 3),
                    "latency_ms": {"p50": median, "p90": ms[min(len(ms) - 1, int(0.9 * len(ms)))],
                                   "min": ms[0], "max": ms[-1]},
                    "clips_per_s": batch / (median / 1e3),
                })
    finally:
        for transport in transports:
            transport.close()
    return rows


def ratios(rows: list[dict], baseline: str, candidate: str) -> dict[str, float]:
    """Per batch size: baseline median latency / candidate median latency (>1: candidate faster)."""
    by_key = {(row["signature"], row["batch_size"]): row["latency_ms"]["p50"] for row in rows}
    return {
        str(batch): by_key[(baseline, batch)] / by_key[(candidate, batch)]
        for (signature, batch) in by_key
        if signature == candidate and (baseline, batch) in by_key
    }
