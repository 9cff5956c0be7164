"""Secrets stay secret: a database password never reaches the terminal, a log, a CSV, a study attribute
or an exception, whatever the driver says, for the passwords users have (``@ : / % # ? &``, spaces,
non-ASCII), written raw or percent-encoded, on real PostgreSQL and MariaDB servers started here
(wrong password, server stopped, success), and for journal paths.

"Never appears" is checked for the password in every form (as written, percent-encoded, decoded) and
for each of its pieces longer than 2 characters that a URL parser could cut out (between the
characters ``@ : / ? # & = %`` and spaces, where parsers cut).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from urllib.parse import quote, unquote

import optuna
import pytest
from optuna.trial import TrialState

from MyModules.__main__ import main
from MyModules.errors import TuningError
from MyModules.tuning import storage as study_storage
from MyModules.tuning.storage import StorageConfig, StorageURLError, hide_password, open_storage
from tests.support.pg import add_mysql_user, add_postgres_user, mysql_url, postgres_server  # noqa: F401  (fixtures)
from tests.support.runs import ROOT, in_process
from tests.support.tuning import TINY_ARGS, wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)

AT = "pä ss@w:rd/%41"  # '@' (must be written %40), ':', '/', '%', a space, non-ASCII
QUERY = "Qj#wvz?kq=ü&x y"  # '#', '?', '&', '=', a space, non-ASCII: fine raw too (pieces unlike code words: tracebacks quote code)
PASSWORDS = (AT, QUERY)
CUTS = set("@:/?#&=% ")
QUICK = StorageConfig(heartbeat_interval=0.2, grace_period=1, storage_timeout=1)  # give up after 1 s


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """This worker's generated test-mode data: the commands below need not generate it again."""
    from MyModules import env

    return env.setup(verbose=False).data_dir


def fragments(password: str) -> set[str]:
    """The password as written, encoded and decoded, and every piece of 3+ characters between cuts."""
    found = set()
    for form in {password, quote(password, safe=""), unquote(password)}:
        cuts = sorted({0, len(form)} | {i + d for i, c in enumerate(form) if c in CUTS for d in (0, 1)})
        found |= {form[a:b] for a in cuts for b in cuts if b - a > 2 and set(form[a:b]) - CUTS}
    return found


def assert_hidden(password: str, *texts: str) -> None:
    for text in texts:
        leaked = sorted(f for f in fragments(password) if f in text)
        assert not leaked, f"{leaked} of the password in: {text}"


def whole_chain(error: BaseException) -> str:
    """The traceback Python would print, and every exception reachable from it (shown or not)."""
    parts, seen, e = ["".join(traceback.format_exception(error))], 0, error
    while e is not None and seen < 20:
        parts.append(f"{type(e).__name__}: {e} {e.args!r}")
        e, seen = e.__cause__ or e.__context__, seen + 1
    return "\n".join(parts)


def url(scheme: str, user: str, password: str, host: str, port: int, database: str, raw: bool) -> str:
    return f"{scheme}://{user}:{password if raw else quote(password, safe='')}@{host}:{port}/{database}"


@pytest.fixture(scope="module")
def servers(postgres_server, mysql_url):  # noqa: F811
    """Users ``u0``, ``u1`` with the passwords above on both servers: (scheme, host, port) per backend."""
    from sqlalchemy.engine import make_url

    mysql = make_url(mysql_url)
    for i, password in enumerate(PASSWORDS):
        add_postgres_user(postgres_server, f"u{i}", password)
        add_mysql_user(mysql_url, f"u{i}", password)
    return {"postgresql": ("postgresql+psycopg2", "127.0.0.1", postgres_server.port),
            "mariadb": ("mysql+pymysql", mysql.host, mysql.port)}


def check_failure(password: str, call, capsys) -> TuningError:
    with pytest.raises(TuningError) as caught:
        call()
    out = capsys.readouterr()
    assert_hidden(password, whole_chain(caught.value), out.out, out.err)
    return caught.value


def check_study(password: str, study: optuna.Study) -> None:
    """Open, write and read a study: no attribute of it holds the password."""
    trial = study.ask()
    trial.set_user_attr("run_dir", "/somewhere/trial-0000")
    study.tell(trial, 1.0)
    frozen = study.get_trials()[-1]
    assert frozen.state == TrialState.COMPLETE
    assert_hidden(password, json.dumps([study.user_attrs, frozen.user_attrs,
                                        frozen.system_attrs], ensure_ascii=False, default=str))


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_awkward_passwords_connect_when_encoded_and_are_refused_or_connect_raw(servers, backend, capsys):
    scheme, host, port = servers[backend]
    for i, password in enumerate(PASSWORDS):
        encoded = url(scheme, f"u{i}", password, host, port, f"u{i}", raw=False)
        storage = open_storage(encoded, config=QUICK)
        check_study(password, optuna.create_study(storage=storage, study_name=f"ok-{i}"))
        raw = url(scheme, f"u{i}", password, host, port, f"u{i}", raw=True)
        assert hide_password(raw) == hide_password(encoded) == f"{scheme}://u{i}:***@{host}:{port}/u{i}"
        if "@" in password:  # the server would be the part after the password's '@': refused before connecting
            error = check_failure(password, lambda: open_storage(raw, config=QUICK), capsys)  # noqa: B023
            assert "%40" in str(error) and f"u{i}:***@{host}:{port}" in str(error)
            # The library speaks English; a student in a notebook also sees the Japanese hint.
            assert isinstance(error, StorageURLError) and str(error).isascii() and "URL エンコード" in error.hint_ja
        else:  # ':', '/', '#', '?', '&', spaces and non-ASCII survive a raw URL
            check_study(password, optuna.create_study(storage=open_storage(raw, config=QUICK), study_name=f"raw-{i}"))
        out = capsys.readouterr()
        assert_hidden(password, out.out, out.err)


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_wrong_awkward_password_fails_in_one_line_without_showing_it(servers, backend, capsys):
    scheme, host, port = servers[backend]
    for password in PASSWORDS:
        wrong = password[::-1]  # u0 exists, with another password
        for raw in (True, False):
            address = url(scheme, "u0", wrong, host, port, "u0", raw)
            error = check_failure(wrong, lambda: open_storage(address, config=QUICK), capsys)  # noqa: B023
            assert str(error).startswith("cannot open the study database") and "u0:***@" in str(error)


def test_the_command_line_never_prints_the_password(servers, tmp_path, capsys, data_dir):
    """``tune`` on PostgreSQL with an encoded '@' password as users run it; the option forgotten (argparse
    echoes the stray URL); a raw '@'; a URL without its scheme (read as a journal path)."""
    scheme, host, port = servers["postgresql"]
    encoded = url(scheme, "u0", AT, host, port, "u0", raw=False)
    course = tmp_path / "course"
    common = ["--dataset", "cifar10", "--data-root", data_dir, "--epochs", "1", "--n-trials", "1", "--course-dir",
              course, *TINY_ARGS]
    result = in_process("tune", "--storage", encoded, "--study", "cli", *common)
    assert result.returncode == 0, result.stderr
    assert f"(database: {scheme}://u0:***@{host}:{port}/u0)" in result.stdout
    files = [p for p in course.rglob("*") if p.is_file() and p.suffix in (".csv", ".json", ".journal")]
    assert any(p.name == "cli-trials.csv" for p in files)
    assert_hidden(AT, result.stdout, result.stderr, *(p.read_text(encoding="utf-8") for p in files))
    study = optuna.load_study(study_name="cli", storage=open_storage(encoded))
    assert_hidden(AT, json.dumps([study.user_attrs, [t.user_attrs for t in study.trials]], ensure_ascii=False))

    for argv in (["tune", url(scheme, "u0", AT, host, port, "u0", raw=True), *common],  # forgot --storage
                 ["tune", "--storage", url(scheme, "u0", AT, host, port, "u0", raw=True), *common],
                 ["tune", "--storage=" + url(scheme, "u0", AT, host, port, "u0", raw=True), *common]):
        code = main(list(map(str, argv)))
        out = capsys.readouterr()
        assert code == 2 and out.err.startswith("error: ") and len(out.err.splitlines()) == 1, out.err
        assert_hidden(AT, out.out, out.err)

    # Without "scheme://" the URL would be a journal path: refused, no folder named after the password.
    for storage in (f"u0:{QUERY}@{host}:{port}/u0", f"postgresql+psycopg2:/u0:{QUERY}@{host}:{port}/u0"):
        code = main(["tune", "--storage", storage, *map(str, common)])
        out = capsys.readouterr()
        assert code == 2 and "scheme" in out.err and "://" in out.err, out.err
        assert_hidden(QUERY, out.out, out.err)
        assert not any(QUERY.split("?")[0] in str(p) for p in Path.cwd().iterdir())


def test_journal_paths_with_the_same_characters_work_and_are_shown_as_they_are(tmp_path, data_dir):
    folder = tmp_path / "pä ss@w:rd %41 #?"
    journal = folder / "study.journal"
    result = in_process("tune", "--storage", journal, "--study", "j", "--dataset", "cifar10", "--data-root", data_dir,
                        "--epochs", "1",
                        "--n-trials", "1", "--course-dir", folder, *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    assert f"(journal: {journal})" in result.stdout  # a path is not a secret: shown as it is
    study = optuna.load_study(study_name="j", storage=open_storage(journal))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]


def test_whatever_the_driver_says_the_password_is_cut_out(monkeypatch, capsys):
    """A driver (or SQLAlchemy) message that repeats the password, as written or cut at its '@', ':' or
    '/': the message the course shows, and every exception behind it, hide it."""
    import sqlalchemy.exc

    address = url("postgresql+psycopg2", "u", QUERY, "127.0.0.1", 1, "db", raw=False)
    echoed = f"password {QUERY!r} / {quote(QUERY, safe='')} / host {QUERY.split('?')[1]} refused"

    def chatty_driver(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception(echoed))

    assert (hide_password("postgresql+psycopg2://u@h/db?sslmode=require&password=s3cr%23t")
            == "postgresql+psycopg2://u@h/db?sslmode=require&password=***")
    monkeypatch.setattr(study_storage, "RetryingRDBStorage", chatty_driver)
    error = check_failure(QUERY, lambda: open_storage(address, config=QUICK), capsys)
    assert "refused" in str(error)  # the rest of the driver's line is kept

    def crash(*args, **kwargs):  # a bug, not a CourseError: its traceback is printed, without the password
        raise RuntimeError(echoed)

    monkeypatch.setattr(study_storage, "open_storage", crash)
    monkeypatch.setattr("MyModules.tuning.objective.open_storage", crash)
    code = main(["tune", "--storage", address, "--course-dir", "/nonexistent-course", *TINY_ARGS])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" in out.err and "RuntimeError" in out.err, out.err
    assert_hidden(QUERY, out.out, out.err)


def test_ctrl_c_prints_a_resume_command_without_the_password(servers, tmp_path, data_dir):
    """A real worker process on PostgreSQL, its output in a log file (nohup ... > log), stopped by SIGINT."""
    scheme, host, port = servers["postgresql"]
    encoded = url(scheme, "u1", QUERY, host, port, "u1", raw=False)
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "MyModules", "tune", "--storage", encoded, "--study", "sigint",
                                   "--dataset", "cifar10", "--data-root", str(data_dir), "--epochs", "30",
                                   "--n-trials", "1",
                                   "--course-dir", str(tmp_path / "course"), *TINY_ARGS],
                                  cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    storage = open_storage(encoded)

    def stopped_in_a_trial() -> bool:
        """Stop the worker (SIGSTOP); keep it stopped only while its trial is RUNNING (a trial lasts ~1 s)."""
        worker.send_signal(signal.SIGSTOP)
        running = False
        try:
            running = any(t.state == TrialState.RUNNING and "heartbeat" in t.user_attrs
                          for t in optuna.load_study(study_name="sigint", storage=storage).get_trials())
        finally:
            if not running:
                worker.send_signal(signal.SIGCONT)
        return running

    try:
        wait_for(stopped_in_a_trial, "a running trial", timeout=120, process=worker)
        worker.send_signal(signal.SIGINT)  # delivered when it runs again, inside the trial
        worker.send_signal(signal.SIGCONT)
        worker.wait(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
    text = log.read_text(encoding="utf-8")
    assert worker.returncode in (130, -signal.SIGINT), text
    assert "continue with: python -m MyModules tune --storage" in text and f"u1:***@{host}:{port}/u1" in text
    assert_hidden(QUERY, text)


def test_a_stopped_server_fails_in_one_line_without_showing_the_password(servers, postgres_server, mysql_url,  # noqa: F811
                                                                         capsys):
    """Last in this file: it stops both servers for good (real stops, not closed ports)."""
    import pymysql
    from sqlalchemy.engine import make_url

    scheme, host, port = servers["postgresql"]
    encoded = url(scheme, "u0", AT, host, port, "u0", raw=False)
    storage = open_storage(encoded, config=QUICK)  # opened while the server runs
    study = optuna.create_study(storage=storage, study_name="outage")
    assert postgres_server.stop("fast").returncode == 0  # not started again: the fixture's teardown expects either
    error = check_failure(AT, lambda: study.get_trials(), capsys)
    assert "unreachable for 1 s" in str(error) and "u0:***@" in str(error)
    for raw in (True, False):
        address = url(scheme, "u0", AT, host, port, "u0", raw)
        check_failure(AT, lambda: open_storage(address, config=QUICK), capsys)  # noqa: B023

    scheme, host, port = servers["mariadb"]
    encoded = url(scheme, "u1", QUERY, host, port, "u1", raw=False)
    storage = open_storage(encoded, config=QUICK)
    study = optuna.create_study(storage=storage, study_name="outage")
    root = make_url(mysql_url)
    connection = pymysql.connect(host=root.host, port=root.port, user=root.username, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute("SHUTDOWN")  # a real stop (the fixture's teardown finds it stopped)
    connection.close()
    wait_for(lambda: _refused(host, port), "MariaDB to stop", timeout=60)
    error = check_failure(QUERY, lambda: study.get_trials(), capsys)
    assert "unreachable for 1 s" in str(error)
    for raw in (True, False):
        address = url(scheme, "u1", QUERY, host, port, "u1", raw)
        check_failure(QUERY, lambda: open_storage(address, config=QUICK), capsys)  # noqa: B023


def _refused(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
        return False
    except OSError:
        return True
