"""read_model_config: TF Serving's ModelServerConfig text proto, with TF Serving's rules."""

from __future__ import annotations

import pytest

from vswin.serving.model_config import config_text, read_model_config, single_model_config

GOOD = """
model_config_list {
  config {
    name: "vswin_tiny"
    base_path: "/models/vswin_tiny"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config { name: "vswin_small" base_path: "/models/vswin_small" }
}
"""


def test_reads_a_tf_serving_models_config(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(GOOD)
    config = read_model_config(path)
    tiny, small = config.model_config_list.config
    assert (tiny.name, tiny.base_path) == ("vswin_tiny", "/models/vswin_tiny")
    assert list(tiny.model_version_policy.specific.versions) == [1, 2]
    assert dict(tiny.version_labels) == {"stable": 1, "canary": 2}
    assert small.name == "vswin_small"
    path.write_text(config_text(config))
    assert read_model_config(path) == config


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model_config_list { config { name: ", "not a valid ModelServerConfig text proto"),
        ('model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }',
         "model name 'a' appears more than once"),
        ('model_config_list { config { name: "a" } }', "model 'a' has no base_path"),
        ('model_config_list { config { base_path: "/a" } }', "a model config entry has no name"),
        ('model_config_list { config { name: "a" base_path: "/a" model_platform: "tflite" } }',
         "model_platform 'tflite' is not supported"),
        ('model_config_list { config { name: "a" base_path: "/a" version_labels { key: "st-able" value: 1 } } }',
         "version label 'st-able' must match [a-zA-Z0-9_]+"),
        ('model_config_list { config { name: "a" base_path: "/a" model_version_policy { specific { } } } }',
         "specific policy lists no versions"),
        ("custom_model_config { }", "custom_model_config is not supported"),
    ],
    ids=["syntax", "duplicate", "no-base-path", "no-name", "platform", "label", "empty-specific", "custom"],
)  # fmt: skip
def test_bad_configs_name_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        read_model_config(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read model config file .*nope.config"):
        read_model_config(tmp_path / "nope.config")


def test_single_model_config_matches_the_model_name_and_base_path_flags():
    (entry,) = single_model_config("m", "/models/m").model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("m", "/models/m", "tensorflow")
