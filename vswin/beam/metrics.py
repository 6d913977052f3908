"""The pipeline's Beam metrics (namespace `vswin`) and the end-of-job summary printed from them."""

from __future__ import annotations

import threading

from apache_beam.metrics.metric import Metrics, MetricsFilter

NAMESPACE = "vswin"

# The names say videos; they count every file, images included.
VIDEOS_OK = "videos_ok"
VIDEOS_FAILED = "videos_failed"
VIDEOS_SKIPPED = "videos_skipped"  # already in the output (--skip-existing)
CLIPS = "clips"  # views of the files written (clips x crops, frames, 1 per image), as the results' num_clips count
BYTES_READ = "bytes_read"  # file bytes copied from a remote filesystem to decode
BYTES_SENT = "bytes_sent"  # uint8 pixels handed to the model (Predict payloads in remote mode)
REQUESTS = "requests"  # inference batches
DECODE_SETUPS = "decode_setups"  # model geometry looked up: once per worker process
MODEL_SETUPS = "model_setups"  # channels opened / models loaded: once per worker process (or per shared copy)

ORDER = (VIDEOS_OK, VIDEOS_FAILED, VIDEOS_SKIPPED, CLIPS, BYTES_READ, BYTES_SENT, REQUESTS, DECODE_SETUPS,
         MODEL_SETUPS)


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class FirstUse:
    """True exactly once: lets a shared object's first user count one setup.

    Metrics only count inside a bundle, not in DoFn.setup or in the loader Beam
    calls there, so the setup is counted when the object is first used.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used = False

    def __call__(self) -> bool:
        with self._lock:
            first, self._used = not self._used, True
        return first


def query(result) -> dict[str, int]:
    """The pipeline's `vswin` counters (committed values where the runner has them), summed over steps."""
    totals = dict.fromkeys(ORDER, 0)
    for item in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = item.committed if item.committed is not None else item.attempted
        totals[item.key.metric.name] = totals.get(item.key.metric.name, 0) + int(value or 0)
    return totals


def summary(totals: dict[str, int], seconds: float) -> str:
    """One line for the end of `vswin beam`."""
    rate = max(seconds, 1e-9)
    return (
        f"vswin beam: {totals[VIDEOS_OK]} files written, {totals[VIDEOS_FAILED]} failed, "
        f"{totals[VIDEOS_SKIPPED]} skipped (already in the output); {totals[CLIPS]} views, "
        f"{totals[BYTES_SENT] / 1e6:.1f} MB sent in {totals[REQUESTS]} requests; "
        f"setups: {totals[DECODE_SETUPS]} decode, {totals[MODEL_SETUPS]} model; "
        f"{seconds:.1f}s ({totals[VIDEOS_OK] / rate:.2f} files/s, {totals[CLIPS] / rate:.1f} views/s)"
    )
