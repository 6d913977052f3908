"""models.config against the model directories: generate one from a models root, validate one.

Validation reads each version's `saved_model.pb` with the SavedModel proto
(no graph is loaded, so it takes milliseconds per version) and checks what a
server needs before it can serve: the `serve` tag, the signatures of
`vswin export`, the variables. It collects every problem instead of stopping
at the first, so one run tells a user everything to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

from tensorflow_serving.config import model_server_config_pb2

from vswin import contract
from vswin.contract import SERVE_TAG
from vswin.serving.model_config import LABEL_PATTERN

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

# Signatures every `vswin export` has (docs/design.md, "Exported SavedModel"), plus one of the two forward
# passes that is not serving_default (features_graph when serving_default is XLA, features_xla otherwise).
REQUIRED_SIGNATURES = (contract.SERVING_DEFAULT, contract.FEATURES_FLOAT, contract.FEATURE_MAP)
ALTERNATE_SIGNATURES = (contract.FEATURES_GRAPH, contract.FEATURES_XLA)
POLICIES = ("latest", "all", "specific")
LATEST_LABEL_VALUE = "latest"


def version_dirs(base: Path) -> list[int]:
    """Integer version directories under `base`, ascending (what TF Serving's file system source sees)."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def savedmodel_problems(version_dir: Path) -> list[str]:
    """What keeps `version_dir` from being served as an export of this package; empty when nothing does."""
    from tensorflow.core.protobuf import saved_model_pb2

    if not version_dir.is_dir():
        return [f"{version_dir}: version directory does not exist"]
    graph_file = version_dir / "saved_model.pb"
    if not graph_file.is_file():
        return [f"{version_dir}: no saved_model.pb (not a SavedModel)"]
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(graph_file.read_bytes())
    except Exception as err:  # protobuf raises DecodeError, or RuntimeWarning-like errors from the C++ parser
        return [f"{graph_file}: unreadable SavedModel proto: {err}"]
    graphs = [g for g in saved_model.meta_graphs if SERVE_TAG in g.meta_info_def.tags]
    if not graphs:
        tags = [list(g.meta_info_def.tags) for g in saved_model.meta_graphs]
        return [f"{graph_file}: no MetaGraph tagged {SERVE_TAG!r} (tags: {tags})"]
    problems = []
    signatures = set(graphs[0].signature_def)
    missing = [name for name in REQUIRED_SIGNATURES if name not in signatures]
    if not signatures.intersection(ALTERNATE_SIGNATURES):
        missing.append(" or ".join(ALTERNATE_SIGNATURES))
    if missing:
        problems.append(f"{version_dir}: missing signatures {missing} (has {sorted(signatures)})")
    if not (version_dir / "variables" / "variables.index").is_file():
        problems.append(f"{version_dir}: no variables/variables.index")
    return problems


def version_on_disk(path_map: Mapping[str, str] | None = None) -> Callable[[ModelConfig, int], str | None]:
    """A rollout `LoadedCheck` without a server: None when the version directory is a servable export."""

    def check(entry: ModelConfig, version: int) -> str | None:
        problems = savedmodel_problems(local_path(entry.base_path, path_map or {}) / str(version))
        return "; ".join(problems) or None

    return check


def local_path(base_path: str, path_map: Mapping[str, str]) -> Path:
    """`base_path` with the first matching prefix replaced (e.g. /models -> ./exports) to check it here."""
    for prefix, replacement in path_map.items():
        if base_path == prefix or base_path.startswith(prefix.rstrip("/") + "/"):
            return Path(replacement + base_path[len(prefix.rstrip("/")):])
    return Path(base_path)


def served_versions(entry: ModelConfig, available: list[int]) -> list[int]:
    """The versions a server would load for `entry` given the version directories present."""
    policy = entry.model_version_policy
    choice = policy.WhichOneof("policy_choice") or "latest"
    if choice == "all":
        return available
    if choice == "specific":
        return sorted(policy.specific.versions)
    count = policy.latest.num_versions or 1
    return available[-count:]


def validate_config(config: ModelServerConfig, path_map: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of a parsed config against the file system (its own rules: `model_config_problems`).

    Empty: a server can load every version the config serves and every label points at one of them.
    """
    entries = config.model_config_list.config
    if not entries:
        return ["model_config_list lists no models"]
    problems: list[str] = []
    for entry in entries:
        if entry.name and entry.base_path:  # entries without them are model_config_problems
            problems += _entry_problems(entry, path_map or {})
    return problems


def _entry_problems(entry: ModelConfig, path_map: Mapping[str, str]) -> list[str]:
    name = entry.name
    base = local_path(entry.base_path, path_map)
    if not base.is_dir():
        return [f"model {name!r}: base_path {base} does not exist"]
    served = served_versions(entry, version_dirs(base))
    problems = []
    if not served:
        problems.append(f"model {name!r}: no version directories under {base}")
    for version in served:
        problems += [f"model {name!r} version {version}: {p}" for p in savedmodel_problems(base / str(version))]
    for label, version in sorted(entry.version_labels.items()):
        if version not in served:
            problems.append(f"model {name!r}: label {label!r} points at version {version}, which is not served "
                            f"(served: {served})")
    return problems


def generate_config(models_root: Path, policy: str = "latest", num_versions: int = 1,
                    labels: Mapping[str, str] | None = None, base_path_prefix: str | None = None,
                    ) -> ModelServerConfig:
    """One entry per model directory under `models_root` (a directory holding integer version directories).

    `labels` maps a label to a version number or to "latest" (each model's highest version).
    `specific` serves the labelled versions (the highest version when there are no labels).
    `base_path_prefix` writes base paths under another root, e.g. /models inside a container.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} must be one of {POLICIES}")
    models = sorted(p for p in Path(models_root).iterdir() if p.is_dir() and version_dirs(p))
    if not models:
        raise ValueError(f"{models_root}: no model directories (directories holding integer version directories)")
    config = ModelServerConfig()
    for model_dir in models:
        versions = version_dirs(model_dir)
        entry = config.model_config_list.config.add()
        entry.name = model_dir.name
        prefix = base_path_prefix.rstrip("/") if base_path_prefix else str(Path(model_dir.parent).resolve())
        entry.base_path = f"{prefix}/{model_dir.name}"
        entry.model_platform = "tensorflow"
        resolved = _resolve_labels(labels or {}, versions, model_dir.name)
        for label, version in resolved.items():
            entry.version_labels[label] = version
        if policy == "latest":
            outside = {label: v for label, v in resolved.items() if v not in versions[-num_versions:]}
            if outside:
                raise ValueError(
                    f"{model_dir.name}: labels {outside} point outside the latest {num_versions} "
                    f"version(s) {versions[-num_versions:]}; raise --num-versions or use --policy specific"
                )
            entry.model_version_policy.latest.num_versions = num_versions
        elif policy == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            wanted = sorted(set(resolved.values())) or versions[-1:]
            entry.model_version_policy.specific.versions.extend(wanted)
    return config


def _resolve_labels(labels: Mapping[str, str], versions: list[int], model: str) -> dict[str, int]:
    resolved = {}
    for label, value in labels.items():
        if not LABEL_PATTERN.match(label):
            raise ValueError(f"label {label!r} must match [a-zA-Z0-9_]+")
        version = versions[-1] if value == LATEST_LABEL_VALUE else int(value)
        if version not in versions:
            raise ValueError(f"label {label}={value}: {model} has no version {version} (has {versions})")
        resolved[label] = version
    return resolved


def parse_assignments(pairs: Iterable[str], what: str) -> dict[str, str]:
    """`KEY=VALUE` strings to a dict; ValueError naming the malformed one."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} {pair!r} must look like KEY=VALUE")
        result[key] = value
    return result
