"""Where an Optuna study lives so that it survives a lost runtime, and how workers share it.

Two kinds of storage, chosen by :func:`open_storage`:

* **a journal file** (default, ``<course folder>/studies/<study>.journal``, on Drive in Colab).
  Optuna's maintainers warn that SQLite on network or shared file systems corrupts and locks
  (optuna#815, #820): SQLite needs ``fcntl`` byte-range locks that Drive's FUSE mount does not give.
  The journal backend only *appends* one JSON line per operation (fsync'ed) and takes its lock by
  creating a file with ``O_CREAT | O_EXCL`` (``JournalFileOpenLock``), which needs neither
  ``fcntl`` nor symlinks. A runtime that dies loses at most the operation it was writing.
  It is meant for one runtime at a time (resume after a disconnect); Drive does not make two
  Colab sessions see each other's appends in time, so parallel workers use a database server.
* **a database URL** (``postgresql+psycopg2://user:pass@host/db``, ``mysql+pymysql://...``): a lab's
  PostgreSQL or MySQL server that many processes, machines or Colab sessions can use at once.

Both record a *heartbeat* for each running trial. A trial whose process died (runtime lost,
``kill -9``) stops beating; the next worker marks it FAIL after ``grace_period`` seconds and enqueues a
retry with the same parameters (``RetryHeartbeatStaleTrialCallback``), so no trial stays RUNNING forever.
Optuna's JournalStorage has no heartbeat of its own; :class:`HeartbeatJournalStorage` adds one.

Study names come from what the study searches (:func:`default_study_name`), and a study refuses to be
reused with a different search (:class:`StudyMismatchError`), so two experiments cannot mix by accident.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the interface optuna's heartbeat thread uses
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from . import env
from .errors import TuningError

STUDIES_DIR = "studies"  # under the course folder
IDENTITY_ATTR = "identity"  # study user attribute: what the study searches (JSON)
HEARTBEAT_ATTR = "heartbeat"  # trial system attribute (journal only): last beat, Unix seconds


class StudyMismatchError(TuningError):
    """The study name exists but was created for a different search."""


@dataclass
class StorageConfig:
    """How running trials prove they are alive, and what happens to those that stop."""

    heartbeat_interval: int = 60  # seconds between beats of a running trial
    grace_period: int = 180  # seconds without a beat before a RUNNING trial counts as dead
    max_retry: int | None = 3  # times a dead trial is re-queued with the same parameters

    def __post_init__(self):
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise ValueError("heartbeat_interval must be >= 1 s and grace_period longer than it")

    @classmethod
    def default(cls) -> StorageConfig:
        """Short beats in test mode so the tests see a killed worker's trial retried within seconds."""
        return cls(heartbeat_interval=1, grace_period=4) if env.test_mode() else cls()


def _retry_callback(config: StorageConfig):
    # Renamed in optuna 4.9 (RetryFailedTrialCallback -> RetryHeartbeatStaleTrialCallback).
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Inherit the reported accuracies: the retry resumes from the dead trial's checkpoint.
        return cls(max_retry=config.max_retry, inherit_intermediate_values=True)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """JournalStorage plus a heartbeat: each beat is one appended line (a trial system attribute)."""

    def __init__(self, backend, config: StorageConfig):
        super().__init__(backend)
        self._config = config
        self._stale_callback = _retry_callback(config)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker already declared this trial dead; its retry runs elsewhere

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            last = trial.system_attrs.get(HEARTBEAT_ATTR)
            if last is None and trial.datetime_start is not None:
                last = trial.datetime_start.replace(tzinfo=trial.datetime_start.tzinfo or timezone.utc).timestamp()
            if last is not None and now - last > self._config.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._config.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_callback

    def get_failed_trial_callback(self):  # name used by optuna < 4.9
        return self._stale_callback


def is_url(storage: str | Path | None) -> bool:
    return isinstance(storage, str) and "://" in storage


def journal_path(course_dir: str | Path, study_name: str) -> Path:
    return Path(course_dir) / STUDIES_DIR / f"{study_name}.journal"


def open_storage(storage: str | Path | None, *, course_dir: str | Path | None = None, study_name: str | None = None,
                 config: StorageConfig | None = None) -> BaseStorage:
    """A heartbeat-enabled storage for ``storage``: a database URL, a journal file path, or ``None``
    for ``<course_dir>/studies/<study_name>.journal``."""
    config = config or StorageConfig.default()
    if is_url(storage):
        return _rdb_storage(str(storage), config)
    if storage is None:
        if course_dir is None or study_name is None:
            raise ValueError("give a storage, or course_dir and study_name for the default journal file")
        path = journal_path(course_dir, study_name)
    else:
        path = Path(storage).expanduser()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        raise TuningError(f"{path}: SQLite files on Drive or shared folders corrupt and lock (optuna#815); "
                          "use a .journal file, or a database server URL for several workers")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock file's grace period frees a lock left by a process killed while writing one line.
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path), grace_period=30))
    return HeartbeatJournalStorage(backend, config)


def _rdb_storage(url: str, config: StorageConfig) -> RDBStorage:
    callback = _retry_callback(config)
    # Renamed in optuna 4.9 (failed_trial_callback -> heartbeat_stale_trial_callback).
    name = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback"
            in inspect.signature(RDBStorage).parameters else "failed_trial_callback")
    for attempt in range(3):
        try:
            # pool_pre_ping: lab servers drop idle connections; a worker that waited must reconnect.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat arguments
                return RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                  heartbeat_interval=config.heartbeat_interval, grace_period=config.grace_period,
                                  **{name: callback})
        except ImportError as e:
            raise TuningError(f"the database driver is missing ({e}); for PostgreSQL: pip install psycopg2-binary") from e
        except Exception as e:  # sqlalchemy.exc.OperationalError and friends: one line for the user
            # Workers started together on an empty database race to create optuna's tables; the
            # loser's CREATE fails once and succeeds on the next try. A server that is down fails thrice.
            if attempt == 2:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise TuningError(f"cannot open the study database {hide_password(url)}: {first}") from e
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def canonical(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` as it comes back from a storage (JSON types: tuples become lists)."""
    return json.loads(json.dumps(identity, sort_keys=True))


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(canonical(identity), sort_keys=True).encode()).hexdigest()[:8]


def default_study_name(identity: dict[str, Any], prefix: str = "study") -> str:
    """``<prefix>-<dataset>-<8 hex digits of the identity>``: same search, same name; any change, a new one."""
    dataset = re.sub(r"[^A-Za-z0-9_]+", "", str(identity.get("dataset", "data"))) or "data"
    return f"{prefix}-{dataset}{'-test' if identity.get('test_mode') else ''}-{identity_digest(identity)}"


def open_study(storage: BaseStorage, study_name: str, identity: dict[str, Any], *, direction: str = "maximize",
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study or continue it (``load_if_exists``); refuse one made for a different search."""
    study = optuna.create_study(storage=storage, study_name=study_name, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    wanted = canonical(identity)
    stored = study.user_attrs.get(IDENTITY_ATTR)
    if stored is None:
        study.set_user_attr(IDENTITY_ATTR, wanted)
    elif stored != wanted:
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise StudyMismatchError(
            f"study {study_name!r} was created for a different search (differs in: {', '.join(changed)}). "
            f"Use another study name, or leave the name out to get one derived from the search "
            f"({default_study_name(identity)}). / study {study_name!r} は別の探索設定で作られています"
            f" (違い: {', '.join(changed)})。別の名前にするか、名前を指定せず自動の名前を使ってください。")
    if study.direction != optuna.study.StudyDirection[direction.upper()]:
        raise StudyMismatchError(f"study {study_name!r} was created to {study.direction.name.lower()}, not {direction}")
    return study
