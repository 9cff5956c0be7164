"""Where the course runs: Colab or a local machine, the course folder, the device, test mode.

Every notebook calls :func:`setup` once in its first cell and :func:`finish` in its last. ``setup`` is
safe to call again (re-running the cell, or "Run all" twice): Drive is mounted only when it is not
mounted yet, and mounted again (``force_remount``) when its mount died.

The course folder holds everything a student must not lose when the Colab runtime goes away:
datasets, checkpoints, TensorBoard logs and Optuna studies. It is

* ``$COURSE_DIR`` when that environment variable is set (lab servers, tests);
* ``/content/drive/MyDrive/pytorch-course`` in Colab (Google Drive, mounted on demand);
* ``~/pytorch-course`` elsewhere.

Colab writes files on Drive to the runtime's disk first and uploads them later: what was written in the
last minutes before a runtime ends can be lost. :func:`finish` flushes Drive (Colab's
``drive.flush_and_unmount``) and says what the notebook saved.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import (
    DeviceError,
    DriveError,
    RunFolderError,
    dead_mount_error,
    is_dead_mount,
    show_in_notebooks,
)

#: Environment variable that switches every notebook and the command line to small generated
#: data and few steps (used by the tests and by instructors checking the course quickly).
TEST_MODE_VAR = "COURSE_TEST_MODE"
#: Environment variable that overrides the course folder.
COURSE_DIR_VAR = "COURSE_DIR"

#: Environment variable naming the folder that stands in for Colab's /content (the emulated-Colab tests).
COLAB_CONTENT_VAR = "COURSE_COLAB_CONTENT"
LOCAL_COURSE_DIR = Path.home() / "pytorch-course"


def drive_mount_point() -> Path:
    """Where Colab mounts Google Drive: ``/content/drive``."""
    return Path(os.environ.get(COLAB_CONTENT_VAR, "/content")) / "drive"


def drive_course_dir() -> Path:
    """The course folder on Drive: ``/content/drive/MyDrive/pytorch-course``."""
    return drive_mount_point() / "MyDrive" / "pytorch-course"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def test_mode() -> bool:
    """True when ``COURSE_TEST_MODE`` is set to a true value (1, true, yes)."""
    return os.environ.get(TEST_MODE_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class TestModeLimits:
    """How far test mode shrinks everything: the one place that holds its numbers (tests, CI, instructors).

    Test mode only shrinks data, steps and waits; the code that runs is the code a student runs.
    Whether it is on is decided once, by :func:`test_limits`; every module takes its numbers from
    the object it returns (``tests/test_test_mode.py`` checks that no module keeps a number of its own).
    """

    __test__ = False  # not a pytest test class, despite the name

    # train.fit (train.apply_test_mode)
    epochs: int = 2  # epochs of a training run
    steps: int = 20  # training steps per epoch
    images: int = 512  # training images per epoch, whatever the batch size
    min_steps: int = 2  # but at least this many steps per epoch (so a one-cycle schedule warms up and anneals)
    # data.load_dataset
    train_size: int = 2500  # generated training images (5 CIFAR-style batches of 500)
    test_size: int = 500  # generated test images
    # tuning.objective: a study and its trials
    trials: int = 3  # Optuna trials per study
    trial_steps: int = 3  # training steps per epoch of a trial (OneCycleLR needs total steps > 4)
    trial_batch_size: int = 16  # images per step of a trial, whatever the trial suggested
    trial_test_images: int = 64  # test images a trial evaluates after each epoch
    # tuning.storage.StorageConfig.default: short beats, so a killed worker's trial is retried within seconds
    heartbeat_interval: float = 1  # seconds between beats of a running trial
    grace_period: float = 4  # seconds without a beat before a running trial counts as dead
    storage_timeout: float = 20  # seconds a database call keeps retrying before the worker stops
    # speed: a measurement that only shows it works
    speed_steps: int = 2  # timed steps of speed.training_throughput
    speed_warmup: int = 1  # untimed steps before them
    loader_passes: int = 1  # timed passes of speed.loader_epoch_seconds (after its warm-up pass)


TEST_MODE_LIMITS = TestModeLimits()


def test_limits(on: bool | None = None) -> TestModeLimits | None:
    """The test-mode caps when test mode is on, else None (nothing is capped): the one place that decides.

    ``on`` decides instead of ``COURSE_TEST_MODE`` (``data.load_dataset(test_mode=...)``).
    """
    if on is None:
        on = test_mode()
    return TEST_MODE_LIMITS if on else None


test_limits.__test__ = False  # type: ignore[attr-defined]  # not a pytest test either
test_mode.__test__ = False  # type: ignore[attr-defined]


def drive_state(mount_point: Path | None = None) -> str:
    """``"mounted"``, ``"unmounted"`` or ``"dead"`` (a mount whose FUSE daemon is gone: every file
    operation on it fails with "Transport endpoint is not connected", where ``Path.is_dir`` raises).

    It asks the file system itself (``statvfs``): ``stat`` can be answered from the kernel's cache of
    file attributes for a while after the mount died (measured on the emulated Drive's FUSE mount).
    """
    try:
        os.statvfs((mount_point or drive_mount_point()) / "MyDrive")
    except FileNotFoundError:
        return "unmounted"
    except OSError:
        return "dead"
    return "mounted"


def mount_drive(mount_point: Path | None = None) -> Path:
    """Mount Google Drive in Colab unless it is mounted; mount it again when its mount died.

    Raises :class:`~MyModules.errors.DriveError` (one Japanese sentence in a notebook) when it cannot:
    outside the notebook's kernel (a command started with ``!python``), or when Colab refuses.
    """
    mount_point = mount_point or drive_mount_point()
    state = drive_state(mount_point)
    if state == "mounted":
        return mount_point
    if state == "dead":
        print("Google Drive との接続が切れていたので、マウントし直します")
    try:
        from google.colab import drive  # only importable inside Colab

        drive.mount(str(mount_point), force_remount=state == "dead")
    except Exception as e:  # noqa: BLE001 - Colab raises ValueError, MessageError, ImportError...
        raise DriveError(f"cannot mount Google Drive at {mount_point} ({type(e).__name__}: {e}); run the "
                         "notebook's setup cell (a command started with ! cannot mount Drive)") from e
    if drive_state(mount_point) != "mounted":
        raise DriveError(f"Google Drive did not appear at {mount_point} after mounting it; choose Runtime > "
                         "Disconnect and delete runtime, then run the setup cell again")
    return mount_point


def on_drive(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies under Colab's Drive mount point."""
    return in_colab() and Path(path).expanduser().is_relative_to(drive_mount_point())


def ensure_drive(path: str | os.PathLike) -> None:
    """Before writing under Drive: make sure the mount is alive, mounting it again if it is not.

    After :func:`finish` (which unmounts) or a dead mount, a write would otherwise create the folders
    on the runtime's own disk, and the files would vanish with the runtime. Only the notebook's kernel
    can mount Drive; elsewhere (a ``!python`` command) :func:`mount_drive` says to run the setup cell.
    """
    if on_drive(path) and drive_state() != "mounted":
        mount_drive()


def course_dir(path: str | os.PathLike | None = None, *, mount: bool = True) -> Path:
    """Resolve (and create) the course folder; see the module docstring for the order."""
    if path is None:
        path = os.environ.get(COURSE_DIR_VAR)
    if path is None:
        if in_colab():
            if mount:
                mount_drive()
            path = drive_course_dir()
        else:
            path = LOCAL_COURSE_DIR
    folder = Path(path).expanduser()
    if mount:
        ensure_drive(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"the course folder {folder} is a file, not a folder; choose another "
                                 f"(--course-dir, ${COURSE_DIR_VAR})")
        folder.mkdir(parents=True, exist_ok=True)
    except RunFolderError:
        raise
    except OSError as e:
        if is_dead_mount(e):
            raise dead_mount_error(e) from e
        raise RunFolderError(f"cannot create the course folder {folder} ({e.strerror or e}); choose one you can "
                             f"write (--course-dir, ${COURSE_DIR_VAR})") from e
    return folder


def data_folder(course: Path, testing: bool) -> Path:
    """Where datasets live in the course folder; test mode keeps its generated data apart."""
    return course / ("data-test" if testing else "data")


def _best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_cuda(device: torch.device, preferred: str) -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError(f"device {preferred!r} was requested but CUDA is not available here; "
                          "use --device cpu, or switch the runtime to a GPU")
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device {preferred!r} does not exist: this machine has {count} GPU(s), "
                          f"cuda:0 to cuda:{count - 1}")


def pick_device(preferred: str | None = None) -> torch.device:
    """``preferred`` if given (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), else the best available.

    Raises :class:`~MyModules.errors.DeviceError` saying what exists here when the device does not.
    """
    if not preferred:
        return _best_device()
    try:
        device = torch.device(preferred)
    except (RuntimeError, ValueError):
        hint = " (PyTorch calls a GPU 'cuda')" if preferred.strip().lower().startswith("gpu") else ""
        raise DeviceError(f"unknown device {preferred!r}{hint}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        _check_cuda(device, preferred)
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError(f"device {preferred!r} was requested but MPS (Apple GPU) is not available here")
    elif device.type != "cpu":
        raise DeviceError(f"device {preferred!r} is not supported by the course; use cpu, cuda, cuda:N or mps")
    return device


def prefers_channels_last(device: torch.device | str) -> bool:
    """Whether convolutions run faster with NHWC (channels_last) tensors on ``device``.

    True on CUDA (Tensor Cores) and on CPU (oneDNN): measured here on 2 CPU cores, a training step
    of the tutorial Net takes 9.9 ms instead of 13.0 ms, VGG11-BN 720 ms instead of 914 ms.
    """
    return torch.device(device).type in ("cuda", "cpu")


def describe_device(device: torch.device) -> str:
    """One line naming the device, e.g. ``cuda (Tesla T4, 15.0 GiB)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return str(device)


GPU_MISSING_WARNING = """
============================================================
 警告: GPU が使えません。このノートブックは GPU ランタイム用です。
 Colab のメニュー「ランタイム」→「ランタイムのタイプを変更」で
 「T4 GPU」などを選び、「保存」してからセットアップのセルを
 もう一度実行してください。(このまま CPU でも動きますが遅くなります)
============================================================
""".strip("\n")


@dataclass
class CourseEnv:
    """What :func:`setup` found; pass its fields to the helpers that need them."""

    course_dir: Path  # persistent folder (Drive in Colab): data/, runs/, studies/
    data_dir: Path  # datasets (generated small data in test mode)
    runs_dir: Path  # one sub-folder per training run
    device: torch.device
    colab: bool
    test_mode: bool
    started: float = 0.0  # time.time() of the first setup() in this process: finish() lists what came after


def _version() -> str:
    from . import __version__

    return __version__


_STARTED: list[float] = []  # the first setup() of this process (a re-run keeps it: finish lists it all)


def _no_bytecode_on_drive() -> None:
    """Importing MyModules from Drive must not write ``__pycache__`` folders into the student's Drive."""
    if on_drive(Path(__file__)):
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # also for the programs a notebook starts


def setup(
    need_gpu: bool = False,
    device: str | None = None,
    course_path: str | os.PathLike | None = None,
    verbose: bool = True,
) -> CourseEnv:
    """Prepare a notebook or script: course folder, device, versions. Safe to call twice.

    ``need_gpu=True`` prints a loud Japanese warning (and a Python warning) when no GPU is found,
    so a student who forgot to switch the Colab runtime notices before waiting for training.
    """
    _no_bytecode_on_drive()
    colab = in_colab()
    folder = course_dir(course_path)
    testing = test_mode()
    data_dir = data_folder(folder, testing)
    runs_dir = folder / "runs"
    for sub in (data_dir, runs_dir):
        try:
            sub.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if is_dead_mount(e):
                raise dead_mount_error(e) from e
            raise RunFolderError(f"cannot create {sub} ({e.strerror or e}); choose a course folder you can "
                                 f"write (--course-dir, ${COURSE_DIR_VAR})") from e
    dev = pick_device(device)
    show_in_notebooks()  # a CourseError in a notebook: its message and a Japanese hint, no traceback
    if not _STARTED:
        _STARTED.append(time.time())
    if verbose:
        print(f"torch {torch.__version__} | CUDA {torch.version.cuda or '-'} | device {describe_device(dev)}")
        print(f"course folder: {folder}" + (" (Google Drive)" if on_drive(folder) else ""))
        print(f"MyModules {_version()}: {Path(__file__).resolve().parent}"
              + (f" (copied from {drive_course_dir() / 'MyModules'})" if Path(__file__).parents[1].name == ".mymodules"
                 else ""))
        if testing:
            print("テストモード: 小さな生成データと少ないステップで実行します")
    if need_gpu and dev.type != "cuda":
        print(GPU_MISSING_WARNING)
        warnings.warn("no GPU found: this notebook expects a GPU runtime", stacklevel=2)
    return CourseEnv(folder, data_dir, runs_dir, dev, colab, testing, _STARTED[0])


# --------------------------------------------------------------------------------------------
# The end of a notebook: everything written is on Drive for good
# --------------------------------------------------------------------------------------------

def written_since(folder: Path, since: float) -> dict[str, tuple[int, int]]:
    """``{"runs/net-...": (files, bytes)}``: what was written under ``folder`` since ``since``, grouped
    by its first two path parts (a run folder, a study file, a dataset)."""
    groups: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = Path(root) / name
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while we walk (a temporary file)
                continue
            if stat.st_mtime < since:
                continue
            key = "/".join(path.relative_to(folder).parts[:2])
            count, size = groups.get(key, (0, 0))
            groups[key] = (count + 1, size + stat.st_size)
    return groups


def remove_empty_folders(parent: str | os.PathLike) -> list[Path]:
    """Remove the folders directly under ``parent`` that hold nothing at all (a run folder made by a cell
    that then failed, before training: a blank not filled in yet); returns them."""
    parent = Path(parent)
    removed = []
    if parent.is_dir():
        for folder in parent.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                try:
                    folder.rmdir()  # fails harmlessly if another process writes into it right now
                    removed.append(folder)
                except OSError:
                    pass
    return removed


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def finish(course: CourseEnv | None = None, *, verbose: bool = True) -> None:
    """The last cell of every notebook: flush Google Drive and say what this notebook saved there.

    Colab keeps writes to Drive on the runtime's disk and uploads them later; files written in the last
    minutes are lost when the runtime ends before that. ``drive.flush_and_unmount()`` (the only flush
    Colab offers) uploads them and unmounts Drive, so to go on afterwards, run the setup cell again.
    Elsewhere the files are synced to disk (``os.sync``).
    """
    folder = course.course_dir if course is not None else course_dir()
    since = course.started if course is not None and course.started else (_STARTED[0] if _STARTED else 0.0)
    if on_drive(folder) and drive_state() != "mounted":
        raise DriveError(f"Google Drive is {drive_state()}: what this notebook wrote in the last minutes may not "
                         "have reached Drive. Re-run the setup cell, then this cell")
    remove_empty_folders(folder / "runs")  # runs that never started leave nothing among the real ones
    saved = written_since(folder, since)
    flushed = None
    if on_drive(folder):
        from google.colab import drive

        start = time.monotonic()
        drive.flush_and_unmount()
        flushed = time.monotonic() - start
    elif hasattr(os, "sync"):
        os.sync()
    if verbose:
        _report_saved(folder, saved, flushed)


def _report_saved(folder: Path, saved: dict[str, tuple[int, int]], flushed: float | None) -> None:
    if saved:
        print(f"このノートブックが {folder} に保存したもの:")
        for key, (count, size) in sorted(saved.items()):
            print(f"  {key}  ({count} ファイル, {_size(size)})")
    else:
        print(f"このノートブックが {folder} に新しく保存したものはありません")
    if flushed is not None:
        print(f"Google Drive への書き込みを終えて、Drive を切り離しました ({flushed:.0f} 秒)。"
              "続けて作業するときは、セットアップのセルをもう一度実行してください。")


_REMINDED: list[bool] = []


def remind_to_finish(path: str | os.PathLike | None) -> None:
    """After a run that wrote to Drive in Colab, say once per runtime that the last cell must run."""
    if _REMINDED or path is None or not on_drive(path):
        return
    _REMINDED.append(True)
    print("💾 Drive に保存しました。Colab は Drive への書き込みを後から行うので、ノートブックの最後の"
          "「終わり」のセル (env.finish(course)) を必ず実行してください。")
