"""Time the Keras Video Swin forward pass on each backend, side by side, on this machine.

    python benchmarks/model_backends.py --arch swin_tiny_patch244_window877_kinetics400_1k \
        --frames 32 --size 224 --batch 1 --reps 5

Runs one subprocess per setting (a Keras backend is fixed per process):
TensorFlow `tf.function` without XLA, TensorFlow with `jit_compile=True`,
and JAX with `jax.jit`. Random weights: speed does not depend on them.
Compile time is reported separately from the steady-state latency, and
ratios are taken against the TensorFlow graph run of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "tf_graph": ("tensorflow", False),
    "tf_xla": ("tensorflow", True),
    "jax_jit": ("jax", True),
}

_CHILD = r"""
import json, os, sys, time
import numpy as np
import keras
import vswin.model

arch, frames, size, batch, reps, jit = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6] == "1"
model = vswin.model.build(arch, include_head=False)
clips = np.random.default_rng(0).normal(size=(batch, frames, size, size, 3)).astype("float32")
if keras.backend.backend() == "jax":
    import jax
    forward = jax.jit(lambda x: model(x)["features"])
    run = lambda: forward(clips).block_until_ready()
else:
    import tensorflow as tf
    forward = tf.function(lambda x: model(x)["features"], jit_compile=jit)
    run = lambda: forward(clips).numpy()
start = time.perf_counter(); run(); first = time.perf_counter() - start
run()  # second warmup: allocator and thread pools settle
times = []
for _ in range(reps):
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
print(json.dumps({"first_call_s": first, "latencies_s": times, "backend_version": (
    __import__("jax").__version__ if keras.backend.backend() == "jax" else __import__("tensorflow").__version__)}))
"""


def run_setting(name: str, args: argparse.Namespace) -> dict:
    backend, jit = SETTINGS[name]
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-c", _CHILD, args.arch, str(args.frames), str(args.size), str(args.batch),
            str(args.reps), "1" if jit else "0"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    latencies = sorted(data["latencies_s"])
    data["median_s"] = latencies[len(latencies) // 2]
    data["min_s"] = latencies[0]
    data["clips_per_s"] = args.batch / data["median_s"]
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="swin_tiny_patch244_window877_kinetics400_1k")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="Comma-separated subset of %(default)s.")
    parser.add_argument("--out", default="benchmarks/results/model_backends_cpu.json")
    args = parser.parse_args()

    import keras

    from vswin.bench.machine import describe

    results = {}
    for name in args.settings.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = run_setting(name, args)
        print(f"{name}: median {results[name]['median_s']:.3f} s, first call {results[name]['first_call_s']:.1f} s",
              file=sys.stderr)
    base = results.get("tf_graph")
    ratios = {f"{name}_speedup_vs_tf_graph": base["median_s"] / r["median_s"] for name, r in results.items()
              if base and name != "tf_graph"}
    report = {
        "benchmark": "keras_model_forward",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe(),
        "versions": {"keras": keras.__version__, **{n: r["backend_version"] for n, r in results.items()}},
        "settings": {"arch": args.arch, "clip": [args.batch, args.frames, args.size, args.size, 3],
                     "weights": "random", "reps": args.reps, "dtype": "float32"},
        "results": results,
        "ratios": ratios,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
