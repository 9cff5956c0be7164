"""Real run folders for the inspect / predict / export tests, made once per test session.

Each is made the way users make them: ``python -m MyModules train`` in a subprocess (test mode, so
small generated data in the real formats), or ``train.fit`` from Python for a 1-channel model (the
command line's models take 3 channels). ``killed`` is a run stopped with SIGKILL after its first
epoch's checkpoint, ``resumed`` the same run continued with ``--resume``.

Under ``pytest -n`` the first worker that asks makes a run, in the folder all workers share, and the
others wait for it and read it (:func:`made_once`). Tests read these runs or copy them; the one file a
test adds (export's model.onnx) is written atomically.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch import nn

ROOT = Path(__file__).resolve().parents[2]  # the repository
QUIET = ["--no-progress", "--no-plots", "--no-tensorboard"]


def runs_root() -> Path:
    # The controller's course folder (conftest.py): one for every pytest -n worker.
    return Path(os.environ.get("_COURSE_DIR_OF_TESTS", os.environ["COURSE_DIR"])) / "fixture-runs"


def made_once(name: str, make: Callable[[Path], object]) -> Path:
    """``runs_root() / name``, made by ``make(folder)`` once per test session, whichever worker asks first."""
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    out, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # what a failed attempt left
            make(out)
            done.touch()
    return out


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m MyModules ARGS`` as a real process; each command keeps at least one test through it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # COURSE_TEST_MODE and COURSE_DIR come from conftest
    return subprocess.run([sys.executable, "-m", "MyModules", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def in_process(*args: str) -> subprocess.CompletedProcess:
    """What :func:`cli` returns, from ``main(ARGS)`` (what ``python -m MyModules`` runs) in this process.

    Saves each call a new interpreter's 3 s of imports (torch, torch._dynamo).
    """
    from MyModules.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return subprocess.CompletedProcess(["python", "-m", "MyModules", *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


@functools.cache
def trained_run(dataset: str) -> Path:
    """A finished 2-epoch run of the tutorial Net on ``dataset`` (synthetic: colour, mnist: grayscale)."""
    def make(out: Path) -> None:
        result = cli("train", "--dataset", dataset, "--epochs", "2", "--batch-size", "32", "--no-amp",
                     "--out", out, *QUIET)
        assert result.returncode == 0, result.stderr

    return made_once(f"net-{dataset}", make)


@functools.cache
def killed_run() -> Path:
    """A run of 2 planned epochs killed (SIGKILL) as soon as epoch 1 is saved."""
    return made_once("killed", _kill_after_the_first_epoch)


def _kill_after_the_first_epoch(out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "MyModules", "train", "--dataset", "synthetic",
                                "--model", "widenet", "--epochs", "2", "--batch-size", "32", "--no-amp",
                                "--out", str(out), *QUIET],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while process.poll() is None and time.monotonic() < deadline:
            # metrics.csv gets epoch 1's row right after its checkpoint is written whole.
            if (out / "metrics.csv").exists() and (out / "metrics.csv").read_text().count("\n") >= 2:
                process.send_signal(signal.SIGKILL)  # as a lost runtime: no chance to clean up
                break
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"


@functools.cache
def resumed_run() -> Path:
    """:func:`killed_run` copied and continued to its end with ``--resume``."""
    def make(out: Path) -> None:
        shutil.copytree(killed_run(), out)
        result = cli("train", "--resume", "--out", out, *QUIET)
        assert result.returncode == 0, result.stderr

    return made_once("resumed", make)


class GrayNet(nn.Module):
    """A small model of 1-channel 32×32 images (a user's own model, not one of models.MODELS)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))  # (B, 8, 8, 8)
        self.classifier = nn.Linear(8 * 8 * 8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@functools.cache
def gray_run() -> Path:
    """A 1-channel MNIST run made from Python with ``fit``; its preprocessing recorded in summary.json."""
    return made_once("gray", _fit_gray_net)


def _fit_gray_net(out: Path) -> None:
    from MyModules import env
    from MyModules.data import load_dataset
    from MyModules.loader import make_loaders
    from MyModules.train import TrainConfig, fit

    dataset = load_dataset("mnist", env.data_folder(env.course_dir(), True), channels=1)
    assert dataset.image_shape == (1, 32, 32)
    train_loader, test_loader = make_loaders(dataset, 32, "cpu", seed=0)
    torch.manual_seed(0)
    preprocessing = {"image_size": 32, "channels": 1, "mean": list(dataset.mean), "std": list(dataset.std)}
    fit(GrayNet(), train_loader, test_loader, TrainConfig(epochs=2, batch_size=32, amp=False), "cpu",
        run_dir=out, classes=dataset.classes, progress=False,
        info={"dataset": "mnist", "preprocessing": preprocessing})


def native_test_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The test split as stored on disk (before the model's conversion): (N, H, W[, 3]) uint8, labels."""
    from MyModules import data, env

    folder = env.data_folder(env.course_dir(), True)
    if dataset == "mnist":
        _train, test = data.read_mnist(folder / "MNIST" / "raw")
        return test.images[:, 0].numpy(), test.labels.numpy()  # (N, 28, 28)
    _train, test, _classes = data.read_cifar(folder / "synthetic" / "cifar-10-batches-py")
    return test.images.permute(0, 2, 3, 1).numpy(), test.labels.numpy()  # (N, 32, 32, 3)


def write_pngs(folder: Path, images: np.ndarray) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"img_{i:03d}.png")
        Image.fromarray(np.ascontiguousarray(image)).save(paths[-1])
    return paths
