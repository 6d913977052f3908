"""Failed loads are retried as TF Serving retries them (defect 6); a missing base path is reported, not spammed."""

from __future__ import annotations

import logging
import shutil

import pytest

from tests.serving import savedmodels
from tests.serving.requests import config_for, served_version, states, status_request, wait_for
from vswin.cli import build_parser
from vswin.serving import manager as manager_module
from vswin.serving.main import options_from_args
from vswin.serving.manager import ModelManager

pytestmark = pytest.mark.slow


def test_retry_flags_take_tf_servings_defaults():
    options = options_from_args(build_parser().parse_args(["serve", "--model_base_path=/m"]))
    assert (options.max_num_load_retries, options.load_retry_interval_micros) == (5, 60_000_000)
    options = options_from_args(build_parser().parse_args(
        ["serve", "--model_base_path=/m", "--max_num_load_retries=0", "--load_retry_interval_micros=250000"]))  # fmt: skip
    assert (options.max_num_load_retries, options.load_retry_interval_micros) == (0, 250_000)


def test_a_half_written_version_repaired_in_place_becomes_available(start_server, stubs, model_base, tiny_version, caplog):
    half = model_base / "2"  # picked up mid-copy: the directory is there, its saved_model.pb is not finished
    half.mkdir()
    (half / "saved_model.pb").write_bytes((tiny_version / "saved_model.pb").read_bytes()[:100])
    with caplog.at_level(logging.INFO, logger="vswin.serving.manager"):
        server = start_server(config_for(model_base, "all {}"), max_num_load_retries=1000,
                              load_retry_interval_micros=100_000)  # fmt: skip
        predict, models = stubs(server)
        assert states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE", 2: "LOADING"}
        shutil.rmtree(half)
        shutil.copytree(tiny_version, half)  # the copy finishes
        wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE",
                                                                                               2: "AVAILABLE"},
                 timeout=120, what="the repaired version to load")  # fmt: skip
    assert served_version(predict) == 2
    assert "failed: " in caplog.text and "retrying in 0.1 s" in caplog.text
    assert "loading model tiny version 2 from" in caplog.text and "(retry 1 of 1000)" in caplog.text


def test_a_version_that_keeps_failing_ends_after_the_last_retry(start_server, stubs, model_base, caplog):
    savedmodels.make_corrupt_version(model_base, 2)
    with caplog.at_level(logging.INFO, logger="vswin.serving.manager"):
        server = start_server(config_for(model_base, "all {}"), max_num_load_retries=2,
                              load_retry_interval_micros=50_000)  # fmt: skip
        _, models = stubs(server)
        wait_for(lambda: states(models.GetModelStatus(status_request("tiny"), timeout=30)) == {1: "AVAILABLE", 2: "END"},
                 timeout=120, what="the retries to run out")  # fmt: skip
    assert "(retry 2 of 2)" in caplog.text and "(retry 3 of 2)" not in caplog.text
    response = models.GetModelStatus(status_request("tiny", 2), timeout=30)
    assert str(model_base / "2") in response.model_version_status[0].status.error_message


def test_a_missing_base_path_is_one_error_then_a_rare_warning(tmp_path, tiny_version, caplog, monkeypatch):
    base = tmp_path / "not_there_yet"
    manager = ModelManager()
    with caplog.at_level(logging.INFO, logger="vswin.serving.manager"):
        manager.reload(config_for(base))
        for _ in range(5):
            manager.poll()
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert f"model tiny: base path {base} does not exist" in caplog.records[0].getMessage()
        monkeypatch.setattr(manager_module, "BASE_PATH_WARNING_PERIOD_S", 0.0)  # the minute has passed
        manager.poll()
        assert caplog.records[-1].levelname == "WARNING"
        assert caplog.records[-1].getMessage() == f"No versions of servable tiny found under base path {base}"
        savedmodels.copy_version(tiny_version, base, 1)
        manager.poll()
    assert f"model tiny: versions [1] found under base path {base}" in caplog.text
    assert manager.available() == {"tiny": [1]}
    manager.close()
