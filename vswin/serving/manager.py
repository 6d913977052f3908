"""Which versions of which models are loaded: version policies, labels, polling, load and unload.

Mirrors TF Serving's AspiredVersionsManager with its availability-preserving
policy: the versions a model's policy asks for ("aspired") are loaded first,
and versions no longer asked for are unloaded only once an aspired version is
available (or none is on disk any more), so a reload or a broken new version
never leaves a model without a version that works. A version that fails to
load is retried `max_load_retries` times, `load_retry_interval` seconds
apart (TF Serving's --max_num_load_retries/--load_retry_interval_micros),
staying LOADING meanwhile, so a version picked up half-copied or repaired in
place gets served; after the last try it is END with its error until it
drops out of the aspired set and comes back. Unlike TF Serving, whose start
waits for those retries, the retries run in the background (`retry_failed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from tensorflow_serving.apis import model_pb2

from vswin.serving.errors import ServingError, failed_precondition, invalid_argument, not_found
from vswin.serving.model_config import ModelConfig, ModelServerConfig, check_model_config
from vswin.serving.servable import Servable
from vswin.serving.xla import explain_xla_disabled

log = logging.getLogger(__name__)

# ModelVersionStatus.State names (get_model_status.proto).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionState:
    """One version of one model as GetModelStatus reports it."""

    version: int
    path: Path
    state: str = START
    error: ServingError | None = None
    servable: Servable | None = field(default=None, repr=False)
    attempts: int = 0  # loads tried so far
    retry_at: float | None = None  # monotonic time of the next load retry, while one is pending


@dataclass
class _Model:
    config: ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    path_warned_at: float | None = None  # last "no versions under base path" log line


# A base path without versions is an ERROR once, then a WARNING at most this often (TF Serving logs every poll).
BASE_PATH_WARNING_PERIOD_S = 60.0


def scan_versions(base_path: str | Path) -> dict[int, Path]:
    """Integer-named subdirectories of a model's base path: version -> directory."""
    base = Path(base_path)
    if not base.is_dir():
        return {}
    return {int(child.name): child for child in base.iterdir() if child.name.isdigit() and child.is_dir()}


def aspired_versions(config: ModelConfig, on_disk: dict[int, Path]) -> set[int]:
    """The versions `config`'s model_version_policy asks for among those on disk (default: latest 1)."""
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(on_disk)
    if choice == "specific":
        return set(policy.specific.versions) & set(on_disk)
    count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions else 1
    return set(sorted(on_disk)[-count:])


class ModelManager:
    """Loads, serves and unloads model versions for one ModelServerConfig at a time."""

    def __init__(
        self,
        enable_warmup: bool = False,
        warmup_iterations: int = 1,
        allow_labels_for_unavailable: bool = False,
        on_state: Callable[[str, int, str], None] | None = None,
        max_load_retries: int = 0,
        load_retry_interval: float = 60.0,
        on_loaded: Callable[[Servable], None] | None = None,
    ) -> None:
        self.enable_warmup = enable_warmup
        self.warmup_iterations = warmup_iterations
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self.max_load_retries = max_load_retries
        self.load_retry_interval = load_retry_interval
        self._on_state = on_state
        self._on_loaded = on_loaded
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()  # guards _models and version states; held only briefly
        self._reconcile_lock = threading.Lock()  # one load/unload pass at a time
        self._config = ModelServerConfig()

    @property
    def config(self) -> ModelServerConfig:
        return self._config

    def reload(self, config: ModelServerConfig) -> None:
        """Serve `config`: load what it asks for, unload the rest, then set its version labels.

        Raises ServingError (and keeps the old labels) when a label points at a
        version that is not available, as TF Serving's ReloadConfig does. A label
        on a version the new policy will not serve is rejected before anything
        loads or unloads, so such a config leaves the old one serving untouched.
        """
        try:
            check_model_config(config)
        except ValueError as err:
            raise invalid_argument(str(err)) from err
        with self._reconcile_lock:
            self._check_labels_servable(config)
            entries = {entry.name: entry for entry in config.model_config_list.config}
            with self._lock:
                removed = [name for name in self._models if name not in entries]
                for name, entry in entries.items():
                    model = self._models.setdefault(name, _Model(entry))
                    model.config = entry
            for name in removed:
                self._retire_model(name)
            aspired = {name: self._load_aspired(name) for name in entries}
            self._config = ModelServerConfig()
            self._config.CopyFrom(config)
            try:
                self._set_labels(entries, aspired)  # before any unload, so a label never points at a departing version
            finally:
                for name, versions in aspired.items():
                    self._unload_unaspired(name, versions)

    def poll(self) -> None:
        """Rescan every model's base path and load/unload versions accordingly."""
        with self._reconcile_lock:
            for name in list(self._models):
                self._unload_unaspired(name, self._load_aspired(name))

    def retry_failed(self) -> None:
        """Load again the versions whose failed load is due for a retry (see the module docstring)."""
        with self._reconcile_lock:
            for name in list(self._models):
                with self._lock:
                    model = self._models[name]
                    now = time.monotonic()
                    due = [s for s in model.versions.values() if s.retry_at is not None and s.retry_at <= now]
                if not due:
                    continue
                aspired = aspired_versions(model.config, scan_versions(model.config.base_path))
                for state in due:
                    if state.version in aspired:
                        self._attempt_load(name, state)
                    else:
                        with self._lock:
                            model.versions.pop(state.version, None)
                self._unload_unaspired(name, aspired)

    def cancel_all(self) -> None:
        """Stop the computation of every request running on any version (shutdown after the grace period)."""
        with self._lock:
            servables = [s.servable for m in self._models.values() for s in m.versions.values() if s.servable]
        for servable in servables:
            servable.cancel()

    @contextmanager
    def servable(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
        """The version a request's ModelSpec names (version, label or latest), held while the request runs."""
        with self._lock:
            chosen = self._resolve(spec)
            chosen.hold()
        try:
            yield chosen
        finally:
            chosen.release()

    def status(self, name: str, version: int | None = None, label: str = "") -> list[VersionState]:
        """Version states of `name` (one version if given); NOT_FOUND as TF Serving words it."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                served = ", ".join(sorted(self._models)) or "none"
                raise not_found(f"Could not find any versions of model {name}; models served: {served}")
            if label:
                version = self._label_version(model, name, label)
            if version:
                if version not in model.versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [_copy(model.versions[version])]
            return [_copy(state) for _, state in sorted(model.versions.items())]

    def available(self) -> dict[str, list[int]]:
        """Configured model -> its AVAILABLE versions (possibly none)."""
        with self._lock:
            return {
                name: sorted(v for v, state in model.versions.items() if state.state == AVAILABLE)
                for name, model in self._models.items()
            }

    def close(self) -> None:
        """Unload everything (waiting for requests in flight)."""
        with self._reconcile_lock:
            for name in list(self._models):
                self._retire_model(name)

    # -- resolution -------------------------------------------------------------------------------------

    def _resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        model = self._models.get(spec.name)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if model is None:
                raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            version = self._label_version(model, spec.name, spec.version_label)
        else:
            version = spec.version.value if choice == "version" else 0
        if version:
            state = model.versions.get(version) if model else None
            if state is None or state.state != AVAILABLE:
                raise self._not_found(f"Specific({spec.name}, {version})", spec.name)
            return state.servable
        ready = [v for v, state in model.versions.items() if state.state == AVAILABLE] if model else []
        if not ready:
            raise self._not_found(f"Latest({spec.name})", spec.name)
        return model.versions[max(ready)].servable

    def _not_found(self, request: str, name: str) -> ServingError:
        """TF Serving's NOT_FOUND wording, then what this server does serve, so the caller sees the mistake."""
        model = self._models.get(name)
        if model is None:
            served = ", ".join(sorted(self._models)) or "none"
            return not_found(f"Servable not found for request: {request}; models served: {served}")
        versions = "; ".join(
            f"version {v} {s.state}" + (f": {s.error.message}" if s.error else "") for v, s in sorted(model.versions.items())
        ) or f"no versions under base path {model.config.base_path}"
        return not_found(f"Servable not found for request: {request}; model {name}: {versions}")

    @staticmethod
    def _label_version(model: _Model, name: str, label: str) -> int:
        if label not in model.labels:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return model.labels[label]

    # -- load / unload ----------------------------------------------------------------------------------

    def _load_aspired(self, name: str) -> set[int]:
        """Load the versions the model's policy asks for that are not loaded; returns that aspired set."""
        with self._lock:
            model = self._models[name]
            config = model.config
        on_disk = scan_versions(config.base_path)
        self._report_base_path(name, model, on_disk)
        aspired = aspired_versions(config, on_disk)
        with self._lock:
            failed = [v for v, s in model.versions.items() if (s.error or s.retry_at is not None) and v not in aspired]
            for version in failed:
                del model.versions[version]  # a failed version gets a fresh try if it is aspired again
        for version in sorted(aspired):
            state = model.versions.get(version)
            if state is None or (state.state == END and state.error is None):
                self._load(name, model, version, on_disk[version])
        return aspired

    def _unload_unaspired(self, name: str, aspired: set[int]) -> None:
        """Unload versions outside `aspired`, unless no aspired version is available (keep serving the old)."""
        with self._lock:
            model = self._models[name]
            keep_old = aspired and not any(
                model.versions[v].state == AVAILABLE for v in aspired if v in model.versions
            )
            retiring = [
                state for v, state in model.versions.items() if v not in aspired and state.state == AVAILABLE
            ]
        if keep_old and retiring:
            log.warning("model %s: no aspired version %s is available; still serving %s", name,
                        sorted(aspired), [s.version for s in retiring])  # fmt: skip
            return
        for state in retiring:
            self._unload(name, state)

    def _report_base_path(self, name: str, model: _Model, on_disk: dict[int, Path]) -> None:
        """ERROR the first time a base path has no versions, then a WARNING at most once a minute."""
        base = model.config.base_path
        if on_disk:
            if model.path_warned_at is not None:
                log.info("model %s: versions %s found under base path %s", name, sorted(on_disk), base)
            model.path_warned_at = None
            return
        now = time.monotonic()
        if model.path_warned_at is None:
            if Path(base).is_dir():
                log.error("model %s: no versions found under base path %s: a version is a directory named by a "
                          "positive integer (e.g. %s/1) holding a SavedModel", name, base, base.rstrip("/"))  # fmt: skip
            else:
                log.error("model %s: base path %s does not exist; serving it once it appears (checked every poll)",
                          name, base)  # fmt: skip
        elif now - model.path_warned_at >= BASE_PATH_WARNING_PERIOD_S:
            log.warning("No versions of servable %s found under base path %s", name, base)
        else:
            return
        model.path_warned_at = now

    def _load(self, name: str, model: _Model, version: int, path: Path) -> None:
        state = VersionState(version, path)
        with self._lock:
            model.versions[version] = state
        self._attempt_load(name, state)

    def _attempt_load(self, name: str, state: VersionState) -> None:
        """One try at loading (and warming up) a version; on failure, schedule a retry or give up with END."""
        version, path = state.version, state.path
        state.attempts += 1
        state.retry_at = None
        self._set_state(name, state, LOADING)
        tries = f" (retry {state.attempts - 1} of {self.max_load_retries})" if state.attempts > 1 else ""
        log.info("loading model %s version %d from %s%s", name, version, path, tries)
        started = time.monotonic()
        try:
            servable = Servable(name, version, path)
            if self.enable_warmup:
                servable.warmup(self.warmup_iterations)
        except Exception as err:  # a corrupt SavedModel may fail in many ways; report it, keep serving others
            code = err.code if isinstance(err, ServingError) else grpc.StatusCode.UNKNOWN
            message = explain_xla_disabled(f"loading model {name} version {version} from {path} failed: {err}")
            if state.attempts <= self.max_load_retries:
                state.retry_at = time.monotonic() + max(0.0, self.load_retry_interval)
                log.error("%s; retrying in %g s (%d of %d retries left)", message, max(0.0, self.load_retry_interval),
                          self.max_load_retries - state.attempts + 1, self.max_load_retries)  # fmt: skip
                return
            state.error = ServingError(code, message)
            log.error("%s", message)
            self._set_state(name, state, END)
            return
        with self._lock:
            state.servable = servable
        self._set_state(name, state, AVAILABLE)
        log.info("model %s version %d is serving (loaded in %.1f s)", name, version, time.monotonic() - started)
        if self._on_loaded is not None:
            self._on_loaded(servable)

    def _unload(self, name: str, state: VersionState) -> None:
        self._set_state(name, state, UNLOADING)
        log.info("unloading model %s version %d", name, state.version)
        state.servable.unload()
        with self._lock:
            state.servable = None
        self._set_state(name, state, END)

    def _retire_model(self, name: str) -> None:
        with self._lock:
            states = [s for s in self._models[name].versions.values() if s.state == AVAILABLE]
        for state in states:
            self._unload(name, state)
        with self._lock:
            del self._models[name]

    def _set_state(self, name: str, state: VersionState, value: str) -> None:
        with self._lock:
            state.state = value
        if self._on_state is not None:  # a failed load is END in GetModelStatus, ERROR in metrics
            self._on_state(name, state.version, "ERROR" if value == END and state.error else value)

    def _label_allowed(self, name: str, label: str, ready: bool) -> bool:
        """A label may point at a version that is not ready only when new and the server allows it."""
        model = self._models.get(name)
        new_label = model is None or label not in model.labels
        return ready or (self.allow_labels_for_unavailable and new_label)

    def _check_labels_servable(self, config: ModelServerConfig) -> None:
        """FAILED_PRECONDITION for a label on a version that `config`'s own policy will not serve."""
        for entry in config.model_config_list.config:
            aspired = aspired_versions(entry, scan_versions(entry.base_path)) if entry.version_labels else set()
            for label, version in entry.version_labels.items():
                with self._lock:
                    allowed = self._label_allowed(entry.name, label, version in aspired)
                if not allowed:
                    raise _unavailable_label(entry.name, version)

    def _set_labels(self, entries: dict[str, ModelConfig], aspired: dict[str, set[int]]) -> None:
        with self._lock:
            updates: dict[str, dict[str, int]] = {}
            for name, entry in entries.items():
                model = self._models[name]
                for label, version in entry.version_labels.items():
                    state = model.versions.get(version)
                    ready = state is not None and state.state == AVAILABLE and version in aspired[name]
                    if not self._label_allowed(name, label, ready):
                        raise _unavailable_label(name, version)
                updates[name] = dict(entry.version_labels)
            for name, labels in updates.items():
                self._models[name].labels = labels


def _unavailable_label(name: str, version: int) -> ServingError:
    return failed_precondition(
        f"Request to assign label to version {version} of model {name}, which is not currently available for inference"
    )


def _copy(state: VersionState) -> VersionState:
    return VersionState(state.version, state.path, state.state, state.error, attempts=state.attempts,
                        retry_at=state.retry_at)
