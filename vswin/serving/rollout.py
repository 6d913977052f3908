"""Version labels in a models.config: promote, roll back, and keep a journal of what moved.

A rollout moves the `canary` label to a new export, then `stable` to the
canary, and can move `stable` back. TF Serving refuses a label that points
at a version it has not loaded (and moving a label is only safe once both
versions are loaded), so every move first makes sure the version is served:
with a server, `GetModelStatus` says AVAILABLE; without one, the version
directory is a SavedModel. A config the server refuses is taken back out
of the file. The file is rewritten atomically (a temporary
sibling, then `os.replace`) so a polling server never reads half of it, and
each move of a label is appended to a JSON-lines journal beside the config
(`models.config.journal`), from which `rollback` finds the previous stable.

Two commands running at once must not lose a move: each holds an exclusive
lock (`flock` on `.models.config.lock` beside the config) from its read to
its last write, and before every write checks that the file still has the
content it read or last wrote (a compare-and-swap on its SHA-256), so an
editor's change made meanwhile is an error, never silently overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tensorflow_serving.config import model_server_config_pb2

from vswin.atomic import publish
from vswin.serving.model_config import LABEL_PATTERN, config_text, parse_model_config, read_model_config

if TYPE_CHECKING:
    from vswin.client.channel import RetryPolicy

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

STABLE = "stable"
JOURNAL_SUFFIX = ".journal"


class RolloutError(RuntimeError):
    """A label move that was refused; the message says why and what to do."""


class PendingLoad(RolloutError):
    """The version was added to the served versions but is not loaded yet; the label did not move."""


class ConfigChanged(RolloutError):
    """The config file changed between this command's read and its write; nothing was written."""


DEFAULT_LOCK_WAIT_S = 600.0  # a concurrent promote may wait for a load on the server (--wait, 120 s by default)


def lock_path(config_path: Path) -> Path:
    return config_path.with_name(f".{config_path.name}.lock")


@contextlib.contextmanager
def exclusive_lock(config_path: Path, wait_seconds: float = DEFAULT_LOCK_WAIT_S) -> Iterator[None]:
    """Hold the config's lock file exclusively (waiting up to `wait_seconds` for another holder)."""
    path = lock_path(Path(config_path))
    deadline = time.monotonic() + wait_seconds
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RolloutError(f"another vswin config command holds {path} (waited {wait_seconds:.0f} s); "
                                       "run this again when it has finished") from None  # fmt: skip
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_config(path: Path) -> ModelServerConfig:
    """The models.config at `path` (ValueError naming the file and the problem)."""
    return read_model_config(path)


def write_config(path: Path, config: ModelServerConfig) -> None:
    """Replace `path` with `config` in one rename, so readers see the old file or the new one."""
    _replace_text(Path(path), config_text(config))


def _replace_text(path: Path, text: str, expected: str | None = None) -> None:
    """Write `text` to `path` atomically; with `expected`, only if the file's SHA-256 still equals it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if expected is not None and digest(path.read_text()) != expected:
            raise ConfigChanged(f"{path} was changed by someone else while this command ran; nothing was written. "
                                "Check the file, then run the command again")  # fmt: skip
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_entry(config: ModelServerConfig, name: str) -> ModelConfig:
    for entry in config.model_config_list.config:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in config.model_config_list.config) or "none"
    raise RolloutError(f"model {name!r} is not in the config (models: {known})")


def journal_path(config_path: Path) -> Path:
    return Path(f"{config_path}{JOURNAL_SUFFIX}")


@dataclasses.dataclass(frozen=True)
class LabelMove:
    """One journal line: `label` of `model` moved from `previous` (None: unset) to `version`."""

    action: str  # "promote" or "rollback"
    model: str
    label: str
    version: int
    previous: int | None
    time: str = ""


def read_journal(config_path: Path) -> list[LabelMove]:
    path = journal_path(config_path)
    if not path.exists():
        return []
    moves = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            moves.append(LabelMove(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as err:
            raise RolloutError(f"{path}:{number}: not a journal record: {err}") from err
    return moves


def _append_journal(config_path: Path, move: LabelMove) -> None:
    stamped = dataclasses.replace(move, time=datetime.datetime.now(datetime.timezone.utc).isoformat())
    with journal_path(config_path).open("a") as handle:
        handle.write(json.dumps(dataclasses.asdict(stamped)) + "\n")


def stable_history(moves: list[LabelMove], model: str) -> list[int]:
    """The stack of stable versions of `model`: promotions push, rollbacks pop."""
    stack: list[int] = []
    for move in moves:
        if move.model != model or move.label != STABLE:
            continue
        if move.action == "rollback":
            if stack:
                stack.pop()
            continue
        if not stack and move.previous is not None:
            stack.append(move.previous)
        stack.append(move.version)
    return stack


def served_versions_include(entry: ModelConfig, version: int) -> bool:
    """Whether the entry's version policy can load `version` (`latest` is left to the server to judge)."""
    policy = entry.model_version_policy
    if policy.WhichOneof("policy_choice") == "specific":
        return version in policy.specific.versions
    return True


# (model entry, version) -> None if the version is loaded, else the reason it is not.
LoadedCheck = Callable[[ModelConfig, int], "str | None"]


class Rollout:
    """Label moves on one models.config; `server` (a `ServerControl`) makes them live on a running server."""

    def __init__(self, config_path: Path, loaded: LoadedCheck, server: "ServerControl | None" = None,
                 wait_seconds: float = 120.0, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_S) -> None:
        self.config_path = Path(config_path)
        self.loaded = loaded
        self.server = server
        self.wait_seconds = wait_seconds
        self.lock_wait_seconds = lock_wait_seconds
        self._expected: str | None = None  # SHA-256 of the file as this command last read or wrote it

    def promote(self, name: str, label: str, version: int | None = None, from_label: str | None = None) -> int:
        """Point `label` of `name` at `version` (or at the version `from_label` points at); returns the version."""
        if not LABEL_PATTERN.match(label):
            raise RolloutError(f"label {label!r} must match [a-zA-Z0-9_]+")
        with exclusive_lock(self.config_path, self.lock_wait_seconds):
            return self._promote(name, label, version, from_label)

    def rollback(self, name: str) -> int:
        """Move `stable` of `name` back to the stable version before the current one; returns that version."""
        with exclusive_lock(self.config_path, self.lock_wait_seconds):
            return self._rollback(name)

    def _read(self) -> ModelServerConfig:
        """Parse the config and remember its content for the compare-and-swap of the writes that follow."""
        try:
            text = self.config_path.read_text()
        except OSError as err:
            raise ValueError(f"cannot read model config file {self.config_path}: {err.strerror or err}") from err
        config = parse_model_config(text, source=str(self.config_path))
        self._expected = digest(text)
        return config

    def _promote(self, name: str, label: str, version: int | None, from_label: str | None) -> int:
        config = self._read()
        entry = model_entry(config, name)
        if (version is None) == (from_label is None):
            raise RolloutError("give exactly one of a version or a label to promote from")
        if from_label is not None:
            if from_label not in entry.version_labels:
                raise RolloutError(f"model {name!r} has no {from_label!r} label (labels: {dict(entry.version_labels)})")
            version = entry.version_labels[from_label]
        if version < 1:
            raise RolloutError(f"version must be a positive integer, not {version}")
        if not served_versions_include(entry, version):
            self._load_first(config, entry, version)
        self._move(config, entry, "promote", label, version)
        return version

    def _rollback(self, name: str) -> int:
        config = self._read()
        entry = model_entry(config, name)
        history = stable_history(read_journal(self.config_path), name)
        if len(history) < 2:
            raise RolloutError(f"no earlier stable version of {name!r} in {journal_path(self.config_path)}")
        current = entry.version_labels.get(STABLE)
        if current != history[-1]:
            raise RolloutError(f"{name!r} stable is {current}, but the journal's last stable is {history[-1]}: "
                               f"the config was edited by hand; set the label explicitly with promote")
        target = history[-2]
        if not served_versions_include(entry, target):
            raise RolloutError(f"{name!r} version {target} is no longer in the served versions; "
                               f"promote it explicitly (promote {name} --label stable --version {target})")
        self._move(config, entry, "rollback", STABLE, target)
        return target

    def _load_first(self, config: ModelServerConfig, entry: ModelConfig, version: int) -> None:
        """Add `version` to the specific policy and get it loaded before any label points at it."""
        reason = self.loaded(entry, version) if self.server is None else None
        if reason:
            raise RolloutError(f"refusing to serve {entry.name!r} version {version}: {reason}")
        entry.model_version_policy.specific.versions.append(version)
        self._apply(config)
        if self.server is None:
            raise PendingLoad(f"added version {version} to {entry.name!r}'s served versions in {self.config_path}; "
                              f"labels move only to loaded versions: run this again once the server has loaded it "
                              f"(or pass --server to wait for it)")
        self.server.wait_available(entry, version, self.wait_seconds)

    def _move(self, config: ModelServerConfig, entry: ModelConfig, action: str, label: str, version: int) -> None:
        reason = self.loaded(entry, version)
        if reason:
            raise RolloutError(f"refusing to point {entry.name!r} {label!r} at version {version}: {reason}")
        previous = entry.version_labels[label] if label in entry.version_labels else None
        entry.version_labels[label] = version
        self._apply(config)
        _append_journal(self.config_path, LabelMove(action, entry.name, label, version, previous))

    def _apply(self, config: ModelServerConfig) -> None:
        """Write `config`, then have the server load it; if it refuses, put the previous file back.

        File first: a server that also polls the file then never reads an older
        config than the one it was just sent.
        """
        previous = self.config_path.read_text()
        text = config_text(config)
        _replace_text(self.config_path, text, self._expected)
        self._expected = digest(text)
        if self.server is None:
            return
        try:
            self.server.reload(config)
        except RolloutError:
            _replace_text(self.config_path, previous, self._expected)
            self._expected = digest(previous)
            raise


class ServerControl:
    """ModelService calls on a running TF Serving (or `vswin serve`): reload the config, ask a version's state.

    A driver of the client core (vswin.client.rpc, .core): the client's
    channel settings (TLS included), retries of UNAVAILABLE within each call's
    deadline, and its GetModelStatus request and reading; the reload request
    is TF Serving's own message.
    """

    def __init__(self, target: str, timeout: float = 120.0, **channel: object) -> None:
        """`timeout` bounds each call; a reload may block until the versions it adds have loaded. Channel
        keyword arguments (tls, root_certificates, ...) go to vswin.client.ChannelSettings."""
        from vswin.client.channel import ChannelSettings, RetryPolicy
        from vswin.client.rpc import Rpc

        self.target = target
        self.timeout = timeout
        self._retry = RetryPolicy()
        self._rpc = Rpc(ChannelSettings(target=target, **channel))

    def close(self) -> None:
        self._rpc.close()

    def _call(self, call: object, timeout: float, retry: RetryPolicy | None = None) -> object:
        from vswin.client.core import Attempts

        return self._rpc.call(call, Attempts(call.path, self.target, timeout, retry or self._retry))

    def reload(self, config: ModelServerConfig) -> None:
        """HandleReloadConfigRequest with `config`; RolloutError carrying the server's message if it refuses."""
        from tensorflow_serving.apis import model_management_pb2

        from vswin.client import protos
        from vswin.client.core import Call
        from vswin.client.errors import ClientError

        request = model_management_pb2.ReloadConfigRequest(config=config)
        call = Call(protos.HANDLE_RELOAD_CONFIG, request, model_management_pb2.ReloadConfigResponse)
        try:
            response = self._call(call, self.timeout)
        except ClientError as err:
            raise RolloutError(f"{self.target}: reload failed: {err.code.name if err.code else 'no answer'}: "
                               f"{err.details or err}") from err
        if response.status.error_code != 0:
            raise RolloutError(f"{self.target}: reload refused: {response.status.error_message}")

    def version_state(self, name: str, version: int) -> str | None:
        """The version's state name (e.g. AVAILABLE, LOADING), or None when the server does not know it."""
        from vswin.client import protos
        from vswin.client import requests as rq
        from vswin.client.channel import NO_RETRY
        from vswin.client.core import Call
        from vswin.client.errors import ClientError, ModelNotFound

        call = Call(protos.GET_MODEL_STATUS[0], rq.status_request(rq.ModelRef(name, version)),
                    protos.GetModelStatusResponse)  # fmt: skip
        try:  # one attempt: callers poll, and a retried poll only logs a warning per refused connection
            response = self._call(call, min(self.timeout, 10.0), NO_RETRY)
        except ModelNotFound:
            return None
        except ClientError as err:
            raise RolloutError(f"{self.target}: GetModelStatus failed: {err.code.name if err.code else 'no answer'}: "
                               f"{err.details or err}") from err
        return next((status.state for status in rq.parse_status(response) if status.version == version), None)

    def not_available(self, entry: ModelConfig, version: int) -> str | None:
        """A `LoadedCheck`: None when the server reports the version AVAILABLE."""
        state = self.version_state(entry.name, version)
        if state == "AVAILABLE":
            return None
        return f"{self.target} reports version {version} as {state or 'unknown'}, not AVAILABLE"

    def wait_available(self, entry: ModelConfig, version: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            reason = self.not_available(entry, version)
            if reason is None:
                return
            if time.monotonic() > deadline:
                raise RolloutError(f"{reason} after {seconds:.0f} s; no label moved")
            time.sleep(0.25)
