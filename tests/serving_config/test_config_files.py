"""serving_config/*: each file parses with TF Serving's protos and says what the README promises."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from vswin.serving.config_protos import BatchingParameters, MonitoringConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "serving_config"
PRESET_MODELS = {
    "swin_tiny_k400": "swin_tiny_patch244_window877_kinetics400_1k",
    "swin_small_k400": "swin_small_patch244_window877_kinetics400_1k",
    "swin_base_k400": "swin_base_patch244_window877_kinetics400_1k",
    "swin_base_k400_22k": "swin_base_patch244_window877_kinetics400_22k",
    "swin_base_k600_22k": "swin_base_patch244_window877_kinetics600_22k",
    "swin_base_sthv2": "swin_base_patch244_window1677_sthv2",
}


def parse(name: str, message):
    return text_format.Parse((CONFIG_DIR / name).read_text(), message)


def test_models_config_serves_the_six_presets_by_name_under_models():
    config = parse("models.config", model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert set(entries) == set(PRESET_MODELS)
    text = (CONFIG_DIR / "models.config").read_text()
    for name, entry in entries.items():
        assert entry.base_path == f"/models/{name}"
        assert entry.model_platform == "tensorflow"
        assert PRESET_MODELS[name] in text  # each entry says which preset it serves


def test_models_config_labels_point_at_served_versions():
    import vswin.model

    config = parse("models.config", model_server_config_pb2.ModelServerConfig())
    assert set(PRESET_MODELS.values()) <= set(vswin.model.PRESETS)
    for entry in config.model_config_list.config:
        served = set(entry.model_version_policy.specific.versions)
        assert served, f"{entry.name}: explicit version policy expected"
        assert set(entry.version_labels) == {"stable", "canary"}
        assert set(entry.version_labels.values()) <= served


def test_batching_parameters_pad_to_warmed_up_sizes():
    params = parse("batching_parameters.txt", BatchingParameters())
    sizes = list(params.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == params.max_batch_size.value  # TF Serving requires both
    assert 0 < params.batch_timeout_micros.value <= 20_000
    assert params.num_batch_threads.value >= 1 and params.max_enqueued_batches.value >= 1
    assert not params.pad_variable_length_inputs


def test_monitoring_config_enables_prometheus_at_tf_serving_path():
    config = parse("monitoring.config", MonitoringConfig())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_transcribed_protos_reject_what_tf_serving_rejects():
    with pytest.raises(text_format.ParseError, match="max_batch_sizes"):
        text_format.Parse("max_batch_sizes { value: 8 }", BatchingParameters())
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 8", BatchingParameters())  # a wrapper message, not a scalar
    with pytest.raises(text_format.ParseError, match="enabled"):
        text_format.Parse("prometheus_config { enabled: true }", MonitoringConfig())
