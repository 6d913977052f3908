"""The test process runs gRPC servers: nothing in the suite or the package may fork it (docs/design.md#tests)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# preexec_fn makes subprocess fork() rather than vfork; a fork while gRPC's threads run can abort the child.
FORKING = re.compile(r"\bpreexec_fn\s*=|\bos\.fork\(|multiprocessing")


def test_no_subprocess_forks_the_calling_process():
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in ("vswin", "tests")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FORKING.search(line)
    ]
    assert offenders == []
