"""Cold vs warm `vswin serve` start with the persistent XLA compilation cache (`--xla_cache_dir`).

    python benchmarks/server_start.py --arch swin_tiny_patch244_window877_kinetics400_1k --frames 32 --size 224 \
        --out benchmarks/results/server_start_swin_tiny_cpu.json
    python benchmarks/server_start.py --model-base models/swin_tiny_k400 --out server_start.json

Starts `vswin serve` on one export with XLA warmup (batch sizes 1,2,4,8 when the
script exports it; whatever the export has otherwise), `--rounds` times each way:
cold with a fresh empty cache directory (every XLA program is compiled and
written), warm with the first round's filled directory (programs are read back).
The order alternates per round (cold first, then warm first), and the ratio is
the median of the per-round warm/cold ratios, with their spread. Each start is
timed from process launch until GetModelStatus says AVAILABLE, which includes
TensorFlow's import, the SavedModel load and the warmup replay; the replay's own
seconds come from the server's log, so the JSON shows where a start goes. The
servers run with TensorFlow's persistor log on, so the JSON counts the programs
each start took from the cache (`cache_hits`) next to the ones it compiled and
wrote (`cache_written`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vswin import contract  # noqa: E402
from vswin.bench.machine import describe  # noqa: E402

HIT_LINE = "Loading cached entry for"  # TensorFlow's device_executable_persistor, at VLOG 1
CACHE_REPORT = re.compile(r"XLA compilation cache .*")
WARMUP_REPLAYED = re.compile(r"replayed (\d+) warmup records in ([0-9.]+) s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def export_random(args: argparse.Namespace, workdir: Path) -> tuple[Path, float]:
    """Export the architecture with random weights, XLA serving_default and warmup for every batch size of the plan."""
    started = time.monotonic()
    command = [sys.executable, "-m", "vswin", "export", "--random-weights", "--arch", args.arch, "--out",
               str(workdir / "models"), "--name", "model", "--version", "1", "--frames", str(args.frames),
               "--size", str(args.size), "--batch-sizes", args.batch_sizes,
               # XLA as serving_default whatever `auto` would pick here: the XLA programs warmup compiles are
               # what the cache is for (a graph default compiles nothing at start).
               "--default-signature", "xla"]  # fmt: skip
    subprocess.run(command, check=True, env=_env(), stdout=subprocess.DEVNULL)
    return workdir / "models" / "model", time.monotonic() - started


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def wait_available(port: int, model: str, process: subprocess.Popen, timeout: float) -> None:
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"vswin serve exited with {process.returncode} before the model was available")
            try:
                response = stub.GetModelStatus(request, timeout=5)
                if any(status.state == available for status in response.model_version_status):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"model {model} not available after {timeout:.0f} s")


def start_once(model_base: Path, model: str, cache: Path, log_path: Path, timeout: float) -> dict:
    """One server start: seconds until AVAILABLE, and what it took from and wrote to the cache."""
    port = free_port()
    before = {entry.name for entry in cache.glob("*.pb")}
    env = _env()
    env.update(TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_executable_persistor=1")
    command = [sys.executable, "-m", "vswin", "serve", f"--port={port}", "--host=127.0.0.1",
               f"--model_name={model}", f"--model_base_path={model_base}", "--xla_cpu_compilation_enabled=true",
               f"--xla_cache_dir={cache}", "--file_system_poll_wait_seconds=0"]  # fmt: skip
    started = time.monotonic()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        wait_available(port, model, process, timeout)
        seconds = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log_path.read_text(errors="replace")
    after = {entry.name for entry in cache.glob("*.pb")}
    report = CACHE_REPORT.search(text)
    replayed = WARMUP_REPLAYED.search(text)
    return {
        "seconds_to_available": round(seconds, 3),
        "warmup_records": int(replayed.group(1)) if replayed else None,
        "warmup_seconds": float(replayed.group(2)) if replayed else None,
        "cache_entries_before": len(before),
        "cache_written": len(after - before),
        "cache_hits": text.count(HIT_LINE),
        "server_cache_report": report.group(0) if report else None,
        "log": str(log_path),
    }


def summarize(rounds: list[dict], kind: str) -> dict:
    """One kind of start over the rounds: median times, and the cache counts of the first round."""
    summary = {key: statistics.median(r[kind][key] for r in rounds) for key in ("seconds_to_available", "warmup_seconds")
               if all(r[kind][key] is not None for r in rounds)}  # fmt: skip
    for key in ("cache_entries_before", "cache_written", "cache_hits", "warmup_records", "server_cache_report"):
        summary[key] = rounds[0][kind][key]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-base", type=Path, help="an export's model base path (holding version directories)")
    source.add_argument("--arch", help="export this preset (or JSON) with random weights first")
    parser.add_argument("--frames", type=int, default=contract.CLIP_LEN, help="clip length when exporting")
    parser.add_argument("--size", type=int, default=contract.CROP_SIZE, help="crop size when exporting")
    plan = ",".join(map(str, contract.ALLOWED_BATCH_SIZES))
    parser.add_argument("--batch-sizes", default=plan, help=f"warmup batch sizes when exporting (default {plan})")
    parser.add_argument("--rounds", type=int, default=3, help="cold and warm starts each (default 3)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one start may take (default 3600)")
    parser.add_argument("--workdir", type=Path, help="keep the export, cache and logs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vswin-server-start-"))
    workdir.mkdir(parents=True, exist_ok=True)
    export_seconds = None
    if args.arch:
        model_base, export_seconds = export_random(args, workdir)
    else:
        model_base = args.model_base.resolve()
    metadata_path = next(iter(sorted(model_base.glob(f"*/{contract.ASSETS_EXTRA}/{contract.METADATA_FILE}"))), None)
    metadata = json.loads(metadata_path.read_text()) if metadata_path else {}
    caches = [workdir / f"xla_cache_{index}" for index in range(args.rounds)]
    for cache in caches:
        if cache.exists() and any(cache.iterdir()):
            raise SystemExit(f"{cache} is not empty: a cold start needs an empty cache directory")
        cache.mkdir(exist_ok=True)
    model = model_base.name
    rounds = []
    for index, cache in enumerate(caches):
        starts = {}
        # Round 0 fills caches[0] cold, then reads it warm; later rounds alternate which start goes first.
        for kind in ("cold", "warm") if index % 2 == 0 else ("warm", "cold"):
            directory = cache if kind == "cold" else caches[0]
            starts[kind] = start_once(model_base, model, directory, workdir / f"{kind}_{index}.log", args.timeout)
            print(f"round {index + 1} {kind}: {starts[kind]['seconds_to_available']:.1f} s", flush=True)
        starts["warm_over_cold"] = round(starts["warm"]["seconds_to_available"] / starts["cold"]["seconds_to_available"], 3)
        rounds.append(starts)
    ratios = [r["warm_over_cold"] for r in rounds]
    cold, warm = summarize(rounds, "cold"), summarize(rounds, "warm")
    result = {
        "schema": "vswin.bench.server_start/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe(),
        "model_base": str(model_base),
        "arch": args.arch or metadata.get("architecture_name"),
        "warmup_batch_sizes": metadata.get(contract.WARMUP_BATCH_SIZES_KEY),
        "export_seconds": export_seconds,
        "rounds": rounds,
        "cold": cold,
        "warm": warm,
        "warm_over_cold": statistics.median(ratios),
        "warm_over_cold_range": [min(ratios), max(ratios)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median of {args.rounds} rounds: cold {cold['seconds_to_available']:.1f} s "
          f"({cold['cache_written']} programs compiled), warm {warm['seconds_to_available']:.1f} s "
          f"({warm['cache_hits']} from the cache, {warm['cache_written']} compiled): warm/cold "
          f"{result['warm_over_cold']:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
