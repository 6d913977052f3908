"""`vswin beam` on the DirectRunner against `vswin extract`, same server, same model, same videos.

    vswin serve --port 8500 --model_name swin_tiny_k400 --model_base_path models/swin_tiny_k400 \
        --xla_cpu_compilation_enabled=true &
    python benchmarks/beam_vs_extract.py --server localhost:8500 --model swin_tiny_k400 \
        --video bikes.mp4 --video bigbuckbunny.mp4 --copies 4 --rounds 3

Arms: `extract` (one asyncio process, 4 requests in flight), `beam_1` (Beam,
one worker process: Beam's overhead over `extract`), `beam_2` (two worker
processes); `--arms` runs a subset. Each is a whole command timed from start
to exit, so interpreter and pipeline start-up count, as a user sees them. Arms run interleaved, the
order rotated each round; the report gives medians of videos/s and clips/s,
per-round ratios to `extract`, and Beam's counters: channels opened and
geometry looked up (setups) against requests and clips, which shows that
setup happens once per worker process and not per element.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vswin import contract  # noqa: E402  (after the path, so this checkout's package is the one timed)

ARMS = ("extract", "beam_1", "beam_2")
BEAM_WORKERS = {"beam_1": 1, "beam_2": 2}


def sampling_flags(args: argparse.Namespace) -> list[str]:
    """The flags both commands get: signature, sampling, and views per request."""
    return ["--signature", args.signature, "--clips", str(args.clips), "--crops", str(args.crops),
            "--max-batch", str(args.max_batch)]


def command(arm: str, args: argparse.Namespace, videos: list[Path], work: Path) -> list[str]:
    vswin = [sys.executable, "-m", "vswin"]
    if arm == "extract":
        return [*vswin, "extract", *map(str, videos), "--server", args.server, "--model", args.model,
                *sampling_flags(args), "--out", str(work / "extract"), "--overwrite", "--no-progress"]
    listing = work / "videos.txt"
    listing.write_text("".join(f"{video}\n" for video in videos))
    return [*vswin, "beam", "--inputs", str(listing), "--output", str(work / arm / "feats"), "--server", args.server,
            "--model", args.model, *sampling_flags(args), "--metrics-json", str(work / f"{arm}.json"),
            "--direct_num_workers", str(BEAM_WORKERS[arm]), "--direct_running_mode", "multi_processing"]


def run_arm(arm: str, args: argparse.Namespace, videos: list[Path], work: Path) -> dict:
    """One timed run of one arm: wall seconds, and for Beam its counters."""
    start = time.monotonic()
    process = subprocess.run(command(arm, args, videos, work), capture_output=True, text=True, cwd=REPO)
    seconds = time.monotonic() - start
    if process.returncode != 0:
        raise RuntimeError(f"{arm} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    run = {"seconds": seconds, "videos": len(videos), "clips": len(videos) * args.clips * args.crops}
    if arm in BEAM_WORKERS:
        counters = json.loads((work / f"{arm}.json").read_text())["counters"]
        if counters["videos_ok"] != len(videos):
            raise RuntimeError(f"{arm} wrote {counters['videos_ok']} of {len(videos)} videos")
        run["counters"] = counters
    return run


def summarize(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Per arm run: medians of seconds, videos/s, clips/s; per-round ratio to extract (when it ran); Beam's setup
    counters; Beam's overhead at one worker (when extract and beam_1 ran)."""
    summary = {}
    for arm in [arm for arm in ARMS if arm in rounds[0]]:
        runs = [r[arm] for r in rounds]
        entry = {
            "median_seconds": statistics.median(run["seconds"] for run in runs),
            "videos_per_s": statistics.median(run["videos"] / run["seconds"] for run in runs),
            "clips_per_s": statistics.median(run["clips"] / run["seconds"] for run in runs),
        }
        if "extract" in rounds[0]:
            entry["speedup_vs_extract"] = statistics.median(r["extract"]["seconds"] / r[arm]["seconds"] for r in rounds)
        if arm in BEAM_WORKERS:
            last = runs[-1]["counters"]
            entry["workers"] = BEAM_WORKERS[arm]
            entry["setups"] = {"model": last["model_setups"], "decode": last["decode_setups"]}
            entry["elements"] = {"requests": last["requests"], "clips": last["clips"], "videos": last["videos_ok"]}
        summary[arm] = entry
    if {"extract", "beam_1"} <= set(summary):
        summary["beam_1"]["overhead_seconds_vs_extract"] = statistics.median(
            r["beam_1"]["seconds"] - r["extract"]["seconds"] for r in rounds)
    return summary


def table(summary: dict[str, dict]) -> str:
    lines = ["| arm | median s | videos/s | clips/s | x extract | setups (model, decode) | requests |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for arm, s in summary.items():
        setups = f"{s['setups']['model']}, {s['setups']['decode']}" if "setups" in s else "-"
        requests = s["elements"]["requests"] if "elements" in s else "-"
        speedup = f"{s['speedup_vs_extract']:.2f}" if "speedup_vs_extract" in s else "-"
        lines.append(f"| {arm} | {s['median_seconds']:.1f} | {s['videos_per_s']:.2f} | {s['clips_per_s']:.1f} | "
                     f"{speedup} | {setups} | {requests} |")
    overhead = summary.get("beam_1", {}).get("overhead_seconds_vs_extract")
    if overhead is not None:
        lines.append(f"\nBeam's overhead at 1 worker: {overhead:+.1f} s per job")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", action="append", required=True, type=Path, help="A video (repeatable).")
    parser.add_argument("--copies", type=int, default=4, help="Links to each video, for more work per job.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"Comma-separated subset of {','.join(ARMS)} (default all).")
    parser.add_argument("--signature", default=contract.SERVING_DEFAULT)
    parser.add_argument("--clips", type=int, default=contract.NUM_CLIPS)
    parser.add_argument("--crops", type=int, default=contract.NUM_CROPS)
    parser.add_argument("--max-batch", type=int, default=contract.MAX_BATCH_SIZE, help="Views per request.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "beam_vs_extract.json")
    args = parser.parse_args(argv)
    arms = tuple(arm for arm in ARMS if arm in args.arms.split(","))
    if not arms or set(args.arms.split(",")) - set(ARMS):
        parser.error(f"--arms takes a comma-separated subset of {','.join(ARMS)}, not {args.arms!r}")

    from vswin.bench.machine import describe

    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="beam-vs-extract-") as tmp:
        work = Path(tmp)
        videos = []
        for video in args.video:
            for copy in range(args.copies):
                link = work / "videos" / f"{video.stem}-{copy}{video.suffix}"
                link.parent.mkdir(exist_ok=True)
                link.symlink_to(video.resolve())
                videos.append(link)
        for number in range(args.rounds):
            order = arms[number % len(arms):] + arms[:number % len(arms)]
            rounds.append({arm: run_arm(arm, args, videos, work) for arm in order})
            print(f"round {number + 1}: " + ", ".join(f"{arm} {rounds[-1][arm]['seconds']:.1f}s" for arm in order),
                  file=sys.stderr)
    summary = summarize(rounds)
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "video"},
              "videos": [str(v) for v in args.video], "machine": describe(), "rounds": rounds, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(summary))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
