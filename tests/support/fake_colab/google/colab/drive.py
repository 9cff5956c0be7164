"""A stand-in for ``google.colab.drive``: ``mount`` and ``flush_and_unmount`` as Colab documents them.

It imitates what Colab's own module (googlecolab/colabtools, ``google/colab/drive.py``) does and
prints, over a real FUSE mount (``tests/support/drivefs.py``) instead of Google's Drive client:

* ``mount(mountpoint, force_remount=False)``: when ``mountpoint/MyDrive`` is there and no remount is
  asked for, prints "Drive already mounted at ...; to attempt to forcibly remount, call
  drive.mount(...)" and returns. Otherwise it unmounts and kills what was there (a dead mount
  included), refuses a mount point that holds files ("Mountpoint must not already contain files"),
  starts the client and prints "Mounted at ...". It only works from the notebook's kernel: Colab
  asks the browser for permission through the kernel.
* ``flush_and_unmount()``: "Drive not mounted, so nothing to flush and unmount." when nothing is
  mounted; else uploads what was written (the client writes to the VM's disk, ``cache/``, and only
  this upload puts it in the "cloud", ``cloud/``) and unmounts. A file deleted since the last upload
  goes to ``cloud/.Trash`` (Drive keeps deleted files there for 30 days, taking quota).

The state lives in ``$COLAB_EMULATION_DIR``: ``cloud/`` (the student's Drive), ``cache/`` (the
runtime's copy), ``calls.jsonl`` (one line per call, for the tests), ``drivefs.pid``, and the switch
``refuse-mount`` (a file: the next mounts fail, as when the student does not give permission).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["flush_and_unmount", "mount"]

STATE = Path(os.environ["COLAB_EMULATION_DIR"])
CLOUD, CACHE = STATE / "cloud", STATE / "cache"
CLIENT = Path(__file__).resolve().parents[3] / "drivefs.py"


def _log(call: str, **details) -> None:
    with open(STATE / "calls.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"call": call, "time": time.time(), **details}) + "\n")


def _in_mount_table(mountpoint: str) -> bool:
    with open("/proc/mounts", encoding="utf-8") as f:
        return any(line.split()[1] == mountpoint and line.split()[2] == "fuse.drive" for line in f)


def _stop_client(mountpoint: str) -> None:
    if _in_mount_table(mountpoint):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)
    pid_file = STATE / "drivefs.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        pid_file.unlink()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _kernel():
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    """Mount the emulated Google Drive at ``mountpoint``."""
    mountpoint = os.path.expanduser(str(mountpoint))
    _log("mount", mountpoint=mountpoint, force_remount=bool(force_remount))
    if _kernel() is None:
        raise RuntimeError("drive.mount needs the notebook's kernel (Colab asks the browser for permission)")
    if (STATE / "refuse-mount").exists():
        raise ValueError("mount failed")
    if not force_remount and os.path.isdir(os.path.join(mountpoint, "MyDrive")):
        print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, call "
              f'drive.mount("{mountpoint}", force_remount=True).')
        return
    _stop_client(mountpoint)
    if os.path.islink(mountpoint):
        raise ValueError("Mountpoint must not be a symlink")
    if os.path.isdir(mountpoint) and os.listdir(mountpoint):
        raise ValueError("Mountpoint must not already contain files")
    if not (CACHE / "MyDrive").exists():  # the runtime's first mount: its copy of the student's Drive
        shutil.copytree(CLOUD / "MyDrive", CACHE / "MyDrive", symlinks=True)
    os.makedirs(mountpoint, exist_ok=True)
    with open(STATE / "drivefs.log", "ab") as log:
        client = subprocess.Popen([sys.executable, str(CLIENT), str(CACHE), mountpoint], stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    (STATE / "drivefs.pid").write_text(str(client.pid))
    deadline = time.monotonic() + timeout_ms / 1000
    while not os.path.isdir(os.path.join(mountpoint, "MyDrive")):
        if client.poll() is not None or time.monotonic() > deadline:
            raise ValueError("mount failed")
        time.sleep(0.05)
    print(f"Mounted at {mountpoint}")


def _upload() -> None:
    """What Colab's client does before it quits: the cloud becomes the runtime's copy."""
    ours, theirs = CACHE / "MyDrive", CLOUD / "MyDrive"
    for folder, dirs, files in os.walk(theirs, topdown=False):
        for name in files + dirs:
            cloud_path = Path(folder) / name
            if not (ours / cloud_path.relative_to(theirs)).exists() and not cloud_path.is_dir():
                trash = CLOUD / ".Trash" / cloud_path.relative_to(theirs)
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.replace(cloud_path, trash)
            elif cloud_path.is_dir() and not (ours / cloud_path.relative_to(theirs)).exists():
                shutil.rmtree(cloud_path)
    for folder, _dirs, files in os.walk(ours):
        target = theirs / Path(folder).relative_to(ours)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy2(Path(folder) / name, target / name)


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    """Upload what was written to the emulated Drive, then unmount it."""
    mountpoint = str(Path(os.environ.get("COURSE_COLAB_CONTENT", "/content")) / "drive")
    _log("flush_and_unmount")
    if not _in_mount_table(mountpoint):
        print("Drive not mounted, so nothing to flush and unmount.")
        return
    if not os.path.isdir(os.path.join(mountpoint, "MyDrive")):  # a dead client cannot push its changes
        raise ValueError("flush_and_unmount failed")
    _upload()
    _stop_client(mountpoint)
