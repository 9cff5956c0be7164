"""TensorBoard logs hold the right *values*: each point is what ``fit`` computed at that step.

A second callback, after the logger, records what the logger was shown (metrics, gradients, weights,
and the chosen layers' outputs computed here by calling the layers directly); the event files are
then read back with TensorBoard's own reader and compared point by point.
"""

from __future__ import annotations

import pytest
import torch

from MyModules import data
from MyModules.loader import make_loaders
from MyModules.models import WideNet
from MyModules.train import Callback, TrainConfig, fit
from MyModules.viz.tensorboard import TensorBoardLogger, load_events

CONFIG = TrainConfig(epochs=2, batch_size=32, max_steps_per_epoch=3, log_every=1)
EPOCH_STEPS = [3, 6]


class Recorder(Callback):
    """Keeps copies of what each epoch ended with; changes nothing."""

    def __init__(self, images: torch.Tensor):
        self.images = images
        self.running: list[tuple[int, dict]] = []
        self.epochs: list[dict] = []

    def on_log(self, global_step, metrics):
        self.running.append((global_step, dict(metrics)))

    def on_epoch_end(self, epoch, metrics, model):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            flat = model.classifier[0](model.features(self.images))
            hidden = model.classifier[1](flat)  # "classifier.1": the first Linear
            block = model.features[0](self.images)  # "features.0": conv, BN, ReLU, pool
        model.train(was_training)
        self.epochs.append({
            "metrics": dict(metrics),
            "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters()},
            "weights": {n: p.detach().clone() for n, p in model.named_parameters()},
            "activations": {"classifier.1": hidden, "features.0": block},
        })


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    dataset = data.load_dataset("synthetic", tmp_path_factory.mktemp("data"), test_mode=True)
    run_dir = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = WideNet(width=4)
    train_loader, test_loader = make_loaders(dataset, CONFIG.batch_size, "cpu")
    images = next(iter(test_loader))[0][:6]
    logger = TensorBoardLogger(images=images, activation_layers=["classifier.1", "features.0"])
    recorder = Recorder(images)
    result = fit(model, train_loader, test_loader, CONFIG, "cpu", run_dir=run_dir, callbacks=[logger, recorder],
                 progress=False)
    return load_events(run_dir / "tensorboard"), recorder, result


def summary_of(tensor: torch.Tensor) -> tuple:
    t = tensor.detach().double()
    return t.numel(), t.min().item(), t.max().item(), t.sum().item(), (t * t).sum().item()


def assert_histogram(event, tensor: torch.Tensor, tag: str) -> None:
    h = event.histogram_value
    num, low, high, total, squares = summary_of(tensor)
    assert h.num == num, tag
    assert h.min == pytest.approx(low, rel=1e-5, abs=1e-7), tag
    assert h.max == pytest.approx(high, rel=1e-5, abs=1e-7), tag
    assert h.sum == pytest.approx(total, rel=1e-4, abs=1e-6), tag
    assert h.sum_squares == pytest.approx(squares, rel=1e-4, abs=1e-9), tag


def test_gradient_histograms_are_each_epochs_last_gradients(run):
    acc, recorder, _ = run
    names = [n for n, _ in WideNet(width=4).named_parameters()]
    for name in names:
        events = acc.Histograms(f"gradients/{name}")
        assert [e.step for e in events] == EPOCH_STEPS, name
        for event, epoch in zip(events, recorder.epochs):
            grad, weight = epoch["grads"][name], epoch["weights"][name]
            assert grad.abs().sum() > 0 and not torch.equal(grad, weight)
            assert_histogram(event, grad, f"gradients/{name}")


def test_weight_histograms_follow_the_weights_of_each_epoch(run):
    acc, recorder, _ = run
    name = "features.0.0.weight"
    events = acc.Histograms(f"weights/{name}")
    first, second = recorder.epochs[0]["weights"][name], recorder.epochs[1]["weights"][name]
    assert not torch.equal(first, second)  # trained in between
    assert_histogram(events[0], first, name)
    assert_histogram(events[1], second, name)


def test_activation_histograms_are_the_layers_outputs_on_the_fixed_batch(run):
    acc, recorder, _ = run
    for layer in ("classifier.1", "features.0"):
        events = acc.Histograms(f"activations/{layer}")
        assert [e.step for e in events] == EPOCH_STEPS
        for event, epoch in zip(events, recorder.epochs):
            assert_histogram(event, epoch["activations"][layer], layer)
    assert recorder.epochs[0]["activations"]["classifier.1"].min() < 0  # a Linear output, not rectified


def test_scalars_are_the_numbers_fit_reported(run):
    acc, recorder, result = run
    assert len(result.history) == 2
    pairs = {"loss/train": "train_loss", "loss/test": "test_loss", "accuracy/train": "train_accuracy",
             "accuracy/test": "test_accuracy", "learning_rate": "lr", "epoch": "epoch"}
    for tag, column in pairs.items():
        events = acc.Scalars(tag)
        assert [e.step for e in events] == EPOCH_STEPS, tag
        assert [e.value for e in events] == pytest.approx([row[column] for row in result.history], rel=1e-6), tag
    assert [m for m in (r["metrics"] for r in recorder.epochs)] == result.history
    for tag, key in (("loss/train_running", "loss"), ("accuracy/train_running", "accuracy")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [s for s, _ in recorder.running] == list(range(1, 7))
        assert [e.value for e in events] == pytest.approx([m[key] for _, m in recorder.running], rel=1e-6)
    # The last running point of an epoch is that epoch's training mean.
    assert recorder.running[2][1]["loss"] == pytest.approx(result.history[0]["train_loss"])
