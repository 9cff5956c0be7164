"""An emulated Colab runtime for running the course's notebooks as a student does in Colab.

What Colab is, for the notebooks, and how it is imitated here (Colab itself cannot run on this
machine; everything else is real):

* a Jupyter kernel whose working directory is ``/content`` and that has imported ``google.colab``:
  a real IPython kernel started in ``<tmp>/content`` (``COURSE_COLAB_CONTENT`` tells the course that
  this folder stands in for ``/content``), with ``COLAB_RELEASE_TAG`` set as Colab sets it;
* ``google.colab.drive`` with ``mount(..., force_remount=...)`` and ``flush_and_unmount()``
  (``tests/support/fake_colab``), mounting a real FUSE file system (``tests/support/drivefs.py``) that
  can be killed to leave a dead mount ("Transport endpoint is not connected");
* the student's Drive holding ``MyDrive/pytorch-course/MyModules`` and nothing of this checkout: the
  kernel has neither the repository on its path nor the editable install of MyModules, so the setup
  cell has to find MyModules on Drive, as in a student's runtime.

``EmulatedColab(tmp).run(notebook)`` executes a notebook there; ``calls()`` lists what the notebook
asked of ``google.colab.drive``; ``cloud`` is the student's Drive as Google would keep it (written only
by ``flush_and_unmount``, like Colab's own client, which uploads from the VM's disk later).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
FAKE_COLAB = Path(__file__).resolve().parent / "fake_colab"

# The kernel's first act, as Colab's kernel imports google.colab at start. The editable install of
# MyModules (a finder on sys.meta_path) and the checkout on sys.path would let the notebook find
# MyModules without Drive, which a student's runtime cannot.
STARTUP = f"""\
import sys

sys.meta_path[:] = [f for f in sys.meta_path if not str(getattr(f, "__module__", "")).startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != {str(REPO)!r}]
import google.colab  # noqa: E402,F401
"""


def fuse_available() -> bool:
    """Whether this machine can mount a FUSE file system (the emulated Drive needs one)."""
    return Path("/dev/fuse").exists() and os.geteuid() == 0


class EmulatedColab:
    """One Colab runtime and the student's Drive, in ``tmp``; :meth:`close` unmounts everything."""

    def __init__(self, tmp: Path, mymodules: Path = REPO / "MyModules"):
        self.tmp = Path(tmp)
        self.content = self.tmp / "content"
        self.state = self.tmp / "colab"
        self.cloud = self.state / "cloud" / "MyDrive"
        self.course_on_cloud = self.cloud / "pytorch-course"
        for folder in (self.content, self.state, self.cloud):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(mymodules, self.course_on_cloud / "MyModules",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        startup = self.tmp / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text(STARTUP, encoding="utf-8")

    # --- the runtime ------------------------------------------------------------------------------
    @property
    def mount_point(self) -> Path:
        return self.content / "drive"

    @property
    def course_on_drive(self) -> Path:
        """The course folder as the notebook sees it (through the mount)."""
        return self.mount_point / "MyDrive" / "pytorch-course"

    def kernel_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "COURSE_DIR", "_COURSE_DIR_OF_TESTS", "PYTHONDONTWRITEBYTECODE")}
        env.update(PYTHONPATH=str(FAKE_COLAB), IPYTHONDIR=str(self.tmp / "ipython"), COLAB_RELEASE_TAG="emulated",
                   COURSE_COLAB_CONTENT=str(self.content), COLAB_EMULATION_DIR=str(self.state),
                   COURSE_TEST_MODE="1", MPLBACKEND="Agg")
        return env

    def client(self, nb) -> NotebookClient:
        return NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                              resources={"metadata": {"path": str(self.content)}})

    def run(self, notebook: Path):
        """Execute ``notebook`` top to bottom, as "Run all" does (on errors the later cells run too)."""
        nb = nbformat.read(notebook, as_version=4)
        self.client(nb).execute(env=self.kernel_env())
        return nb

    # --- faults -----------------------------------------------------------------------------------
    def kill_drive(self) -> None:
        """SIGKILL the Drive client: the mount stays, dead (ENOTCONN), as after a Colab disconnect."""
        pid = int((self.state / "drivefs.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.statvfs(self.mount_point / "MyDrive")  # stat may answer from the kernel's cache
            except OSError as e:
                if e.errno == errno.ENOTCONN:
                    return
            time.sleep(0.05)
        raise AssertionError("the mount did not die")

    def refuse_mount(self, refuse: bool = True) -> None:
        switch = self.state / "refuse-mount"
        switch.touch() if refuse else switch.unlink(missing_ok=True)

    # --- what happened ----------------------------------------------------------------------------
    def calls(self) -> list[dict]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def mounted(self) -> bool:
        with open("/proc/mounts", encoding="utf-8") as f:
            return any(line.split()[1] == str(self.mount_point) for line in f)

    def close(self) -> None:
        if self.mounted():
            subprocess.run(["umount", "-l", str(self.mount_point)], check=False, capture_output=True)
        pid_file = self.state / "drivefs.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def outputs_text(cell) -> str:
    """Everything a cell printed or raised, as one string."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
        elif "text/plain" in out.get("data", {}):
            parts.append(out.data["text/plain"])
    return "".join(parts)


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def walk(folder: Path):
    """Every path under ``folder`` (links not followed)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            yield Path(root) / name


def setup_printed_mymodules_from_drive(colab: EmulatedColab, nb) -> bool:
    """The setup cell says which MyModules it imported: the Drive copy, not this checkout's."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    local = colab.content / ".mymodules" / "MyModules"  # the setup cell imports a copy on the VM's disk
    return f": {local} (copied from {colab.course_on_drive / 'MyModules'})" in outputs_text(first)


def colab_problems(colab: EmulatedColab, nb) -> list[str]:
    """What a notebook run in ``colab`` did against the promises to students (empty: nothing)."""
    problems = []
    calls = colab.calls()
    mounts = [c for c in calls if c["call"] == "mount"]
    if len(mounts) != 1:
        problems.append(f"Drive was mounted {len(mounts)} times, expected once: {mounts}")
    if not calls or calls[-1]["call"] != "flush_and_unmount":
        problems.append("the notebook did not end by flushing Drive (its last cell, env.finish)")
    if colab.mounted():
        problems.append("Drive is still mounted after the last cell")
    if not setup_printed_mymodules_from_drive(colab, nb):
        problems.append("the setup cell did not import MyModules from Drive")
    cache, cloud = colab.state / "cache" / "MyDrive", colab.state / "cloud" / "MyDrive"
    for path in [*walk(cache), *walk(cloud)]:
        if path.name == "__pycache__" or path.suffix == ".pyc":
            problems.append(f"bytecode written into Drive: {path}")
        if path.is_symlink():
            problems.append(f"a symbolic link written into Drive: {path}")
    runs = cloud / "pytorch-course" / "runs"
    if runs.is_dir():
        problems += [f"an empty run folder left on Drive: {p.name}" for p in runs.iterdir() if p.is_dir() and not any(p.iterdir())]
    for path in walk(cache):  # everything written reached the student's Drive
        if path.is_file():
            uploaded = cloud / path.relative_to(cache)
            if not uploaded.is_file() or uploaded.stat().st_size != path.stat().st_size:
                problems.append(f"written but not on Drive after the last cell: {path.relative_to(cache)}")
    return problems


def checked_output_problems(expected_nb, ran_nb) -> list[str]:
    """nbval's rule for cells marked ``# NBVAL_CHECK_OUTPUT``: the same text outputs as stored."""
    def texts(cell):
        out = []
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                out.append((o["name"], "".join(o["text"])))
            elif o["output_type"] in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
                out.append(("text/plain", "".join(o["data"]["text/plain"])))
        return out

    problems = []
    for i, (want, got) in enumerate(zip(expected_nb["cells"], ran_nb.cells)):
        if want["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in "".join(want["source"]):
            if texts(want) != texts(got):
                problems.append(f"cell {i}: output changed:\n  stored {texts(want)!r}\n  now    {texts(got)!r}")
    return problems


class Session:
    """A kernel of the emulated runtime, to run a notebook's cells one at a time (``run(i)``)."""

    def __init__(self, colab: EmulatedColab, nb):
        self.colab, self.nb = colab, nb
        self.client = colab.client(nb)
        self._kernel = None

    def __enter__(self) -> Session:
        self._kernel = self.client.setup_kernel(env=self.colab.kernel_env())
        self._kernel.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._kernel.__exit__(*exc)

    def run(self, index: int):
        """Execute cell ``index`` (again, if it ran before) and return it with its new outputs."""
        cell = self.nb.cells[index]
        cell.outputs = []
        self.client.execute_cell(cell, index)
        return cell
