"""`vswin config validate` on a real `vswin export`: the signatures it expects are the ones export writes."""

from __future__ import annotations

from vswin.cli import main
from vswin.serving.config_tools import savedmodel_problems


def test_real_export_is_a_valid_version(micro_export):
    assert savedmodel_problems(micro_export / "1") == []


def test_generated_config_for_real_export_validates(micro_export, tmp_path, capsys):
    config = tmp_path / "models.config"
    assert main(["config", "generate", str(micro_export.parent), "--policy", "specific",
                 "--label", "stable=latest", "--label", "canary=latest", "--out", str(config)]) == 0
    assert main(["config", "validate", "--config", str(config)]) == 0
    assert "OK (1 models)" in capsys.readouterr().out
