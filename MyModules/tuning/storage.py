"""Where an Optuna study lives so that it survives a lost runtime, and how workers share it.

Two kinds of storage, chosen by :func:`open_storage`:

* **a journal file** (default, ``<course folder>/studies/<study>.journal``, on Drive in Colab).
  Optuna's maintainers warn that SQLite on network or shared file systems corrupts and locks
  (optuna#815, #820): SQLite needs ``fcntl`` byte-range locks that Drive's FUSE mount does not give.
  The journal only *appends* one JSON line per operation (fsync'ed) under a lock taken by creating
  a file with ``O_CREAT | O_EXCL`` (``JournalFileOpenLock``), which needs neither ``fcntl`` nor
  symlinks. A runtime killed mid-append (or a full disk) leaves a torn last line:
  :class:`SafeJournalFileBackend` sets it aside in ``<journal>.torn`` before anyone reads or appends,
  so the study opens with every complete operation. A journal is meant for one runtime at a time
  (resume after a disconnect); parallel workers on several machines use a database server.
* **a database URL** (``postgresql+psycopg2://user:pass@host/db``, ``mysql+pymysql://...``): a lab's
  PostgreSQL or MySQL server that many processes, machines or Colab sessions can use at once. Every
  call retries with backoff for ``StorageConfig.storage_timeout`` seconds when the server is
  unreachable (a restart, a network blip), then stops with one line.

Heartbeats (both storages, public Optuna API only): a running trial writes the Unix time into its
user attribute ``heartbeat`` every ``heartbeat_interval`` seconds (:class:`Heartbeat`). Before each
trial, :func:`fail_stale_trials` marks FAIL every RUNNING trial whose last beat (or start, for a trial
that died before its first beat) is older than ``grace_period`` and enqueues a retry with the same
parameters. A worker that itself could not reach the storage waits a full grace period after it came
back before it judges anyone, so a server blip never turns a live trial into a retry.

A database URL's password never reaches the terminal, a log, a CSV or an exception's message: URLs are
shown through :func:`hide_password`, drivers' messages through :func:`hide_secrets` (a driver may repeat
any part of it), and a raw '@' in a password is refused before anything connects.

Study names come from what the study searches (:func:`default_study_name`), and a study refuses to be
reused with a different search (:class:`StudyMismatchError`), so two experiments cannot mix by accident.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from .. import env
from ..errors import TuningError

__all__ = ["TuningError", "StudyMismatchError", "TrialLost", "StorageConfig", "Heartbeat", "open_storage",
           "open_study", "fail_stale_trials", "enqueue_retry", "default_study_name", "hide_password",
           "hide_secrets", "StorageURLError"]

STUDIES_DIR = "studies"  # under the course folder
IDENTITY_ATTR = "identity"  # study user attribute: what the study searches (JSON)
HEARTBEAT_ATTR = "heartbeat"  # trial user attribute: last beat, Unix seconds (UTC by definition)
RETRY_OF_ATTR = "retry_of"  # trial user attribute of a retry: the number of the trial it repeats
RETRIES_ATTR = "retries"  # how many times this trial's parameters have been retried so far
RESUME_FROM_ATTR = "resume_from"  # checkpoint the retry continues from (the earlier attempt's)
RUN_DIR_ATTR = "run_dir"  # trial user attribute: the trial's run folder (checkpoints, metrics.csv), a path
OLD_RUN_DIR_ATTR = "checkpoint"  # the same, as studies saved by version 0.1 named it: read with recorded_run_dir
FAIL_REASON_ATTR = "fail_reason"  # why a trial failed, in one line (diverged, lost its claim...)
RETRY_REASON_ATTR = "retry_reason"  # why the trial this one repeats stopped (no heartbeat, interrupted)
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class StudyMismatchError(TuningError):
    """The study name exists but was created for a different search."""


class TrialLost(TuningError):
    """This worker no longer owns its trial (another worker declared it dead and retries it)."""


class StorageURLError(TuningError):
    """A database URL that cannot be meant as written (a raw '@' in its password, no '://')."""

    hint_ja = ("データベース URL のパスワードに @ : / % # ? や空白などの記号があるときは、URL エンコードして書いてください"
               " (Python: urllib.parse.quote(password, safe=''))。URL は postgresql+psycopg2://ユーザー:パスワード@ホスト/"
               "データベース の形です。パスワードは画面にもログにも表示されません。")


@dataclass
class StorageConfig:
    """How running trials prove they are alive, what happens to those that stop, and how long a
    worker waits for an unreachable database before it gives up."""

    heartbeat_interval: float = 60  # seconds between beats of a running trial
    grace_period: float = 180  # seconds without a beat before a RUNNING trial counts as dead
    max_retry: int | None = 3  # times a dead trial is re-queued with the same parameters
    storage_timeout: float = 60  # seconds a database call keeps retrying before the worker stops

    def __post_init__(self):
        if self.heartbeat_interval <= 0 or self.grace_period <= 2 * self.heartbeat_interval:
            raise ValueError("heartbeat_interval must be positive and grace_period more than twice as long")
        if self.storage_timeout <= 0:
            raise ValueError("storage_timeout must be positive")

    @classmethod
    def default(cls) -> StorageConfig:
        """The defaults above; in test mode ``env.TestModeLimits``'s short beats and waits, so the tests
        see a killed worker's trial retried within seconds."""
        limits = env.test_limits()
        if limits is None:
            return cls()
        return cls(heartbeat_interval=limits.heartbeat_interval, grace_period=limits.grace_period,
                   storage_timeout=limits.storage_timeout)


# --- journal file ---------------------------------------------------------------------------------

def _salvage(line: bytes) -> tuple[bytes | None, bytes]:
    """``(operation, torn bytes)`` of a bad line. A torn write followed by another worker's append
    glues both on one line: the part from the last ``{"op_code":`` on may be a complete operation."""
    start = line.rfind(b'{"op_code":')
    if start > 0:
        try:
            json.loads(line[start:])
            return line[start:], line[:start]
        except ValueError:
            pass
    return None, line


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class SafeJournalFileBackend(BaseJournalBackend):
    """Optuna's journal file format, robust to a torn last line.

    Opening (and every append, under the lock) moves an incomplete or unreadable tail into
    ``<journal>.torn`` and truncates the journal to its last complete operation; opening also sets
    aside unreadable lines in the middle (a torn line another writer appended after). Each repair is
    reported in one line on stderr. Readers see complete lines only.
    """

    def __init__(self, path: str | Path, lock_grace_seconds: int = 30):
        self.path = Path(path)
        self.torn_path = self.path.with_name(self.path.name + ".torn")
        self._lock = JournalFileOpenLock(str(self.path), grace_period=lock_grace_seconds)
        self.path.touch(exist_ok=True)
        self._offsets: dict[int, int] = {0: 0}  # log number -> byte offset of its line
        with self._locked():
            self._repair_all()

    def _locked(self):
        backend = self

        class _Lock:
            def __enter__(self):
                while not backend._lock.acquire():
                    time.sleep(0.01)

            def __exit__(self, *exc):
                backend._lock.release()

        return _Lock()

    def _set_aside(self, torn: list[bytes], kept: int) -> None:
        with open(self.torn_path, "ab") as f:
            for piece in torn:
                f.write(piece.rstrip(b"\n") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        print(f"{self.path}: set aside {sum(len(p) for p in torn)} bytes of torn journal "
              f"({len(torn)} line(s)) in {self.torn_path}; the study continues with its {kept} complete "
              "operations", file=sys.stderr)

    def _repair_all(self) -> None:
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        good, torn = [], []
        for line in lines:
            if line.endswith(b"\n") and _parses(line):
                good.append(line)
                continue
            op, rest = _salvage(line)
            torn.append(rest)
            if op is not None and line.endswith(b"\n"):
                good.append(op if op.endswith(b"\n") else op + b"\n")
        if not torn:
            return
        self._set_aside(torn, len(good))
        clean = b"".join(good)
        if data.startswith(clean):  # only the tail is bad: cut it (offsets others hold stay valid)
            with open(self.path, "r+b") as f:
                f.truncate(len(clean))
                os.fsync(f.fileno())
        else:
            from ..atomic import write_bytes

            write_bytes(self.path, clean)

    def _repair_tail(self) -> None:
        """Cut an incomplete last line (a writer killed mid-append) before appending after it."""
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            window = min(size, 1 << 16)  # Optuna's lines are far shorter; this runs before every append
            f.seek(size - window)
            tail = f.read()
        if window < size and b"\n" not in tail[:-1]:
            return  # one line longer than the window: nothing here to judge it by
        if tail.endswith(b"\n"):
            last = tail[:-1].rsplit(b"\n", 1)[-1] + b"\n"
            if _parses(last) or len(last) == window:  # a huge line we cannot judge from here: keep it
                return
        else:
            last = tail.rsplit(b"\n", 1)[-1]
        with open(self.path, "r+b") as f:
            f.truncate(size - len(last))
            os.fsync(f.fileno())
        self._set_aside([last], self._count_lines())

    def _count_lines(self) -> int:
        with open(self.path, "rb") as f:
            return sum(1 for _ in f)

    def read_logs(self, log_number_from: int):
        with open(self.path, "rb") as f:
            start = max((n for n in self._offsets if n <= log_number_from), default=0)
            f.seek(self._offsets[start])
            offset = self._offsets[start]
            for number, line in enumerate(f, start=start):
                if not line.endswith(b"\n"):
                    return  # being written right now, or torn: the next open or append sets it aside
                offset += len(line)
                self._offsets[number + 1] = offset
                if number < log_number_from:
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # torn by a writer that did not repair first; the next open sets it aside

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        with self._locked():
            self._repair_tail()
            with open(self.path, "ab") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())


# --- database server ------------------------------------------------------------------------------

class _StorageHealth:
    """When this process last saw the storage come back after failing (Unix time; 0: never failed)."""

    def __init__(self):
        self.recovered_at = 0.0
        self.local = threading.local()  # depth of nested storage calls: only the outermost retries


HEALTH = _StorageHealth()


def _is_connection_error(error: BaseException) -> bool:
    """True when ``error`` (or anything in its cause chain) says the connection to the server was lost."""
    import sqlalchemy.exc as sa

    seen = 0
    e: BaseException | None = error
    while e is not None and seen < 10:
        if isinstance(e, (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.PendingRollbackError)):
            return True
        if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _retrying(method, name: str):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        depth = getattr(HEALTH.local, "depth", 0)
        if depth:
            return method(self, *args, **kwargs)
        HEALTH.local.depth = 1
        try:
            deadline, delay, failed = time.monotonic() + self.course_config.storage_timeout, 0.2, None
            while True:
                try:
                    result = method(self, *args, **kwargs)
                    if failed is not None:
                        HEALTH.recovered_at = time.time()
                    return result
                except Exception as e:
                    if not _is_connection_error(e):
                        raise
                    failed = e
                    if time.monotonic() + delay > deadline:
                        break
                time.sleep(delay)
                delay = min(delay * 2, self.course_config.heartbeat_interval)
            # Raised here, not inside the except block: the driver's exception, whose text might hold
            # the password, is neither the cause nor the context of what the user sees.
            raise TuningError(
                f"the study database {hide_password(self.course_url)} was unreachable for "
                f"{self.course_config.storage_timeout:.0f} s ({_first_line(failed, self.course_url)}); this worker "
                "stops. Start it again when the server is back: it continues the study")
        finally:
            HEALTH.local.depth = 0

    return call


class RetryingRDBStorage(RDBStorage):
    """RDBStorage whose every call retries (backoff, bounded by ``storage_timeout``) on a lost connection."""

    def __init__(self, url: str, config: StorageConfig, **kwargs):
        self.course_url, self.course_config = url, config
        super().__init__(_for_driver(url), **kwargs)


for _name, _method in list(vars(RDBStorage).items()):
    if (callable(_method) and not isinstance(_method, (staticmethod, classmethod)) and not _name.startswith("__")
            and _name != "__init__"):
        setattr(RetryingRDBStorage, _name, _retrying(_method, _name))


def _first_line(error: BaseException, url: str) -> str:
    """The first line of a driver's message, without ``url``'s password (drivers may repeat parts of it)."""
    text = str(error).strip()
    return hide_secrets(text.splitlines()[0], url) if text else type(error).__name__


def _for_driver(url: str) -> str:
    """``url`` as its driver needs it. pymysql sends a password as Latin-1 bytes, but servers (and the
    mysql client) hash the UTF-8 bytes of a non-ASCII password: hand pymysql those bytes as Latin-1."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    password = parsed.password
    if parsed.get_driver_name() != "pymysql" or not password or str(password).isascii():
        return url
    return parsed.set(password=str(password).encode("utf-8").decode("latin-1")).render_as_string(hide_password=False)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def driver_advice(url: str, missing: str | None = None) -> str:
    """What to install (or write) for ``url``'s database driver; ``missing``: the module that failed to import."""
    scheme = urlsplit(url).scheme.lower()
    dialect, _, driver = scheme.partition("+")
    if dialect.startswith("postgres"):
        if not driver and missing == "psycopg" and _installed("psycopg2"):
            # SQLAlchemy 2.1 reads a plain postgresql:// as psycopg 3; the course installs psycopg2.
            return ("this SQLAlchemy reads postgresql:// as psycopg 3, which is not installed; psycopg2 is: "
                    "write postgresql+psycopg2://... (or pip install 'psycopg[binary]')")
        if not driver and missing == "psycopg":
            return "write postgresql+psycopg2://... and pip install '.[postgres]' (or pip install 'psycopg[binary]')"
        return {"": "pip install psycopg2-binary (or pip install '.[postgres]')",
                "psycopg2": "pip install psycopg2-binary (or pip install '.[postgres]')",
                "psycopg": "pip install 'psycopg[binary]'", "pg8000": "pip install pg8000"}.get(
            driver, f"pip install the {driver} driver")
    if dialect in ("mysql", "mariadb"):
        if not driver and _installed("pymysql"):
            return "write mysql+pymysql://... (pymysql is installed), or pip install mysqlclient"
        return {"": "pip install mysqlclient, or write mysql+pymysql://... and pip install '.[mysql]'",
                "pymysql": "pip install pymysql (or pip install '.[mysql]')",
                "mysqldb": "pip install mysqlclient"}.get(driver, f"pip install the {driver} driver")
    return f"install the SQLAlchemy driver for {scheme}://"


def _missing_module(error: BaseException) -> str | None:
    e: BaseException | None = error
    while e is not None:
        if isinstance(e, ImportError) and getattr(e, "name", None):
            return e.name
        e = e.__cause__ or e.__context__
    return None


def _rdb_storage(url: str, config: StorageConfig) -> RDBStorage:
    if _raw_at_in_password(url):  # refused before connecting: the driver would take the rest for the host
        raise StorageURLError(f"cannot open the study database {hide_password(url)}: its password contains '@', "
                              "which ends the password in a URL; write the password URL-encoded ('@' as %40; "
                              "in Python: urllib.parse.quote(password, safe=''))")
    deadline = time.monotonic() + config.storage_timeout
    delay = 0.5
    while True:
        try:
            # pool_pre_ping: lab servers drop idle connections; a worker that waited must reconnect.
            return RetryingRDBStorage(url, config, engine_kwargs={"pool_pre_ping": True})
        except ImportError as e:
            missing = _missing_module(e)
            raise TuningError(f"the database driver for {hide_password(url)} is missing (no module "
                              f"{missing or '?'}): {driver_advice(url, missing)}") from e
        except Exception as e:  # sqlalchemy errors: one line for the user
            import sqlalchemy.exc as sa

            bad_url = isinstance(e, (sa.ArgumentError, sa.NoSuchModuleError, ValueError))  # URL parsing
            if not (bad_url or isinstance(e, (sa.SQLAlchemyError, optuna.exceptions.StorageInternalError))):
                raise  # not the database's answer: a bug, keep its traceback
            reason = _first_line(e, url)
            # Workers started together on an empty database race to create optuna's tables (the
            # loser's CREATE fails once), and a server that is restarting refuses for a moment.
            if bad_url or time.monotonic() + delay > deadline:
                break
        time.sleep(delay)
        delay = min(delay * 2, 4.0)
    # Raised outside the except block: the driver's exception is not chained to it (see _retrying).
    within = "" if bad_url else f" within {config.storage_timeout:.0f} s"
    raise TuningError(f"cannot open the study database {hide_password(url)}{within}: {reason}")


def _split_url(url: str) -> tuple[str, str, str, str] | None:
    """``(scheme, userinfo, host and the rest, query)`` as the writer meant it: the userinfo ends at the
    last '@' before the host, so a raw '@' (or '/') in a password stays in the password."""
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        return None
    host_end = rest.find("/", rest.rfind("@") + 1)
    netloc, path = (rest, "") if host_end < 0 else (rest[:host_end], rest[host_end:])
    userinfo, _, host = netloc.rpartition("@")
    return scheme, userinfo, host + path, urlsplit("x://h" + path).query if "?" in path else ""


def _password(url: str) -> str:
    parts = _split_url(url)
    return parts[1].partition(":")[2] if parts else ""


def _raw_at_in_password(url: str) -> bool:
    """True when the password holds a raw '@': a URL parser then reads the rest as the host or database."""
    if "@" not in _password(url):
        return False
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # the rest of the password did not even parse as host:port
        return True
    return any("@" in str(part or "") for part in (parsed.host, parsed.database))


_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&#]*", re.IGNORECASE)


def hide_password(url: str) -> str:
    """``url`` with its password replaced by ``***`` (a password may itself contain ``@`` or ``:``;
    one given as a ``?password=`` query parameter is hidden too)."""
    parts = _split_url(url)
    if parts is None:
        return str(url)
    scheme, userinfo, rest, _query = parts
    if not userinfo and "@" not in str(url).partition("://")[2]:
        return _QUERY_PASSWORD.sub(r"\1***", str(url))
    user, colon, _ = userinfo.partition(":")
    return _QUERY_PASSWORD.sub(r"\1***", f"{scheme}://{user}{':***' if colon else ''}@{rest}")


_CUTS = frozenset("@:/?#&=% ")  # where URL parsers (and drivers that misread a URL) cut a password


def _secrets(url: str) -> list[str]:
    """Every form in which ``url``'s password could appear in a message, longest first: as written,
    percent-decoded, as a parser stopping at its first '@' reads it, as the driver gets it, and each
    piece of 3 or more characters between the places where parsers cut it."""
    url = str(url) if "://" in str(url) else "x://" + str(url)  # a URL written without its scheme
    parts = _split_url(url)
    query = parts[3] if parts else ""
    whole = {_password(url), *re.findall(r"(?:^|&)(?:password|passwd|pwd)=([^&#]*)", query, re.IGNORECASE)}
    try:
        from sqlalchemy.engine import make_url

        whole |= {str(make_url(url).password or ""), str(make_url(_for_driver(url)).password or "")}
    except Exception:
        pass
    whole |= {unquote(w) for w in whole}
    found = set()
    for w in filter(None, whole):
        cuts = sorted({0, len(w)} | {i + d for i, c in enumerate(w) if c in _CUTS for d in (0, 1)})
        found |= {w[a:b] for a in cuts for b in cuts if b - a > 2 and set(w[a:b]) - _CUTS}
    return sorted(found, key=len, reverse=True)


def hide_secrets(text: str, url: str) -> str:
    """``text`` (a driver's message, a traceback) with ``url`` shown as :func:`hide_password` shows it
    and every trace of its password (:func:`_secrets`) replaced by ``***``."""
    text = str(text).replace(str(url), hide_password(url))
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


# --- choosing a storage -----------------------------------------------------------------------------

# postgresql+psycopg2:/u:p@h/db (one slash), or user:password@host/db: a URL that lost its "scheme://".
_URL_WITHOUT_SCHEME = re.compile(r"^(?:(?:postgres(?:ql)?|mysql|mariadb|sqlite|oracle|mssql)(?:\+\w+)?:|[^/\\]*:[^/\\]*@)",
                                 re.IGNORECASE)


def is_url(storage: str | Path | None) -> bool:
    return isinstance(storage, str) and "://" in storage


def journal_path(course_dir: str | Path, study_name: str) -> Path:
    return Path(course_dir) / STUDIES_DIR / f"{study_name}.journal"


def _refuse_sqlite(where: str) -> None:
    raise TuningError(f"{where}: SQLite on Drive or shared folders corrupts and locks (optuna#815); use a "
                      ".journal file (one runtime at a time) or a database server URL for several workers")


def open_storage(storage: str | Path | None, *, course_dir: str | Path | None = None, study_name: str | None = None,
                 config: StorageConfig | None = None) -> BaseStorage:
    """A storage for ``storage``: a database URL, a journal file path, or ``None`` for
    ``<course_dir>/studies/<study_name>.journal``. SQLite files and ``sqlite://`` URLs are refused."""
    config = config or StorageConfig.default()
    if is_url(storage):
        if str(storage).lower().startswith("sqlite"):
            _refuse_sqlite(hide_password(str(storage)))
        return _rdb_storage(str(storage), config)
    if storage is not None and _URL_WITHOUT_SCHEME.match(str(storage)):
        raise StorageURLError(f"--storage {hide_password('x://' + str(storage))[4:]} looks like a database URL "
                              "without '://' after its scheme (e.g. postgresql+psycopg2://user:password@host/db); "
                              "a journal file path has no user:password@host")
    if storage is None:
        if course_dir is None or study_name is None:
            raise ValueError("give a storage, or course_dir and study_name for the default journal file")
        path = journal_path(course_dir, study_name)
    else:
        path = Path(storage).expanduser()
    if path.suffix.lower() in SQLITE_SUFFIXES:
        _refuse_sqlite(str(path))
    env.ensure_drive(path)  # a dead or unmounted Drive: mount it again, or say so (never the VM's disk)
    if path.is_dir():
        raise TuningError(f"{path} is a folder; --storage takes a journal file, e.g. {path / 'study.journal'}, "
                          "or a database URL")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = SafeJournalFileBackend(path)
    except OSError as e:
        raise TuningError(f"cannot use {path} as a study journal: {e.strerror or e}") from e
    return JournalStorage(backend)


# --- heartbeats -------------------------------------------------------------------------------------

class Heartbeat:
    """Beats for one running trial from a daemon thread (``trial.set_user_attr``, public API).

    A beat that fails because the storage is unreachable is retried at the next interval; a beat that
    finds the trial already finished (another worker declared it dead) marks this heartbeat ``lost``,
    and :meth:`check` raises :class:`TrialLost` so the trial stops before writing anything more.
    """

    def __init__(self, trial: optuna.Trial, config: StorageConfig):
        self.trial, self.config = trial, config
        self.lost: str | None = None
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def beat(self) -> None:
        try:
            self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())
            self.beats += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            self.lost = (f"trial {self.trial.number} was declared dead by another worker (no heartbeat for "
                         f"{self.config.grace_period:.0f} s) and is retried there")

    def _run(self) -> None:
        while not self._stop.wait(self.config.heartbeat_interval) and self.lost is None:
            try:
                self.beat()
            except Exception:  # storage unreachable even after retries: try again at the next beat
                continue

    def check(self) -> None:
        """Raise :class:`TrialLost` unless this worker still owns the trial (one synchronous beat)."""
        if self.lost is None:
            self.beat()
        if self.lost is not None:
            raise TrialLost(self.lost)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.config.storage_timeout + self.config.heartbeat_interval)


def _last_sign_of_life(trial: FrozenTrial) -> float | None:
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    start = trial.datetime_start
    if start is None:
        return None
    # Optuna stores datetime.now(): local time without a zone; .timestamp() reads a naive value as local.
    return start.timestamp() if start.tzinfo is None else start.astimezone().timestamp()


def recorded_run_dir(trial: FrozenTrial) -> str | None:
    """The run folder ``trial`` recorded (a path on the machine that ran it; None before it started):
    its ``run_dir`` attribute, or ``checkpoint`` in a study saved by version 0.1. Every reader asks here."""
    return trial.user_attrs.get(RUN_DIR_ATTR) or trial.user_attrs.get(OLD_RUN_DIR_ATTR)


def enqueue_retry(study: optuna.Study, trial: FrozenTrial, config: StorageConfig, reason: str) -> bool:
    """Queue a new trial with ``trial``'s parameters that continues from its checkpoint (public API)."""
    retries = int(trial.user_attrs.get(RETRIES_ATTR, 0))
    if config.max_retry is not None and retries >= config.max_retry:
        print(f"{study.study_name}: trial {trial.number} failed ({reason}); not retried "
              f"(already retried {retries} times)")
        return False
    checkpoint = recorded_run_dir(trial) or trial.user_attrs.get(RESUME_FROM_ATTR)
    attrs = {RETRY_OF_ATTR: trial.number, RETRIES_ATTR: retries + 1, RETRY_REASON_ATTR: reason}
    if checkpoint:
        attrs[RESUME_FROM_ATTR] = checkpoint
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)
    return True


def fail_stale_trials(study: optuna.Study, config: StorageConfig) -> list[int]:
    """Mark FAIL each RUNNING trial silent for longer than the grace period and queue its retry.

    Returns the numbers of the trials this worker failed. Exactly one worker wins each trial (the
    storage refuses to finish a trial twice). Nothing is judged within a grace period after this
    process saw the storage come back: the other workers' beats were failing too.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    now = time.time()  # after the read: a read that waited out an outage has just set recovered_at
    if now - HEALTH.recovered_at < config.grace_period:
        return []
    failed = []
    for trial in running:
        last = _last_sign_of_life(trial)
        if last is None or now - last <= config.grace_period:
            continue
        reason = f"no heartbeat for {now - last:.0f} s (its worker died or froze)"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's note on telling FAIL without values
                study.tell(trial.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
            continue  # another worker failed it first, or it finished meanwhile
        failed.append(trial.number)
        enqueue_retry(study, trial, config, reason)
    return failed


# --- studies ------------------------------------------------------------------------------------------

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
