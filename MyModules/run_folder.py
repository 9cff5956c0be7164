"""The run folder: where one training run keeps what it produced, and how those files are written.

``<course folder>/runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>/`` holds

* ``checkpoint-a.pt`` / ``checkpoint-b.pt`` - the last two epochs (see ``checkpoint.py``);
* ``metrics.csv`` - one row per finished epoch, rebuilt from the checkpoint's history at every start,
  so a kill between the checkpoint and the CSV never loses a row;
* ``config.json`` - the :class:`~MyModules.train.TrainConfig`; ``summary.json`` - the outcome;
* (command line) ``run.json`` - the arguments, TensorBoard logs and plots.

Every file is written whole or not at all (``atomic.py``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import atomic, env
from .checkpoint import LEGACY_NAME, SLOTS, has_checkpoint
from .errors import RunFolderError, dead_mount_error, is_dead_mount

METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


def prepare(run_dir: str | os.PathLike) -> Path:
    """Create ``run_dir`` if needed, check that it can be written, and remove temp files of killed writes."""
    run_dir = Path(run_dir)
    env.ensure_drive(run_dir)  # a dead or unmounted Drive: mount it again, or say so (never the VM's disk)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a folder: choose another run folder (--out)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"cannot create the run folder {run_dir} ({e.strerror or e}); choose a folder "
                             "you can write (--out, --course-dir)") from e
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write into the run folder {run_dir} (permission denied); choose a folder "
                             "you can write (--out, --course-dir)")
    atomic.remove_stale_temps(run_dir)
    return run_dir


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """A fresh folder ``runs_dir/<name>-<YYYYmmdd-HHMMSS>`` (never an earlier run's).

    Empty run folders of earlier cells that failed before training (a blank not filled in yet) are
    removed first, so they do not pile up among the real runs.
    """
    remove_empty_runs(runs_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return prepare(path)


def remove_empty_runs(runs_dir: str | Path) -> list[Path]:
    """Remove the run folders under ``runs_dir`` that hold nothing at all; returns them."""
    return env.remove_empty_folders(runs_dir)


def remove_unstarted_run(run_dir: Path, written: Sequence[str]) -> None:
    """After a run failed before its first checkpoint: remove the files it wrote (``written``), and the
    folder if that leaves it empty, so a run that never trained does not look like one."""
    if has_checkpoint(run_dir):
        return
    for name in written:
        (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:  # other files (TensorBoard logs of a callback...) stay, with their folder
        pass


def _newest_mtime(run_dir: Path) -> int:
    return max((run_dir / n).stat().st_mtime_ns for n in (*SLOTS, LEGACY_NAME) if (run_dir / n).exists())


def latest_run_dir(runs_dir: str | Path) -> Path | None:
    """The run folder under ``runs_dir`` whose checkpoint was written last, or None."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return None
    runs = [p for p in runs_dir.iterdir() if p.is_dir() and has_checkpoint(p)]
    return max(runs, key=_newest_mtime) if runs else None


def metrics_csv(history: Sequence[dict]) -> str:
    """The text of ``metrics.csv`` for ``history`` (one row per epoch, columns METRICS_COLUMNS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def _writing(path: Path, write) -> Path:
    try:
        return write()
    except OSError as e:
        if is_dead_mount(e):
            raise dead_mount_error(e) from e
        raise RunFolderError(f"cannot write {path} ({e.strerror or e}); the previous version is kept: free some "
                             "space or fix the folder, then resume") from e


def write_metrics(run_dir: Path, history: Sequence[dict]) -> Path:
    path = Path(run_dir) / "metrics.csv"
    return _writing(path, lambda: atomic.write_text(path, metrics_csv(history)))


def write_json(run_dir: Path, name: str, data: dict) -> Path:
    path = Path(run_dir) / name
    return _writing(path, lambda: atomic.write_json(path, data))
