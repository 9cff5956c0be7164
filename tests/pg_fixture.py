"""A throw-away PostgreSQL server for the tuning tests, like a lab's study database.

Finds ``initdb``/``pg_ctl`` on PATH, in /usr/local/bin or in Debian's /usr/lib/postgresql/<ver>/bin,
creates a cluster in a temporary folder, starts it on 127.0.0.1 with a free port (its unix socket in
the same folder) and stops it at the end. PostgreSQL refuses to run as root, so as root the cluster
is owned by and run as ``nobody`` (``runuser``). Skips, saying why, only when no server can be started.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("PostgreSQL cannot run as root and runuser is not available to start it as another user")
    return [runuser, "-u", RUN_AS, "--", *cmd]


@pytest.fixture(scope="module")
def postgres_url():
    """``postgresql+psycopg2://postgres@127.0.0.1:<port>/postgres`` of a fresh server."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); "
                    "no initdb/pg_ctl on PATH, in /usr/local/bin or /usr/lib/postgresql/*/bin")
    initdb, pg_ctl = binaries
    # Directly under /tmp: the server user must be able to reach it (pytest's tmp_path is root-only).
    folder = Path(tempfile.mkdtemp(prefix="course-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, user=RUN_AS)
    data, log, port = folder / "data", folder / "server.log", free_port()
    try:
        done = subprocess.run(_as_server_user([str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust",
                                               "-E", "UTF8", "--no-sync"]), capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"initdb failed, cannot create a PostgreSQL cluster: {done.stderr.strip()[-300:]}")
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
                   "-c fsync=off -c max_connections=50")
        done = subprocess.run(_as_server_user([str(pg_ctl), "-D", str(data), "-l", str(log), "-o", options,
                                               "-w", "-t", "30", "start"]), capture_output=True, text=True)
        if done.returncode != 0:
            text = log.read_text() if log.exists() else done.stderr
            pytest.skip(f"PostgreSQL did not start: {text.strip()[-300:]}")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
