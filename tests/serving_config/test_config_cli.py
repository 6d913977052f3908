"""`vswin config generate|validate|promote|rollback` on exported model directories (no server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.serving_config.savedmodels import write_version
from vswin.cli import main
from vswin.serving.config_cli import EXIT_PENDING_LOAD


def read(path: Path) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())


def labels(path: Path, model: str) -> dict[str, int]:
    entry = next(e for e in read(path).model_config_list.config if e.name == model)
    return dict(entry.version_labels)


@pytest.fixture()
def models_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for version in (1, 2, 3):
        write_version(root / "tiny", version)
    write_version(root / "base", 1)
    (root / "not_a_model").mkdir()  # no version directories: not an entry
    return root


@pytest.fixture()
def config(models_root: Path, tmp_path: Path) -> Path:
    path = tmp_path / "models.config"
    assert main(["config", "generate", str(models_root), "--policy", "specific", "--label", "stable=1",
                 "--out", str(path)]) == 0
    return path


def test_generate_one_entry_per_model_dir_with_policy_and_labels(models_root, tmp_path, capsys):
    assert main(["config", "generate", str(models_root), "--policy", "latest", "--num-versions", "2",
                 "--label", "stable=latest", "--base-path-prefix", "/models"]) == 0
    config = text_format.Parse(capsys.readouterr().out, model_server_config_pb2.ModelServerConfig())
    entries = {e.name: e for e in config.model_config_list.config}
    assert sorted(entries) == ["base", "tiny"]
    assert entries["tiny"].base_path == "/models/tiny"
    assert entries["tiny"].model_version_policy.latest.num_versions == 2
    assert dict(entries["tiny"].version_labels) == {"stable": 3}
    assert dict(entries["base"].version_labels) == {"stable": 1}


def test_generate_specific_serves_labelled_versions(config):
    tiny = next(e for e in read(config).model_config_list.config if e.name == "tiny")
    assert list(tiny.model_version_policy.specific.versions) == [1]
    assert tiny.base_path.endswith("/models/tiny") and Path(tiny.base_path).is_absolute()


def test_generate_refuses_label_outside_latest_versions(models_root, capsys):
    assert main(["config", "generate", str(models_root), "--label", "stable=1"]) == 1
    assert "outside the latest 1" in capsys.readouterr().err


def test_validate_accepts_generated_config(config, capsys):
    assert main(["config", "validate", "--config", str(config)]) == 0
    assert "OK (2 models)" in capsys.readouterr().out


def test_validate_reports_every_problem_at_once(config, models_root, capsys):
    text = config.read_text().replace("versions: 1", "versions: 1\n      versions: 7", 1)
    config.write_text(text)
    (models_root / "base" / "1" / "variables" / "variables.index").unlink()
    shutil.rmtree(models_root / "tiny" / "2")
    write_version(models_root / "tiny", 2, signatures=("serving_default",))
    cfg = read(config)
    cfg.model_config_list.config[0].version_labels["canary"] = 2  # "base" is first: not served there
    extra = cfg.model_config_list.config.add(name="ghost", base_path=str(models_root / "ghost"))
    extra.model_platform = "tensorflow"
    config.write_text(text_format.MessageToString(cfg))
    assert main(["config", "validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "version 7: " in err and "does not exist" in err
    assert "no variables/variables.index" in err
    assert "'base': label 'canary' points at version 2, which is not served" in err
    assert "'ghost': base_path" in err
    assert "4 problem(s)" in err


def test_validate_names_missing_signatures(config, models_root, capsys):
    shutil.rmtree(models_root / "tiny" / "1")
    write_version(models_root / "tiny", 1, signatures=("serving_default", "feature_map"))
    assert main(["config", "validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "missing signatures ['features_float', 'features_graph or features_xla']" in err


def test_validate_maps_container_paths_to_a_local_tree(models_root, tmp_path, capsys):
    path = tmp_path / "container.config"
    assert main(["config", "generate", str(models_root), "--base-path-prefix", "/models", "--out", str(path)]) == 0
    assert main(["config", "validate", "--config", str(path)]) == 1
    assert "base_path /models/tiny does not exist" in capsys.readouterr().err
    assert main(["config", "validate", "--config", str(path), "--map", f"/models={models_root}"]) == 0


def test_validate_rejects_unparsable_config(tmp_path, capsys):
    path = tmp_path / "bad.config"
    path.write_text("model_config_list { config { nmae: 'x' } }")
    assert main(["config", "validate", "--config", str(path)]) == 1
    assert "not a valid ModelServerConfig" in capsys.readouterr().err


def test_promote_canary_loads_first_then_labels(config, capsys):
    # Version 2 is not served yet: the first run only adds it to the policy (labels need loaded versions).
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config)]) \
        == EXIT_PENDING_LOAD
    assert "run this again once the server has loaded it" in capsys.readouterr().err
    tiny = next(e for e in read(config).model_config_list.config if e.name == "tiny")
    assert list(tiny.model_version_policy.specific.versions) == [1, 2]
    assert dict(tiny.version_labels) == {"stable": 1}
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config)]) == 0
    assert labels(config, "tiny") == {"stable": 1, "canary": 2}
    assert main(["config", "validate", "--config", str(config)]) == 0


def test_promote_stable_from_canary_then_rollback(config, capsys):
    for _ in range(2):
        main(["config", "promote", "tiny", "--label", "canary", "--version", "2", "--config", str(config)])
    assert main(["config", "promote", "tiny", "--label", "stable", "--from", "canary", "--config", str(config)]) == 0
    assert labels(config, "tiny") == {"stable": 2, "canary": 2}
    assert main(["config", "rollback", "tiny", "--config", str(config)]) == 0
    assert labels(config, "tiny") == {"stable": 1, "canary": 2}
    assert "stable rolled back to version 1" in capsys.readouterr().out
    journal = [json.loads(line) for line in Path(f"{config}.journal").read_text().splitlines()]
    assert [(j["action"], j["label"], j["previous"], j["version"]) for j in journal] == [
        ("promote", "canary", None, 2), ("promote", "stable", 1, 2), ("rollback", "stable", 2, 1)]
    assert main(["config", "rollback", "tiny", "--config", str(config)]) == 1  # nothing earlier than 1
    assert "no earlier stable version of 'tiny'" in capsys.readouterr().err


def test_rollback_walks_back_through_successive_promotions(models_root, tmp_path):
    config = tmp_path / "all.config"
    main(["config", "generate", str(models_root), "--policy", "all", "--label", "stable=1", "--out", str(config)])
    for version in (2, 3):
        assert main(["config", "promote", "tiny", "--label", "stable", "--version", str(version),
                     "--config", str(config)]) == 0
    assert main(["config", "rollback", "tiny", "--config", str(config)]) == 0
    assert labels(config, "tiny")["stable"] == 2
    assert main(["config", "rollback", "tiny", "--config", str(config)]) == 0
    assert labels(config, "tiny")["stable"] == 1


def test_promote_refuses_versions_that_are_not_servable(config, models_root, capsys):
    before = config.read_text()
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "9", "--config", str(config)]) == 1
    assert "version directory does not exist" in capsys.readouterr().err
    (models_root / "tiny" / "3" / "saved_model.pb").unlink()
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "3", "--config", str(config)]) == 1
    assert "not a SavedModel" in capsys.readouterr().err
    assert config.read_text() == before
    assert not Path(f"{config}.journal").exists()


@pytest.mark.parametrize("argv, message", [
    (["promote", "tiny", "--label", "can-ary", "--version", "1"], "must match [a-zA-Z0-9_]+"),
    (["promote", "nope", "--label", "canary", "--version", "1"], "model 'nope' is not in the config"),
    (["promote", "tiny", "--label", "stable", "--from", "canary"], "has no 'canary' label"),
])
def test_promote_refusals_name_the_problem(config, capsys, argv, message):
    assert main(["config", *argv, "--config", str(config)]) == 1
    assert message in capsys.readouterr().err


def test_config_is_replaced_atomically(config, monkeypatch):
    import os

    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append((Path(src), Path(dst))),
                                                         real_replace(src, dst)))
    assert main(["config", "promote", "tiny", "--label", "canary", "--version", "1", "--config", str(config)]) == 0
    (src, dst), = replaced
    assert dst == config and src.parent == config.parent and src.name.startswith(".models.config.")
    hidden = sorted(p.name for p in config.parent.iterdir() if p.name.startswith("."))
    assert not src.exists() and hidden == [".models.config.lock"]  # the lock file stays: removing it would race


def test_promote_checks_container_base_paths_in_a_mapped_tree(models_root, tmp_path, capsys):
    config = tmp_path / "container.config"
    main(["config", "generate", str(models_root), "--policy", "all", "--label", "stable=1",
          "--base-path-prefix", "/models", "--out", str(config)])
    argv = ["config", "promote", "tiny", "--label", "stable", "--version", "3", "--config", str(config)]
    assert main(argv) == 1
    assert "/models/tiny/3: version directory does not exist" in capsys.readouterr().err
    assert main([*argv, "--map", f"/models={models_root}"]) == 0
    assert labels(config, "tiny")["stable"] == 3


def test_validate_lists_rule_and_file_problems_together(config, models_root, capsys):
    """A bad label name, a label on version 0 and missing base paths: all reported in one run."""
    cfg = read(config)
    cfg.model_config_list.config[0].version_labels["bad-label"] = 1
    cfg.model_config_list.config[1].version_labels["zero"] = 0
    for name in ("ghost_a", "ghost_b"):
        cfg.model_config_list.config.add(name=name, base_path=str(models_root / name), model_platform="tensorflow")
    config.write_text(text_format.MessageToString(cfg))
    assert main(["config", "validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "version label 'bad-label' must match" in err
    assert "version label 'zero' points at version 0" in err
    assert "'ghost_a': base_path" in err and "'ghost_b': base_path" in err
