"""Throw-away database servers for the tuning tests, like a lab's study database.

PostgreSQL: finds ``initdb``/``pg_ctl`` on PATH, in /usr/local/bin or in Debian's
/usr/lib/postgresql/<ver>/bin, creates a cluster in a temporary folder, starts it on 127.0.0.1 with
a free port (its unix socket in the same folder) and stops it at the end. PostgreSQL refuses to run
as root, so as root the cluster is owned by and run as ``nobody`` (``runuser``).

MariaDB/MySQL: ``mariadb-install-db`` (or ``mysql_install_db``) creates a data folder, ``mariadbd``
(or ``mysqld``) serves it on 127.0.0.1 with a free port; the root account connects without a password
over TCP from loopback. Debian: ``apt-get install mariadb-server``.

The server objects can be stopped and started again in the middle of a test (a real outage).
Each fixture skips, saying why, only when no server can be started here.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

RUN_AS = "nobody"


def find_binaries() -> tuple[Path, Path] | None:
    places = [Path(p).parent for p in (shutil.which("initdb"), shutil.which("pg_ctl")) if p]
    places += [Path("/usr/local/bin")]
    places += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in places:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder / "initdb", folder / "pg_ctl"
    return None


def find_client(name: str) -> Path | None:
    """``psql`` / ``pg_dump`` of the same installation as ``pg_ctl`` (Debian's /usr/bin ones are wrappers
    that want a configured cluster), else the one on PATH."""
    binaries = find_binaries()
    if binaries is not None:
        candidate = binaries[1].resolve().parent / name
        if candidate.exists():
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("the database server cannot run as root and runuser is not available to start it as another user")
    return [runuser, "-u", RUN_AS, "--", *cmd]


def _server_folder(prefix: str) -> Path:
    # Directly under /tmp: the server user must be able to reach it (pytest's tmp_path is root-only).
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, user=RUN_AS)
    return folder


class PostgresServer:
    """A running PostgreSQL cluster; ``stop()`` / ``start()`` make a real outage."""

    def __init__(self, pg_ctl: Path, data: Path, log: Path, folder: Path, port: int):
        self.pg_ctl, self.data, self.log, self.folder, self.port = pg_ctl, data, log, folder, port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> subprocess.CompletedProcess:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c max_connections=50")
        return subprocess.run(_as_server_user([str(self.pg_ctl), "-D", str(self.data), "-l", str(self.log),
                                               "-o", options, "-w", "-t", "30", "start"]),
                              capture_output=True, text=True)

    def stop(self, mode: str = "fast") -> subprocess.CompletedProcess:
        return subprocess.run(_as_server_user([str(self.pg_ctl), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                              capture_output=True, text=True)


@pytest.fixture(scope="module")
def postgres_server():
    """A fresh PostgreSQL server on loopback (:class:`PostgresServer`)."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); "
                    "no initdb/pg_ctl on PATH, in /usr/local/bin or /usr/lib/postgresql/*/bin")
    initdb, pg_ctl = binaries
    folder = _server_folder("course-pg-")
    data, log, port = folder / "data", folder / "server.log", free_port()
    server = PostgresServer(pg_ctl, data, log, folder, port)
    try:
        done = subprocess.run(_as_server_user([str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust",
                                               "-E", "UTF8", "--no-sync"]), capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"initdb failed, cannot create a PostgreSQL cluster: {done.stderr.strip()[-300:]}")
        done = server.start()
        if done.returncode != 0:
            text = log.read_text() if log.exists() else done.stderr
            pytest.skip(f"PostgreSQL did not start: {text.strip()[-300:]}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres_server):
    """``postgresql+psycopg2://postgres@127.0.0.1:<port>/postgres`` of a fresh server."""
    return postgres_server.url


def _first_binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                            if os.path.exists(p)), None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def mysql_url():
    """``mysql+pymysql://root@127.0.0.1:<port>/optuna`` of a fresh MariaDB (or MySQL) server."""
    pymysql = pytest.importorskip("pymysql", reason="pymysql is not installed (pip install '.[mysql]')")
    install_db = _first_binary("mariadb-install-db", "mysql_install_db")
    server_bin = _first_binary("mariadbd", "mysqld")
    if install_db is None or server_bin is None:
        pytest.skip("MariaDB/MySQL is not installed (Debian: apt-get install mariadb-server); "
                    "no mariadb-install-db/mariadbd found")
    folder = _server_folder("course-mysql-")
    data, port = folder / "data", free_port()
    user = RUN_AS if os.geteuid() == 0 else None
    process = None
    try:
        done = subprocess.run([install_db, f"--datadir={data}", "--auth-root-authentication-method=normal",
                               "--skip-test-db", *([f"--user={user}"] if user else [])],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"{Path(install_db).name} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        process = subprocess.Popen([server_bin, "--no-defaults", f"--datadir={data}", f"--port={port}",
                                    "--bind-address=127.0.0.1", f"--socket={folder / 'mysql.sock'}",
                                    f"--pid-file={folder / 'mysql.pid'}",
                                    "--innodb-flush-log-at-trx-commit=0", *([f"--user={user}"] if user else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while True:
            try:
                connection = pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2)
                break
            except pymysql.err.OperationalError as e:
                if process.poll() is not None or time.time() > deadline:
                    pytest.skip(f"MariaDB did not start: {e} {process.stderr.read()[-300:] if process.poll() is not None else ''}")
                time.sleep(0.3)
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE optuna")
        connection.close()
        yield f"mysql+pymysql://root@127.0.0.1:{port}/optuna"
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)


def add_postgres_user(server: PostgresServer, name: str, password: str) -> None:
    """A role ``name`` that must give ``password`` over TCP (SCRAM; everyone else stays trusted), with a
    database ``name`` it owns (optuna creates its tables there)."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (password,))
        cursor.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    connection.close()
    hba = server.data / "pg_hba.conf"
    hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    done = subprocess.run(_as_server_user([str(server.pg_ctl), "-D", str(server.data), "reload"]),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def add_mysql_user(root_url: str, name: str, password: str) -> None:
    """A MariaDB/MySQL account ``name`` with ``password`` and all rights on a database ``name``."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(root_url)
    connection = pymysql.connect(host=url.host, port=url.port, user=url.username, connect_timeout=5,
                                 charset="utf8mb4", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        for host in ("%", "localhost"):  # 'localhost' too: loopback connections match it first
            quoted = host.replace("%", "%%")  # pymysql formats the statement with %
            cursor.execute(f"CREATE USER '{name}'@'{quoted}' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON `{name}`.* TO '{name}'@'{host}'")
    connection.close()
