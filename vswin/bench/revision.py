"""Another git revision of vswin, unpacked for benchmark workers: the baseline a change is timed against.

`vswin bench model --baseline REV` runs every arm twice, once from this
checkout and once from REV's `vswin` package (its workers import it from a
`git archive` of REV, so REV's own model code runs), interleaved in the
same rounds. The gain of a change is then a per-round ratio measured in one
run on one machine, not a comparison of two runs.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from vswin.bench.worker import REPO_ROOT

PACKAGE = "vswin"


def resolve(revision: str, repo: Path = REPO_ROOT) -> str:
    """The full commit hash of `revision` in `repo`; ValueError when it is not a commit there."""
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=repo,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ValueError(f"cannot run git in {repo} to find revision {revision!r}: {err}") from err
    if done.returncode != 0 or not done.stdout.strip():
        raise ValueError(f"{revision!r} is not a commit of the git checkout {repo}")
    return done.stdout.strip()


def unpack(commit: str, into: Path, repo: Path = REPO_ROOT) -> Path:
    """REV's `vswin` package under `into/<commit>` (unpacked once; reused when there); returns that root."""
    root = Path(into) / commit
    if (root / PACKAGE / "__init__.py").is_file():
        return root
    archive = subprocess.run(["git", "archive", "--format=tar", commit, PACKAGE], cwd=repo, capture_output=True,
                             timeout=300)  # fmt: skip
    if archive.returncode != 0:
        raise ValueError(f"git archive {commit} {PACKAGE} failed: {archive.stderr.decode(errors='replace').strip()}")
    partial = root.with_name(root.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(partial, filter="data")
    partial.rename(root)
    return root
