"""The GPU table: Keras Video Swin on JAX against the original PyTorch implementation, interleaved.

    benchmarks/gpu/run.sh                  # on the GPU machine (see benchmarks/gpu/README.md)

Arms (vswin.bench.arms): `jax_float32`, `jax_bfloat16` (the Keras model on
JAX, `jax.jit` with the weights as arguments) in one worker process;
`pytorch_eager_*` and `pytorch_compile_*` (the original `SwinTransformer3D`,
eager and `torch.compile`, float32 and bf16 autocast) in another. Cases:
Swin-T and Swin-B at 32x224x224, batch 8, 32 and 1, in that order of
priority: under `--budget-s` a case that would not finish is skipped and
recorded as skipped. Every case writes the original's seeded weights once
and every arm computes with them; features are compared with
`pytorch_eager_float32`. Clips/s come from the median round, TFLOP/s from
the official GFLOPs per view (the Video Swin paper counts one multiply-add
as one FLOP, so hardware FLOP/s are twice these). TensorFlow is not needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from vswin import contract
from vswin.bench import interleave, machine
from vswin.bench.arms import KERAS_JAX, TORCH, Arm
from vswin.bench.case import Case

SWIN_T = "swin_tiny_patch244_window877_kinetics400_1k"
SWIN_B = "swin_base_patch244_window877_kinetics400_1k"
# Official GFLOPs per 32x224x224 view (github.com/SwinTransformer/Video-Swin-Transformer, README).
GFLOPS_PER_VIEW = {SWIN_T: 87.9, SWIN_B: 281.6}
OFFICIAL_VIEW = (contract.CLIP_LEN, contract.CROP_SIZE)
REFERENCE = "pytorch_eager_float32"


def arms(original_repo: str, compile_backend: str, precisions: list[str], compile_: bool) -> list[Arm]:
    """The JAX arms share one worker, the PyTorch arms another: one process per framework holds GPU memory."""
    jax_env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # leave the GPU's memory to both workers
    result = [Arm(f"jax_{p}", KERAS_JAX, {"precision": p}, jax_env, worker="jax") for p in precisions]
    modes = ("eager", "compile") if compile_ else ("eager",)
    for mode in modes:
        for precision in precisions:
            options = {"original_repo": original_repo, "precision": precision,
                       "compile": mode == "compile", "compile_backend": compile_backend}  # fmt: skip
            result.append(Arm(f"pytorch_{mode}_{precision}", TORCH, options, worker="pytorch"))
    # The reference (float32 eager) first: it writes the shared weights.
    return sorted(result, key=lambda arm: arm.name != REFERENCE)


def tflops(arch: str, frames: int, size: int, clips_per_s: float) -> float | None:
    """Achieved TFLOP/s by the official count, for the presets and view it was published for, else None."""
    if arch not in GFLOPS_PER_VIEW or (frames, size) != OFFICIAL_VIEW:
        return None
    return clips_per_s * GFLOPS_PER_VIEW[arch] / 1e3


def add_throughput(case_result: dict) -> None:
    case = case_result["case"]
    for entry in case_result.get("arms", {}).values():
        if "clips_per_s" in entry:
            entry["tflops_official"] = tflops(case["arch"], case["frames"], case["size"], entry["clips_per_s"])


def summary_line(case_result: dict) -> str:
    if case_result["status"] != "ok":
        return f"{case_result['label']}: {case_result['status']} ({case_result.get('reason', '')})"
    rows = []
    for name, entry in case_result["arms"].items():
        if "clips_per_s" not in entry:
            rows.append(f"  {name:<24} failed: {(entry.get('error') or '').splitlines()[:1]}")
            continue
        flops = entry.get("tflops_official")
        speed = entry.get("speedup_vs_reference", {})
        rows.append(f"  {name:<24} {entry['clips_per_s']:9.2f} clips/s  "
                    f"{'-' if flops is None else format(flops, '7.1f')} TFLOP/s  "
                    f"{speed.get('median', float('nan')):.2f}x [{speed.get('min', float('nan')):.2f}-"
                    f"{speed.get('max', float('nan')):.2f}]  first call {entry['first_call_s']:.1f} s  "
                    f"max abs diff {entry['agreement']['max_abs']:.1e}")  # fmt: skip
    return "\n".join([case_result["label"], *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original-repo", required=True, help="Checkout (or copy) of Video-Swin-Transformer.")
    parser.add_argument("--arch", default=f"{SWIN_T},{SWIN_B}", help="Comma-separated presets or JSON files.")
    parser.add_argument("--batch-sizes", default="8,32,1", help="In order of priority (default 8,32,1).")
    parser.add_argument("--frames", type=int, default=contract.CLIP_LEN)
    parser.add_argument("--size", type=int, default=contract.CROP_SIZE)
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--no-compile", action="store_true", help="Leave out the torch.compile arms.")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor).")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (the smoke test).")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10, help="Timed calls per arm per round (default 10).")
    parser.add_argument("--budget-s", type=float, default=400.0,
                        help="Start no case or round past this many seconds (default 400: the run fits 8 minutes).")
    parser.add_argument("--out", help="Result JSON (default benchmarks/results/gpu_<time>.json).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    precisions = args.precisions.split(",")
    chosen_arms = arms(str(Path(args.original_repo).resolve()), args.compile_backend, precisions, not args.no_compile)
    plan = interleave.Plan(rounds=args.rounds, calls=args.calls, warmup=2, reference=REFERENCE,
                           budget_s=args.budget_s, env={"JAX_PLATFORMS": args.device})  # fmt: skip
    out = Path(args.out or f"benchmarks/results/gpu_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    with tempfile.TemporaryDirectory(prefix="vswin-gpu-bench-") as work:
        archs = args.arch.split(",")
        cases = [Case(arch, args.frames, args.size, int(batch), str(Path(work) / f"weights-{index}.pth"),
                      device=args.device)
                 for batch in args.batch_sizes.split(",") for index, arch in enumerate(archs)]  # fmt: skip

        def report(case_result: dict) -> None:
            add_throughput(case_result)
            print(summary_line(case_result), flush=True)

        results = interleave.run(chosen_arms, cases, plan, Path(work), on_result=report)
    for case_result in results["cases"]:
        add_throughput(case_result)
    document = {"benchmark": "gpu_jax_vs_pytorch", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": machine.describe(), "settings": {**vars(args), "gflops_per_view": GFLOPS_PER_VIEW,
                                                            "flop_count": "official: one multiply-add = one FLOP"},
                **results}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    ran = [case for case in results["cases"] if case["status"] == "ok"]
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
