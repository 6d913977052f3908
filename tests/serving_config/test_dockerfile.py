"""Dockerfile.serving: parses, lints clean, references files in the build context, pins an XLA-GPU release."""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from google.protobuf import text_format

from vswin.serving.config_protos import BatchingParameters

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.serving"
SERVER = "tensorflow_model_server"
# First TF Serving release linking XLA's GPU JIT (tensorflow/serving commit e5e795f5, in 2.18.0).
FIRST_XLA_GPU_RELEASE = (2, 18)


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == name]


def entrypoint_flags(parser: DockerfileParser) -> list[str]:
    (entrypoint,) = instructions(parser, "ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv[0] == SERVER
    return argv[1:]


def build_args(parser: DockerfileParser) -> dict[str, str]:
    return dict(value.split("=", 1) for value in instructions(parser, "ARG") if "=" in value)


def test_stages_export_then_serve_from_pinned_gpu_image(parser):
    froms = instructions(parser, "FROM")
    stages = [value.split(" AS ")[-1] for value in froms]
    assert stages == ["export", "serving", "baked"]
    version = build_args(parser)["TF_SERVING_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pin an exact release, not latest"
    assert tuple(int(part) for part in version.split(".")[:2]) >= FIRST_XLA_GPU_RELEASE
    assert froms[1] == "tensorflow/serving:${TF_SERVING_VERSION}-gpu AS serving"
    assert "tensorflow/serving:%s-gpu" % version in parser.parent_images
    assert any("vswin export" in run and "--checkpoint" in run for run in instructions(parser, "RUN"))


def test_exposes_grpc_and_rest_ports(parser):
    assert instructions(parser, "EXPOSE") == ["8500 8501"]
    flags = entrypoint_flags(parser)
    assert "--port=8500" in flags and "--rest_api_port=8501" in flags


def test_server_flags_enable_config_polling_batching_warmup_monitoring_and_xla(parser):
    flags = dict(flag.lstrip("-").split("=", 1) for flag in entrypoint_flags(parser))
    assert flags["xla_gpu_compilation_enabled"] == "true"
    assert flags["enable_batching"] == "true" and flags["enable_model_warmup"] == "true"
    assert int(flags["model_config_file_poll_wait_seconds"]) > 0
    for key in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        assert flags[key].startswith("/config/")


def test_config_files_the_server_reads_are_copied_from_the_build_context(parser):
    copied = {}
    for value in instructions(parser, "COPY"):
        parts = shlex.split(value)
        if any(part.startswith("--from=") for part in parts):
            continue
        *sources, dest = parts
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} is not in the build context"
            assert not ignored(source), f"COPY source {source} is excluded by Dockerfile.serving.dockerignore"
            copied[str(Path(dest) / Path(source).name) if dest.endswith("/") else dest] = source
    flags = dict(flag.lstrip("-").split("=", 1) for flag in entrypoint_flags(parser))
    for key in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        assert flags[key] in copied, f"--{key}={flags[key]} is not a file the image gets"


def ignored(path: str) -> bool:
    """Whether .dockerignore rules (last match wins, ! re-includes) exclude `path`."""
    excluded = False
    for line in (REPO / "Dockerfile.serving.dockerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").replace("**/", "*").replace("/**", "/*").replace("**", "*")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path + "/", pattern):
            excluded = not negate
    return excluded


def test_export_warms_up_every_batch_size_the_batching_config_pads_to(parser, capsys):
    """One source for the batch plan: the export reads allowed_batch_sizes from the batching file it copies."""
    assert build_args(parser)["BATCH_SIZES"] == ""  # empty: the batching file decides
    (export_run,) = [run for run in instructions(parser, "RUN") if "vswin export" in run]
    assert '--batch-sizes "${BATCH_SIZES:-$(vswin config batch-sizes serving_config/batching_parameters.txt)}"' in (
        export_run
    )
    copies = [shlex.split(value) for value in instructions(parser, "COPY")]
    assert ["serving_config/batching_parameters.txt", "./serving_config/"] in copies
    from vswin.cli import main

    params = text_format.Parse((REPO / "serving_config" / "batching_parameters.txt").read_text(), BatchingParameters())
    capsys.readouterr()
    assert main(["config", "batch-sizes", str(REPO / "serving_config" / "batching_parameters.txt")]) == 0
    assert capsys.readouterr().out == ",".join(map(str, params.allowed_batch_sizes)) + "\n"


def test_serving_image_keeps_a_persistent_xla_cache_in_a_volume(parser):
    envs = instructions(parser, "ENV")
    assert 'TF_XLA_FLAGS="--tf_xla_persistent_cache_directory=/xla-cache"' in envs
    assert instructions(parser, "VOLUME") == ['["/xla-cache"]']


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_server_flag_is_accepted_by_vswin_serve(parser):
    from vswin.cli import build_parser

    flags = entrypoint_flags(parser)
    args = build_parser().parse_args(["serve", *flags])
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        parsed = getattr(args, name)
        assert parsed == ({"true": True, "false": False}.get(value, value) if isinstance(parsed, bool)
                          else type(parsed)(value)), f"--{name} parsed as {parsed!r}"


def test_vswin_serve_parser_rejects_what_tensorflow_model_server_would_not_run(parser, capsys):
    from vswin.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", *entrypoint_flags(parser), "--xla_gpu_compilation_enabled=maybe"])
    assert "expected true or false" in capsys.readouterr().err
