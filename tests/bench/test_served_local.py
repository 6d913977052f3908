"""The load generator against `vswin serve`'s server (in-process ModelServer) serving the nano export.

Benchmark plumbing, not figures: the nano architecture (tests/conftest.py) compiles in a fraction of the
micro's time on the server's first call of each signature.
"""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import NANO_MODEL_NAME
from vswin.bench.loadgen import LoadSettings, closed_loop
from vswin.bench.payload import ClipPool, random_clips
from vswin.bench.transport import GrpcTransport
from vswin.cli import main

MODEL = NANO_MODEL_NAME
QUICK = ["--measurement-interval-ms", "500", "--max-trials", "3", "--warmup-s", "0.2", "--max-duration-s", "60",
         "--stability-percentage", "100"]  # fmt: skip


@pytest.fixture(scope="module")
def server(nano_export):
    from vswin.serving.model_config import single_model_config
    from vswin.serving.server import ModelServer, ServerOptions

    served = ModelServer(ServerOptions(model_config=single_model_config(MODEL, nano_export), host="127.0.0.1",
                                       port=0, xla_cpu_compilation_enabled=True, enable_model_warmup=False))  # fmt: skip
    served.start()
    yield f"127.0.0.1:{served.port}"
    served.stop(grace=5)


def test_closed_loop_counts_add_up_against_the_server(server, nano_export):
    transport = GrpcTransport(server, MODEL, export_dir=nano_export / "1")
    assert transport.input.clip_shape == (2, 32, 32) and transport.input.dtype == "uint8"
    settings = LoadSettings(batch_size=2, measurement_interval_s=0.5, warmup_s=0.2, max_trials=3, stability_pct=100)
    result = closed_loop(transport, ClipPool(random_clips(transport.input.clip_shape, 4)), 2, settings)
    metadata = transport.metadata()
    transport.close()
    assert result.errors_total == 0 and result.ok_total == result.sent_total > 0
    assert result.requests == result.ok > 0 and result.clips_per_s > 0
    assert result.request_bytes == pytest.approx(2 * 2 * 32 * 32 * 3, rel=0.01)
    assert metadata["version"] == 1 and metadata["feature_dim"] == 48  # nano: two stages, 2 x embed_dim 24
    assert metadata["export"]["clip"]["clip_len"] == 2


@pytest.mark.parametrize("signature", ["feature_map", "classify", "features_graph"])
def test_every_frames_signature_can_be_loaded(server, signature, tmp_path):
    """Signatures without a `features` output are called without an output filter (all outputs)."""
    code = main(["bench", "serve", "--server", server, "--model", MODEL, "--signature", signature,
                 "--concurrency", "1", "--out", str(tmp_path), "--name", "run", "--no-plots", *QUICK])  # fmt: skip
    assert code == 0
    (result,) = json.loads((tmp_path / "run.json").read_text())["results"]
    assert result["errors_total"] == 0 and result["ok_total"] == result["sent_total"] > 0
    with (tmp_path / "run.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["model"], row["version"], row["signature"]) == (MODEL, "1", signature)
    assert row["cores"] and row["tensorflow"] and row["vswin_serving"]
