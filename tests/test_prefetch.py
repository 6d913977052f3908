"""tests/prefetch.py: the session's subprocess jobs, run ahead in test order, read once, stopped at the end."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests import prefetch
from tests.prefetch import Job, Prefetcher


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture()
def specs(monkeypatch) -> dict[str, prefetch.Spec]:
    """The registry, emptied for one test."""
    monkeypatch.setattr(prefetch, "SPECS", {})
    return prefetch.SPECS


def test_only_the_jobs_of_the_selected_tests_are_made_in_the_order_they_are_first_needed(specs, tmp_path):
    for name in ("a", "b", "c"):
        prefetch.register(name, lambda work, name=name: python(f"print({name!r})"), env={"JOB": name})
    with pytest.raises(ValueError, match="already registered"):
        prefetch.register("a", lambda work: python(""))
    prefetcher = Prefetcher.for_tests([["tmp_path"], ["c", "tmp_path"], ["a", "c"]], tmp_path, {"BASE": "1"})
    assert list(prefetcher.jobs) == ["c", "a"]
    assert prefetcher.jobs["c"].env == {"BASE": "1", "JOB": "c"} and prefetcher.jobs["c"].work == tmp_path / "c"


def test_a_job_runs_once_whoever_asks_and_its_output_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "ENABLED", True)  # whatever VSWIN_TEST_PREFETCH says
    count = tmp_path / "runs"
    job = Job("j", python(f"import sys; open({str(count)!r}, 'a').write('x'); print('out'); "
                          "print('err', file=sys.stderr); sys.exit(3)"), {}, tmp_path)  # fmt: skip
    prefetcher = Prefetcher([job])
    prefetcher.start()
    first, second = prefetcher.result("j"), job.result()
    assert first == second == prefetch.Finished(3, "out\n", "err\n")
    assert count.read_text() == "x"  # the background thread and the test did not both run it
    assert (tmp_path / "stdout.txt").read_text() == "out\n"


def test_a_job_that_cannot_start_says_why_and_stop_ends_a_running_one(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(prefetch, "ENABLED", True)
    for name in ("missing", "sleeper"):
        (tmp_path / name).mkdir()
    missing = Job("missing", [str(tmp_path / "no-such-command")], {}, tmp_path / "missing")
    with pytest.raises(RuntimeError, match="job 'missing' failed: FileNotFoundError"):
        missing.result()
    up = tmp_path / "sleeper" / "up"
    sleeper = Job("sleeper", python(f"import time; open({str(up)!r}, 'w').close(); time.sleep(600)"), {},
                  tmp_path / "sleeper")  # fmt: skip
    prefetcher = Prefetcher([sleeper])
    prefetcher.start()
    while not up.exists():  # until the background thread has started it
        time.sleep(0.05)
    prefetcher.stop()
    with pytest.raises(RuntimeError, match="job 'sleeper' was stopped before it finished"):
        sleeper.result()
