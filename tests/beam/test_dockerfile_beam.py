"""Dockerfile.beam: lints clean, builds on a pinned Beam SDK image, installs the [beam] extra."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.beam"


def parsed() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stages_pin_beams_sdk_image_and_install_the_beam_extra():
    parser = parsed()
    args = dict(item["value"].split("=", 1) for item in parser.structure
                if item["instruction"] == "ARG" and "=" in item["value"])
    assert re.fullmatch(r"2\.\d+\.\d+", args["BEAM_VERSION"]), "pin the release the launcher runs"
    assert re.fullmatch(r"3\.\d+", args["PYTHON_VERSION"])
    froms = [item["value"] for item in parser.structure if item["instruction"] == "FROM"]
    assert froms == ["apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS remote", "remote AS gpu", "remote"]
    runs = [item["value"] for item in parser.structure if item["instruction"] == "RUN"]
    assert '".[beam]"' in runs[0] and '".[beam,model]"' in runs[1]
