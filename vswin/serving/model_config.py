"""TF Serving's ModelServerConfig text proto (`--model_config_file`): read, build and check.

`read_model_config` is the one parser for models.config files in this
package (the config tooling reuses it); `check_model_config` holds the
rules TF Serving enforces, so a file accepted here is valid for
`tensorflow_model_server` too.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

# TF Serving's ServerCore::ValidateModelConfigList / version label rules.
LABEL_PATTERN = re.compile(r"^[a-zA-Z0-9_]+$")
SUPPORTED_PLATFORMS = ("", "tensorflow")


def read_model_config(path: str | Path, check: bool = True) -> ModelServerConfig:
    """Parse and (unless `check` is false) check a ModelServerConfig text proto; ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read model config file {path}: {err.strerror or err}") from err
    return parse_model_config(text, source=str(path), check=check)


def parse_model_config(text: str, source: str = "<model config>", check: bool = True) -> ModelServerConfig:
    """Parse ModelServerConfig text and (unless `check` is false) check it; ValueError naming `source`."""
    config = ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"{source}: not a valid ModelServerConfig text proto: {err}") from err
    if not check:
        return config
    try:
        check_model_config(config)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err
    return config


def single_model_config(name: str, base_path: str | Path) -> ModelServerConfig:
    """The config TF Serving builds from `--model_name` and `--model_base_path`."""
    config = ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name = name
    entry.base_path = str(base_path)
    entry.model_platform = "tensorflow"
    check_model_config(config)
    return config


def check_model_config(config: ModelServerConfig) -> None:
    """Raise ValueError for what TF Serving rejects (or what this server cannot serve), naming every problem."""
    problems = model_config_problems(config)
    if problems:
        raise ValueError("; ".join(problems))


def model_config_problems(config: ModelServerConfig) -> list[str]:
    """Everything in `config` that TF Serving rejects (or this server cannot serve); empty when none."""
    if config.WhichOneof("config") == "custom_model_config":
        return ["custom_model_config is not supported; use model_config_list"]
    problems: list[str] = []
    seen: set[str] = set()
    for entry in config.model_config_list.config:
        if not entry.name:
            problems.append("a model config entry has no name")
        elif entry.name in seen:
            problems.append(f"model name {entry.name!r} appears more than once")
        seen.add(entry.name)
        if not entry.base_path:
            problems.append(f"model {entry.name!r} has no base_path")
        if entry.model_platform not in SUPPORTED_PLATFORMS:
            problems.append(f"model {entry.name!r}: model_platform {entry.model_platform!r} is not supported "
                            f"(expected 'tensorflow')")  # fmt: skip
        problems += _policy_problems(entry)
        for label, version in entry.version_labels.items():
            if not LABEL_PATTERN.match(label):
                problems.append(f"model {entry.name!r}: version label {label!r} must match [a-zA-Z0-9_]+")
            if version <= 0:
                problems.append(f"model {entry.name!r}: version label {label!r} points at version {version}")
    return problems


def _policy_problems(entry: ModelConfig) -> list[str]:
    policy = entry.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "latest" and policy.latest.num_versions < 0:
        return [f"model {entry.name!r}: latest.num_versions must be positive"]
    if choice == "specific" and not policy.specific.versions:
        return [f"model {entry.name!r}: specific policy lists no versions"]
    return []


def config_text(config: ModelServerConfig) -> str:
    """Text proto of `config`, as written to a models.config file."""
    return text_format.MessageToString(config)
