"""Training: it learns, modes are set, checkpoints are atomic, resume gives the same weights."""

import json
import os
import random

import numpy as np
import pytest
import torch

from MyModules import env
from MyModules.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from MyModules.errors import CheckpointError
from MyModules.loader import make_loaders
from MyModules.models import Net, WideNet
from MyModules.train import Callback, TrainConfig, evaluate, fit, seed_everything, train_one_epoch


@pytest.fixture
def no_test_mode(monkeypatch):
    """These tests size their own runs; test mode would cap them further."""
    monkeypatch.delenv("COURSE_TEST_MODE")


def test_fit_learns_far_above_chance(dataset, tmp_path, no_test_mode):
    train_loader, test_loader = make_loaders(dataset, 128, "cpu")
    result = fit(WideNet(width=8), train_loader, test_loader, TrainConfig(epochs=2, max_steps_per_epoch=20), "cpu",
                 run_dir=tmp_path,
                 classes=dataset.classes, progress=False)
    assert result.summary["test_accuracy"] > 60  # chance is 10 %
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.confusion.sum() == len(dataset.test)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds" and len(lines) == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_parameters"] == sum(p.numel() for p in WideNet(width=8).parameters())
    assert set(summary["per_class_accuracy"]) == set(dataset.classes)


def test_fast_and_standard_paths_reach_the_same_accuracy(dataset, no_test_mode):
    accuracies = {}
    for fast in (True, False):
        train_loader, test_loader = make_loaders(dataset, 128, "cpu", fast=fast, num_workers=0)
        result = fit(WideNet(width=8), train_loader, test_loader, TrainConfig(epochs=2, seed=1, max_steps_per_epoch=20), "cpu", progress=False)
        accuracies[fast] = result.summary["test_accuracy"]
    assert min(accuracies.values()) > 60
    assert abs(accuracies[True] - accuracies[False]) < 10  # same within noise (500 test images)


def test_train_and_evaluate_set_the_mode_themselves(dataset):
    model = WideNet(width=8)
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    model.eval()
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(m.training))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_one_epoch(model, torch.device("cpu"), train_loader, optimizer, 1, max_steps=2, progress=False)
    assert seen and all(seen)
    seen.clear()
    result = evaluate(model, torch.device("cpu"), test_loader, num_classes=10)
    assert seen and not any(seen)
    assert result["confusion"].shape == (10, 10) and 0 <= result["accuracy"] <= 100


def test_max_steps_limits_the_epoch(dataset):
    train_loader, _ = make_loaders(dataset, 32, "cpu")
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_one_epoch(model, torch.device("cpu"), train_loader, optimizer, 1, max_steps=3, progress=False)
    assert stats["images"] == 3 * 32


class Crash(Callback):
    """Dies at the end of an epoch, after its checkpoint is written, as a lost runtime would."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics, model):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_from_python_gives_the_same_weights(dataset, tmp_path, no_test_mode):
    config = TrainConfig(epochs=3, max_steps_per_epoch=8)
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    seed_everything(0)  # same initial weights in both runs
    whole = fit(Net(), train_loader, test_loader, config, "cpu", run_dir=tmp_path / "whole", progress=False)
    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        fit(Net(), train_loader, test_loader, config, "cpu", run_dir=tmp_path / "split", progress=False,
            callbacks=[Crash(2)])
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["epoch"] == 2
    # Continue with a fresh model and loaders, as a new process would.
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    resumed = fit(Net(), train_loader, test_loader, config, "cpu", run_dir=tmp_path / "split", resume=True,
                  progress=False)
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["test_accuracy"] for r in resumed.history] == [r["test_accuracy"] for r in whole.history]
    assert len((tmp_path / "split" / "metrics.csv").read_text().splitlines()) == 4


class Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1, "rng": capture_rng()}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    # A crash in the middle of writing the next one leaves the previous checkpoint readable.
    with pytest.raises(RuntimeError):
        save_checkpoint({"model": {"w": torch.zeros(3)}, "bad": Boom()}, path)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(tmp_path / "evil.pt")


def test_rng_roundtrip():
    state = capture_rng()
    a = (torch.rand(3), random.random(), np.random.rand())
    restore_rng(state)
    b = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_test_mode_caps_epochs_steps_and_images():
    from MyModules.train import apply_test_mode

    limits = env.TestModeLimits()
    small_batches = apply_test_mode(TrainConfig(epochs=10, batch_size=16), limits, verbose=False)
    assert (small_batches.epochs, small_batches.max_steps_per_epoch) == (2, 20)
    large_batches = apply_test_mode(TrainConfig(epochs=10, batch_size=128), limits, verbose=False)
    assert large_batches.max_steps_per_epoch == 4  # 512 images
    assert apply_test_mode(TrainConfig(epochs=1, max_steps_per_epoch=3), limits, verbose=False).max_steps_per_epoch == 3
    assert apply_test_mode(TrainConfig(epochs=10), None) == TrainConfig(epochs=10)  # outside test mode
