"""Where the course runs: Colab or a local machine, the course folder, the device, test mode.

Every notebook calls :func:`setup` once in its first cell. It is safe to call again (re-running the
cell, or "Run all" twice): Drive is mounted only when it is not mounted yet.

The course folder holds everything a student must not lose when the Colab runtime goes away:
datasets, checkpoints, TensorBoard logs and Optuna studies. It is

* ``$COURSE_DIR`` when that environment variable is set (lab servers, tests);
* ``/content/drive/MyDrive/pytorch-course`` in Colab (Google Drive, mounted on demand);
* ``~/pytorch-course`` elsewhere.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DeviceError, RunFolderError, show_in_notebooks

#: Environment variable that switches every notebook and the command line to small generated
#: data and few steps (used by the tests and by instructors checking the course quickly).
TEST_MODE_VAR = "COURSE_TEST_MODE"
#: Environment variable that overrides the course folder.
COURSE_DIR_VAR = "COURSE_DIR"

DRIVE_MOUNT_POINT = Path("/content/drive")
DRIVE_COURSE_DIR = DRIVE_MOUNT_POINT / "MyDrive" / "pytorch-course"
LOCAL_COURSE_DIR = Path.home() / "pytorch-course"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def test_mode() -> bool:
    """True when ``COURSE_TEST_MODE`` is set to a true value (1, true, yes)."""
    return os.environ.get(TEST_MODE_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class TestModeLimits:
    """How far test mode shrinks everything: the one place that says it (tests, CI, instructors).

    Test mode only shrinks data and steps; the code that runs is the code a student runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    epochs: int = 2  # epochs of a training run
    steps: int = 20  # training steps per epoch
    images: int = 512  # training images per epoch, whatever the batch size
    train_size: int = 2500  # generated training images (5 CIFAR-style batches of 500)
    test_size: int = 500  # generated test images
    trials: int = 3  # Optuna trials per study
    trial_steps: int = 3  # training steps per epoch of a trial (OneCycleLR needs total steps > 4)
    trial_batch_size: int = 16  # images per step of a trial, whatever the trial suggested
    trial_test_images: int = 64  # test images a trial evaluates after each epoch
    speed_steps: int = 2  # timed steps of a speed measurement


TEST_MODE_LIMITS = TestModeLimits()


def test_limits() -> TestModeLimits | None:
    """The test-mode caps when ``COURSE_TEST_MODE`` is on, else None (nothing is capped)."""
    return TEST_MODE_LIMITS if test_mode() else None


test_limits.__test__ = False  # type: ignore[attr-defined]  # not a pytest test either
test_mode.__test__ = False  # type: ignore[attr-defined]


def mount_drive(mount_point: Path = DRIVE_MOUNT_POINT) -> Path:
    """Mount Google Drive in Colab unless it is already mounted; returns the mount point."""
    if (mount_point / "MyDrive").is_dir():
        return mount_point
    from google.colab import drive  # only importable inside Colab

    drive.mount(str(mount_point))
    return mount_point


def course_dir(path: str | os.PathLike | None = None, *, mount: bool = True) -> Path:
    """Resolve (and create) the course folder; see the module docstring for the order."""
    if path is None:
        path = os.environ.get(COURSE_DIR_VAR)
    if path is None:
        if in_colab():
            if mount:
                mount_drive()
            path = DRIVE_COURSE_DIR
        else:
            path = LOCAL_COURSE_DIR
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"the course folder {folder} is a file, not a folder; choose another (--course-dir, "
                             f"${COURSE_DIR_VAR})")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
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
    colab = in_colab()
    folder = course_dir(course_path)
    testing = test_mode()
    data_dir = data_folder(folder, testing)
    runs_dir = folder / "runs"
    for sub in (data_dir, runs_dir):
        try:
            sub.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"cannot create {sub} ({e.strerror or e}); choose a course folder you can "
                                 f"write (--course-dir, ${COURSE_DIR_VAR})") from e
    dev = pick_device(device)
    show_in_notebooks()  # a CourseError in a notebook: its message and a Japanese hint, no traceback
    if verbose:
        print(f"torch {torch.__version__} | CUDA {torch.version.cuda or '-'} | device {describe_device(dev)}")
        print(f"course folder: {folder}" + (" (Google Drive)" if colab else ""))
        if testing:
            print("テストモード: 小さな生成データと少ないステップで実行します")
    if need_gpu and dev.type != "cuda":
        print(GPU_MISSING_WARNING)
        warnings.warn("no GPU found: this notebook expects a GPU runtime", stacklevel=2)
    return CourseEnv(folder, data_dir, runs_dir, dev, colab, testing)
