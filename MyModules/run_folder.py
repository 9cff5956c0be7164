"""The run folder: where one training run keeps what it produced, and how those files are written.

``<course folder>/runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>/`` holds

* ``checkpoint-a.pt`` / ``checkpoint-b.pt`` - the last two epochs (see ``checkpoint.py``);
* ``metrics.csv`` - one row per finished epoch, rebuilt from the checkpoint's history at every start,
  so a kill between the checkpoint and the CSV never loses a row;
* ``run.json`` - the run's settings, the one file that holds them (:class:`RunSettings`, written by
  :func:`write_settings` when the run starts, read by :func:`read_settings`): what was asked (the
  command line's arguments; none from a notebook's ``fit``) and what ``fit`` resolved (the
  :class:`~MyModules.train.TrainConfig`, augmentation included, and ``fit(info=...)``: model, dataset...);
* ``summary.json`` - the outcome (accuracies, time, precision), once the run has finished; no settings
  but ``info``'s names (model, dataset), which label the outcome in a table of runs;
* (command line) TensorBoard logs and plots.

Every file is written whole or not at all (``atomic.py``). Whether a resumed run may change a setting is
decided here too: :data:`RESUME_MAY_CHANGE` and :func:`resume_conflicts`, for ``fit(resume=True)`` and
``python -m MyModules train --resume`` alike.

Run folders of v0.1 kept the settings in three places (``run.json``: the command line's arguments only;
``config.json``: the TrainConfig as asked; the checkpoint: ``fit``'s config and info); :func:`read_settings`
reads them too, and the first write of a resumed v0.1 run moves them into today's ``run.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import atomic, env
from .checkpoint import LEGACY_NAME, SLOTS, has_checkpoint
from .errors import RunFolderError, dead_mount_error, is_dead_mount

METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")
SETTINGS_FILE = "run.json"  # the run's settings (RunSettings)
SUMMARY_FILE = "summary.json"  # the outcome of a finished run (train.fit writes it at the end)
SETTINGS_FORMAT = "mymodules-run-2"  # in run.json; v0.1's run.json (the arguments only) has no "format"
LEGACY_CONFIG_FILE = "config.json"  # v0.1: the TrainConfig, beside run.json
LEGACY_ARG_NAMES = {"max_steps": "max_steps_per_epoch"}  # v0.1 run.json keys now named after their TrainConfig field
#: What a resumed run may set differently from how it started: where and how fast it runs and what it
#: shows, never what it learns. Every other setting of run.json (TrainConfig field, ``fit(info=...)``
#: entry, command-line argument) must stay as it started: the plan (epochs, batch size, steps, lr,
#: optimizer, schedule: the learning-rate schedule depends on it), what shapes each step (momentum, weight
#: decay, label smoothing, augmentation, seed, precision) and what is trained on what (model, dataset, data).
RESUME_MAY_CHANGE = frozenset({
    "compile", "channels_last", "log_every",  # TrainConfig: speed and progress bars (same weights up to rounding)
    "trial",  # fit(info=...): an Optuna retry continues another attempt's checkpoint under its own number
    "device", "workers", "fast", "progress", "tensorboard", "plots",  # command line: where and how it runs
    "out", "resume",  # command line: which run this is (v0.1's run.json recorded them; run.json no longer does)
})


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


# --------------------------------------------------------------------------------------------
# The run's settings: run.json, written once, read by everyone (and v0.1's three files)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSettings:
    """A run's settings: what was asked and what ``fit`` resolved; ``run.json`` holds them."""

    config: dict[str, Any]  # the TrainConfig as fit resolved it (dataclasses.asdict; augmentation as the loader does it)
    info: dict[str, Any] = field(default_factory=dict)  # fit(info=...): model, dataset, study, params, ...
    command_line: dict[str, Any] | None = None  # python -m MyModules train's arguments; None: started by fit from Python
    source: str = SETTINGS_FILE  # where they were read: run.json, "v0.1 files" or "checkpoint" (a checkpoint alone)

    def to_json(self) -> dict[str, Any]:
        return {"format": SETTINGS_FORMAT, "command_line": self.command_line, "config": self.config,
                "info": self.info}

    def same_as(self, other: RunSettings) -> bool:
        """Whether ``other`` records the same settings (wherever they were read)."""
        return _plain(self.to_json()) == _plain(other.to_json())


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists, paths as text): how saved and new settings compare."""
    return json.loads(json.dumps(value, default=str))


def write_settings(run_dir: Path, settings: RunSettings) -> Path:
    """Write ``run_dir/run.json``; a v0.1 ``config.json`` beside it goes (run.json now holds it)."""
    path = write_json(run_dir, SETTINGS_FILE, settings.to_json())
    (Path(run_dir) / LEGACY_CONFIG_FILE).unlink(missing_ok=True)
    return path


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunFolderError(f"cannot read {path} ({e}); the run folder is damaged") from e
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} does not hold a JSON object; the run folder is damaged")
    return data


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``summary.json``: the outcome of the finished run in ``run_dir`` (empty while it has not finished)."""
    return _read_json(Path(run_dir) / SUMMARY_FILE) or {}


def checkpoint_settings(checkpoint: Mapping[str, Any]) -> RunSettings:
    """The settings a checkpoint carries (its ``config`` and ``info``; see ``checkpoint.py`` for why it does)."""
    config = dict(checkpoint.get("config") or {})
    if config.get("augment") == "auto":
        # v0.1 recorded the request, not what the loader did (today only loaders of your own keep "auto"):
        # unknown, so it is neither compared nor shown.
        del config["augment"]
    return RunSettings(config, dict(checkpoint.get("info") or {}), None, source="checkpoint")


def read_settings(run_dir: str | os.PathLike, checkpoint: Mapping[str, Any] | None = None) -> RunSettings | None:
    """The settings of the run in ``run_dir``: its ``run.json``; None when it has none.

    Run folders of v0.1 are read too (``run.json`` with the arguments, ``config.json``, the checkpoint's
    info). A folder without either (a checkpoint copied alone, as an Optuna retry does) gives the
    settings of ``checkpoint``, the run's loaded checkpoint, when it is passed.
    Raises :class:`~MyModules.errors.RunFolderError` when a settings file is damaged.
    """
    run_dir = Path(run_dir)
    saved = _read_json(run_dir / SETTINGS_FILE)
    if saved is not None and saved.get("format") == SETTINGS_FORMAT:
        return RunSettings(dict(saved.get("config") or {}), dict(saved.get("info") or {}), saved.get("command_line"))
    legacy_config = _read_json(run_dir / LEGACY_CONFIG_FILE)
    if saved is None and legacy_config is None:
        return checkpoint_settings(checkpoint) if checkpoint is not None else None
    # v0.1: run.json = the command line's arguments; config.json = the TrainConfig; info in the checkpoint.
    from .loader import AUGMENTS, resolve_augment

    args = {LEGACY_ARG_NAMES.get(k, k): v for k, v in saved.items()} if saved is not None else None
    info = dict((checkpoint or {}).get("info") or {})
    config = dict(legacy_config or (checkpoint or {}).get("config") or {})
    if config.get("augment") == "auto":  # as asked; what the loader did: summary.json, else v0.1's rule by dataset
        done = read_summary(run_dir).get("augment")
        dataset = info.get("dataset") or (args or {}).get("dataset")
        if done in AUGMENTS or dataset:
            config["augment"] = done if done in AUGMENTS else resolve_augment("auto", dataset)
    return RunSettings(config, info, args, source="v0.1 files")


@dataclass(frozen=True)
class Conflict:
    """One setting a resumed run would change but must keep."""

    part: str  # "command_line", "config" or "info" (RunSettings' fields)
    key: str
    saved: Any  # as the run started
    now: Any  # as the resumed run would have it


def resume_conflicts(saved: RunSettings, now: RunSettings) -> list[Conflict]:
    """What ``now`` changes of ``saved`` that a resumed run must keep (not in :data:`RESUME_MAY_CHANGE`).

    The one check of ``fit(resume=True)`` and of the command line's ``--resume``. Only settings recorded
    on both sides are compared: the command line passes the options written on it, a v0.1 run that did
    not record a setting is not refused for it. Empty: the run may resume.
    """
    conflicts = []
    for part in ("command_line", "config", "info"):
        before, after = getattr(saved, part) or {}, getattr(now, part) or {}
        conflicts += [Conflict(part, key, before[key], after[key]) for key in after
                      if key in before and key not in RESUME_MAY_CHANGE and _plain(before[key]) != _plain(after[key])]
    return conflicts
