"""``evaluate`` and ``fit``'s evaluation over a test set of several batches, against known answers.

The model reads its logits off the image (the first K pixels of channel 0's top row), so the loss,
accuracy and confusion matrix of every image are known in advance and computed here with numpy in
float64, independently of the code under test. The test sets never split evenly into batches: a
mean of batch means, or a result kept from one batch only, gives different numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from MyModules import data
from MyModules.loader import DeviceLoader, make_loaders
from MyModules.train import TrainConfig, evaluate, fit

K = 10  # classes
SCALE = 8.0  # logits = SCALE * pixel / 255
PIXELS = ((0.0,) * 3, (1.0,) * 3)  # mean 0, std 1: the model sees pixel / 255


class PixelLogits(nn.Module):
    """Logits = SCALE × the first K values of the top row of channel 0; ``zero`` never changes them.

    ``zero`` (a parameter fixed at 0: its gradient is 0, and weight decay keeps 0 at 0) lets ``fit``
    build its optimiser and take steps while the outputs stay known.
    """

    def __init__(self):
        super().__init__()
        self.zero = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SCALE * x[:, 0, 0, :K] + 0 * self.zero  # (B, K)


def known_set(n: int, seed: int) -> tuple[data.ImageSet, np.ndarray, np.ndarray]:
    """Images whose logits are distinct (no argmax ties), labels right for about 60 % of them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    images[:, 0, 0, :K] = np.stack([rng.permutation(25)[:K] * 10 + 5 for _ in range(n)])  # distinct
    logits = SCALE * images[:, 0, 0, :K].astype(np.float64) / 255
    predicted = logits.argmax(1)
    labels = np.where(rng.random(n) < 0.6, predicted, rng.integers(0, K, n))
    return data.ImageSet(torch.from_numpy(images), torch.from_numpy(labels).long()), logits, labels


def reference(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Mean cross-entropy, accuracy (%) and confusion (row = true, column = predicted) in float64."""
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    predicted = logits.argmax(1)
    confusion = np.zeros((K, K), dtype=np.int64)
    for true, pred in zip(labels, predicted):
        confusion[true, pred] += 1
    return {"loss": -log_probs[np.arange(len(labels)), labels].mean(),
            "accuracy": 100.0 * (predicted == labels).mean(), "confusion": confusion}


def assert_matches(result: dict, expected: dict, n: int) -> None:
    assert result["images"] == n
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert result["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
    assert result["confusion"].dtype == torch.int64 and result["confusion"].device.type == "cpu"
    assert np.array_equal(result["confusion"].numpy(), expected["confusion"])


def test_known_set_is_not_trivial():
    _, logits, labels = known_set(300, seed=0)
    expected = reference(logits, labels)
    assert 40 < expected["accuracy"] < 90 and expected["confusion"].sum() == 300
    assert (expected["confusion"] - np.diag(np.diag(expected["confusion"]))).sum() > 50  # mistakes too


@pytest.mark.parametrize("batch_size", [64, 7])
def test_evaluate_sums_loss_accuracy_and_confusion_over_every_batch(batch_size):
    images, logits, labels = known_set(300, seed=1)  # 300 = 4 x 64 + 44, or 42 x 7 + 6
    loader = DeviceLoader(images, batch_size, *PIXELS)
    assert len(loader) > 2
    result = evaluate(PixelLogits(), torch.device("cpu"), loader, num_classes=K)
    assert_matches(result, reference(logits, labels), 300)


def test_evaluate_with_max_steps_covers_exactly_those_batches():
    images, logits, labels = known_set(300, seed=2)
    loader = DeviceLoader(images, 64, *PIXELS)
    result = evaluate(PixelLogits(), torch.device("cpu"), loader, num_classes=K, max_steps=2)
    assert_matches(result, reference(logits[:128], labels[:128]), 128)
    assert "confusion" not in evaluate(PixelLogits(), torch.device("cpu"), loader)  # no num_classes


@pytest.mark.parametrize("fast", [True, False])
def test_evaluate_on_both_loader_paths(fast):
    images, logits, labels = known_set(250, seed=3)
    dataset = data.Dataset("known", images, images, [f"c{i}" for i in range(K)], *PIXELS)
    _, test_loader = make_loaders(dataset, 32, "cpu", fast=fast, num_workers=0, test_batch_size=60)
    assert len(test_loader) == 5  # 4 x 60 + 10
    result = evaluate(PixelLogits(), torch.device("cpu"), test_loader, num_classes=K)
    assert_matches(result, reference(logits, labels), 250)


def test_fit_reports_the_evaluation_of_the_whole_test_set(tmp_path):
    train, _, _ = known_set(256, seed=4)
    test, logits, labels = known_set(230, seed=5)
    classes = [f"c{i}" for i in range(K)]
    dataset = data.Dataset("known", train, test, classes, *PIXELS)
    train_loader, test_loader = make_loaders(dataset, 32, "cpu", test_batch_size=50)  # 4 x 50 + 30
    config = TrainConfig(epochs=2, batch_size=32, max_steps_per_epoch=2, amp=False)
    result = fit(PixelLogits(), train_loader, test_loader, config, "cpu", run_dir=tmp_path, classes=classes,
                 progress=False)
    expected = reference(logits, labels)
    for row in result.history:  # the outputs never change, so every epoch's evaluation is the same
        assert row["test_loss"] == pytest.approx(expected["loss"], rel=1e-5)
        assert row["test_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
    assert np.array_equal(result.confusion.numpy(), expected["confusion"])
    per_class = 100.0 * np.diag(expected["confusion"]) / expected["confusion"].sum(1)
    assert list(result.summary["per_class_accuracy"].values()) == pytest.approx(per_class.tolist())
    assert result.summary["test_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
