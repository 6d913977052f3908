"""Baseline revisions: resolving a git revision and unpacking its vswin package for benchmark workers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vswin.bench import revision


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two commits of a tiny vswin package (VERSION 1, then 2) and a file outside it."""
    root = tmp_path / "repo"
    (root / "vswin").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "README.md").write_text("not part of the package\n")
    for version in (1, 2):
        (root / "vswin" / "__init__.py").write_text(f"VERSION = {version}\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"version {version}")
    return root


def test_a_revision_resolves_to_its_commit_and_unpacks_only_that_commits_package(repo, tmp_path):
    commit = revision.resolve("HEAD~1", repo)
    assert commit == git(repo, "rev-parse", "HEAD~1") and len(commit) == 40
    root = revision.unpack(commit, tmp_path / "revisions", repo)
    assert root == tmp_path / "revisions" / commit
    assert (root / "vswin" / "__init__.py").read_text() == "VERSION = 1\n"
    assert not (root / "README.md").exists()
    assert revision.unpack(commit, tmp_path / "revisions", repo) == root  # unpacked once, then reused


def test_an_unknown_revision_or_a_directory_outside_git_is_a_clear_error(repo, tmp_path):
    with pytest.raises(ValueError, match="'no-such-branch' is not a commit"):
        revision.resolve("no-such-branch", repo)
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(ValueError, match="is not a commit of the git checkout"):
        revision.resolve("HEAD", outside)
