"""The serving path's process settings: set before TensorFlow loads, the user's own values win.

That `vswin serve` runs TensorFlow with them (oneDNN on) is asserted on the process of
tests/serving/test_serve_cli.py."""

from __future__ import annotations

from vswin import contract, runtime


def test_apply_sets_what_is_unset_and_keeps_what_the_user_set():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    added = runtime.apply(env)
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0"  # turned off on purpose: stays off
    expected = {key: value for key, value in contract.SERVING_ENVIRONMENT.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    assert added == expected
    assert all(env[key] == value for key, value in added.items())
    assert runtime.apply(env) == {}
