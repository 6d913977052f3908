"""promote/rollback against concurrent promotes and hand edits: serialised by a lock, never a silent overwrite."""

from __future__ import annotations

import fcntl
import threading
import time

import pytest

from tests.serving_config.savedmodels import write_version
from vswin.cli import main
from vswin.serving.config_tools import version_on_disk
from vswin.serving.rollout import ConfigChanged, Rollout, RolloutError, lock_path, read_config, read_journal


@pytest.fixture()
def config(tmp_path):
    for version in (1, 2, 3):
        write_version(tmp_path / "models" / "tiny", version)
    path = tmp_path / "models.config"
    assert main(["config", "generate", str(tmp_path / "models"), "--policy", "all", "--label", "stable=1",
                 "--out", str(path)]) == 0
    return path


def slow_check(entered: threading.Event | None = None, seconds: float = 0.5):
    """A LoadedCheck that takes a while (as checking a SavedModel with TensorFlow does) and says it started."""
    on_disk = version_on_disk()

    def check(entry, version):
        if entered is not None:
            entered.set()
        time.sleep(seconds)
        return on_disk(entry, version)

    return check


def test_two_promotes_at_once_both_move_their_label(config):
    entered = threading.Event()
    errors: list[BaseException] = []

    def promote(label: str, version: int, check) -> None:
        try:
            Rollout(config, check).promote("tiny", label, version)
        except BaseException as err:  # noqa: BLE001 -- reported below
            errors.append(err)

    first = threading.Thread(target=promote, args=("canary", 2, slow_check(entered)))
    first.start()
    assert entered.wait(60)  # the first promote has read the config and is checking the version
    second = threading.Thread(target=promote, args=("beta", 3, slow_check()))
    second.start()
    first.join(120)
    second.join(120)
    assert errors == []
    labels = dict(read_config(config).model_config_list.config[0].version_labels)
    assert labels == {"stable": 1, "canary": 2, "beta": 3}
    assert [(m.label, m.version) for m in read_journal(config)] == [("canary", 2), ("beta", 3)]


def test_an_edit_made_while_promoting_is_an_error_and_is_kept(config):
    edited = config.read_text().replace("stable", "blue")

    def editor_meanwhile(entry, version):
        config.write_text(edited)  # someone saves the file while the promote checks the version
        return None

    with pytest.raises(ConfigChanged, match="was changed by someone else while this command ran; nothing was written"):
        Rollout(config, editor_meanwhile).promote("tiny", "canary", 2)
    assert config.read_text() == edited
    assert read_journal(config) == []


def test_a_held_lock_makes_the_command_wait_then_give_up_saying_why(config):
    with open(lock_path(config), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RolloutError, match="another vswin config command holds .*models.config.lock"):
            Rollout(config, version_on_disk(), lock_wait_seconds=0.2).promote("tiny", "canary", 2)
    assert Rollout(config, version_on_disk()).promote("tiny", "canary", 2) == 2


def test_rollback_takes_the_lock_too(config):
    rollout = Rollout(config, version_on_disk())
    rollout.promote("tiny", "stable", 2)
    with open(lock_path(config), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RolloutError, match="another vswin config command holds"):
            Rollout(config, version_on_disk(), lock_wait_seconds=0.2).rollback("tiny")
    assert Rollout(config, version_on_disk()).rollback("tiny") == 1
