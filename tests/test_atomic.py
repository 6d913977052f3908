"""Atomically published files keep the permissions a server running as another user needs."""

from __future__ import annotations

import os
import stat
import tempfile

from vswin.atomic import publish


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "models.config"
    target.write_text("old")
    os.chmod(target, 0o640)
    fd, tmp = tempfile.mkstemp(dir=tmp_path)  # created 0600
    os.close(fd)
    publish(tmp, target)
    assert mode(target) == 0o640 and not os.path.exists(tmp)


def test_a_new_file_gets_the_mode_of_a_plain_write(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    fd, tmp = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    publish(tmp, tmp_path / "new")
    assert mode(tmp_path / "new") == mode(plain)


def test_rewritten_models_config_stays_readable(tmp_path):
    from vswin.serving.model_config import parse_model_config
    from vswin.serving.rollout import write_config

    path = tmp_path / "models.config"
    path.write_text("")
    os.chmod(path, 0o644)
    write_config(path, parse_model_config('model_config_list { config { name: "m" base_path: "/m" } }'))
    assert mode(path) == 0o644 and 'name: "m"' in path.read_text()
