"""train_one_epoch against plain gradient descent written out by hand, and the optimiser/schedule/test caps.

The reference steps a copy of the model with ``torch.autograd.grad`` and ``p -= lr * g`` on the same
batches, so a step that accumulates gradients, skips the schedule or weights the mean loss wrongly
gives different weights or numbers.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from MyModules import data, env
from MyModules.loader import DeviceLoader
from MyModules.train import (
    TrainConfig,
    apply_test_mode,
    make_optimizer,
    make_scheduler,
    train_one_epoch,
)

LR = 0.05


def small_set(n: int = 50) -> data.ImageSet:
    images, labels = data.make_synthetic(n, seed=9)
    return data.ImageSet(torch.from_numpy(images), torch.from_numpy(labels))


def linear_model() -> nn.Module:
    torch.manual_seed(4)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


def by_hand(model: nn.Module, batches, lrs) -> tuple[nn.Module, float, float]:
    """Plain gradient descent: weights after the steps, mean loss and accuracy (%) of the batches as seen."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    loss_sum, correct, seen = 0.0, 0, 0
    for (images, labels), lr in zip(batches, lrs):
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return model, loss_sum / seen, 100.0 * correct / seen


@pytest.mark.parametrize("schedule", [False, True])
@pytest.mark.parametrize("max_steps", [None, 2])
def test_one_epoch_is_plain_gradient_descent_on_its_batches(schedule, max_steps):
    loader = DeviceLoader(small_set(), 20, (0.5,) * 3, (0.25,) * 3)  # batches of 20, 20, 10
    batches = list(loader)[:max_steps] if max_steps else list(loader)
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step)) if schedule else None
    lrs = [LR / (1 + step) if schedule else LR for step in range(len(batches))]
    expected, loss, accuracy = by_hand(model, batches, lrs)
    stats = train_one_epoch(model, torch.device("cpu"), loader, optimizer, 1, scheduler=scheduler,
                            max_steps=max_steps, progress=False)
    assert stats["images"] == sum(len(y) for _, y in batches)
    assert stats["loss"] == pytest.approx(loss, rel=1e-5)
    assert stats["accuracy"] == pytest.approx(accuracy)
    for a, b in zip(model.parameters(), expected.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    if schedule:
        assert optimizer.param_groups[0]["lr"] == pytest.approx(LR / (1 + len(batches)))


def test_running_numbers_reach_on_log_every_log_every_steps_and_at_the_end():
    loader = DeviceLoader(small_set(), 10, (0.5,) * 3, (0.25,) * 3)  # 5 steps
    model = linear_model()
    seen = []
    stats = train_one_epoch(model, torch.device("cpu"), loader, torch.optim.SGD(model.parameters(), lr=LR), 1,
                            log_every=2, progress=False, on_log=lambda step, m: seen.append((step, m)))
    assert [step for step, _ in seen] == [2, 4, 5]
    assert seen[-1][1]["loss"] == pytest.approx(stats["loss"]) and seen[-1][1]["accuracy"] == stats["accuracy"]


def test_optimiser_settings_reach_torch():
    model = linear_model()
    sgd = make_optimizer(model, TrainConfig(lr=0.2, momentum=0.8, weight_decay=1e-3)).param_groups[0]
    assert (sgd["lr"], sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.2, 0.8, True, 1e-3)
    assert make_optimizer(model, TrainConfig(momentum=0.0)).param_groups[0]["nesterov"] is False
    adam = make_optimizer(model, TrainConfig(optimizer="adam", lr=1e-3, weight_decay=1e-2))
    assert isinstance(adam, torch.optim.AdamW)
    assert (adam.param_groups[0]["lr"], adam.param_groups[0]["weight_decay"]) == (1e-3, 1e-2)


def test_one_cycle_peaks_at_lr_and_ends_near_zero():
    model = linear_model()
    config = TrainConfig(lr=0.4)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps=40)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.4) and lrs[0] < 0.4 / 10 and lrs[-1] < 0.4 / 100
    assert 0.2 * 40 <= lrs.index(max(lrs)) <= 0.5 * 40  # warms up for a quarter of the run
    assert make_scheduler(optimizer, TrainConfig(schedule="constant"), 40) is None
    assert make_scheduler(optimizer, config, 2) is None


@pytest.mark.parametrize("batch_size", [16, 100, 128, 300, 1000])
def test_test_mode_caps_steps_to_cover_the_image_cap(batch_size):
    limits = env.test_limits()
    assert limits is not None  # conftest runs every test in test mode
    capped = apply_test_mode(TrainConfig(epochs=50, batch_size=batch_size), limits, verbose=False)
    assert capped.epochs == limits.epochs
    steps = capped.max_steps_per_epoch
    assert 2 <= steps <= limits.steps
    if steps < limits.steps and steps > 2:  # capped by images: just enough batches to reach the cap
        assert (steps - 1) * batch_size < limits.images <= steps * batch_size
    if batch_size * limits.steps <= limits.images:
        assert steps == limits.steps
