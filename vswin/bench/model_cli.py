"""`vswin bench model`: the forward pass on every path, in one interleaved run (vswin.bench.interleave)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from vswin import contract


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--env {text!r} must be KEY=VALUE")
    return key, value


def register(subparsers: argparse._SubParsersAction) -> None:
    from vswin.bench.arms import CATALOG, CPU_TABLE, VARIANTS

    parser = subparsers.add_parser(
        "model",
        help="The model's forward pass on every path (PyTorch, TF graph/oneDNN/XLA, JAX, exports), interleaved.",
        description="Runs each arm in its own persistent worker process (a backend, TF_ENABLE_ONEDNN_OPTS or "
        "XLA_FLAGS is fixed per process), all with the same weights on the same clips; times them in rounds "
        "with the order rotated each round, and reports each arm's median time and the median (and spread) "
        "of its per-round speedups over the reference arm, with the machine, threads, kernel and allocator "
        f"settings and load average. Arms: {', '.join(CATALOG)}; variants: +{', +'.join(VARIANTS)}.",
    )
    parser.add_argument("--arms", help=f"Comma-separated arms (default the CPU table: {','.join(CPU_TABLE)}; "
                        "the pytorch rows only with --original-repo).")
    parser.add_argument("--original-repo", help="Checkout of github.com/SwinTransformer/Video-Swin-Transformer: "
                        "the reference arm runs its SwinTransformer3D (imported with stand-ins for mmcv/mmaction).")
    parser.add_argument("--torch-compile", action="store_true",
                        help="Add the torch.compile arm (compiling Swin-T took 598 s on a 2-core CPU).")
    parser.add_argument("--arch", default="swin_tiny_patch244_window877_kinetics400_1k",
                        help="Preset or architecture JSON for the model arms (default Swin-T).")
    parser.add_argument("--frames", type=int, default=contract.CLIP_LEN, help="Clip length T (default 32).")
    parser.add_argument("--size", type=int, default=contract.CROP_SIZE, help="Crop size H = W (default 224).")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--savedmodel", nargs="+", help="Time these exports' signatures instead of model arms.")
    parser.add_argument("--signature", nargs="+",
                        help="With --savedmodel: signatures to time (default the export's XLA and graph passes).")
    parser.add_argument("--batch-sizes", default="1", help="Comma-separated batch sizes, one case each (default 1).")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds per case (default 5).")
    parser.add_argument("--calls", type=int, default=1, help="Timed calls per arm per round (default 1).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed calls after building, first one timed "
                        "apart as the compile time (default 2).")
    parser.add_argument("--reference", help="Arm the speedups are taken against (default: the first arm).")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="Max abs difference of an arm's features from the reference's (default 1e-3).")
    parser.add_argument("--threads", type=int, help="Threads per worker: TF intra-op, torch/OpenMP "
                        "(TF_NUM_INTRAOP_THREADS, OMP_NUM_THREADS; default: each framework's own).")
    parser.add_argument("--env", type=_env_pair, action="append", default=[],
                        help="KEY=VALUE added to every worker's environment (repeatable).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the weights and the clips (default 0).")
    parser.add_argument("--work-dir", help="Where weights, exports and worker logs go (default a temp dir).")
    parser.add_argument("--out", default="benchmarks/results/model_interleaved.json", help="Result JSON.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vswin.bench import interleave, model
    from vswin.bench.case import Case

    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        env = dict(args.env)
        if args.threads:
            env.update(TF_NUM_INTRAOP_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        plan = interleave.Plan(rounds=args.rounds, calls=args.calls, warmup=args.warmup, tolerance=args.tolerance,
                               reference=args.reference, env=env)  # fmt: skip
        if args.savedmodel:
            arms = model.savedmodel_arms(args.savedmodel, args.signature)
        else:
            arms = model.model_arms(args.arms, args.original_repo, args.torch_compile, args.precision)
        if args.reference and args.reference not in {arm.name for arm in arms}:
            raise ValueError(f"--reference {args.reference!r} is not one of the arms {[a.name for a in arms]}")
    except ValueError as err:
        print(f"vswin bench model: {err}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="vswin-bench-model-") as temp:
        work_dir = Path(args.work_dir or temp)
        work_dir.mkdir(parents=True, exist_ok=True)
        if args.savedmodel:
            cases = [model.savedmodel_case(args.savedmodel[0], batch, args.seed) for batch in batch_sizes]
        else:
            original = any(arm.writes_original_weights for arm in arms)  # its .pth layout, else Keras weights
            weights = work_dir / ("weights.pth" if original else "weights.weights.h5")
            cases = [Case(args.arch, args.frames, args.size, batch, str(weights), args.seed,
                          export_dir=str(work_dir / "export")) for batch in batch_sizes]  # fmt: skip
        results = interleave.run(arms, cases, plan, work_dir, on_result=lambda r: print(model.table(r), flush=True))
    settings = {"arch": args.arch, "clip": [args.frames, args.size, args.size], "precision": args.precision,
                "batch_sizes": batch_sizes, "savedmodel": args.savedmodel, "threads": args.threads,
                "weights": "random (seeded); the first arm writes them, every other arm loads the same file"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model.document(results, settings), indent=2) + "\n")
    print(f"wrote {out}")
    ok = all(case["status"] == "ok" for case in results["cases"])
    return 0 if ok else 1
