"""TensorBoard logging, read back with TensorBoard's own reader; activation hooks always removed."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from MyModules.loader import make_loaders
from MyModules.models import WideNet
from MyModules.train import Callback, TrainConfig, fit
from MyModules.viz.hooks import activations_for, record_activations
from MyModules.viz.tensorboard import (
    TensorBoardLogger,
    load_events,
    log_weight_histograms,
    scalars_to_csv,
)

# Small on purpose: 2 epochs of 4 steps, a running point every 2 steps.
CONFIG = TrainConfig(epochs=2, batch_size=32, max_steps_per_epoch=4, log_every=2)
RUNNING_STEPS = [2, 4, 6, 8]
EPOCH_STEPS = [4, 8]
LAYERS = ["features.0.1", "classifier.1"]  # a BatchNorm (followed by an in-place ReLU) and a Linear
EPOCH_SCALARS = ["loss/train", "loss/test", "accuracy/train", "accuracy/test", "learning_rate", "epoch"]
RUNNING_SCALARS = ["loss/train_running", "accuracy/train_running"]




def expected_histograms(model: nn.Module) -> set[str]:
    tags = {f"weights/{n}" for n, _ in model.named_parameters()}
    tags |= {f"gradients/{n}" for n, _ in model.named_parameters()}
    tags |= {f"buffers/{n}" for n, b in model.named_buffers() if b.is_floating_point()}
    return tags | {f"activations/{name}" for name in LAYERS}


def run_fit(dataset, run_dir, resume=False, callbacks=()):
    torch.manual_seed(0)
    model = WideNet(width=8)
    train_loader, test_loader = make_loaders(dataset, CONFIG.batch_size, "cpu")
    images, _ = next(iter(test_loader))
    logger = TensorBoardLogger(images=images[:8], activation_layers=LAYERS, hparams={"model": "widenet8"})
    try:
        fit(model, train_loader, test_loader, CONFIG, "cpu", run_dir=run_dir, resume=resume,
            callbacks=[logger, *callbacks], progress=False, info={"model": "widenet"})
    finally:
        logger.close()  # flush what an interrupted run logged, the worst case for a resume
    return model, logger


@pytest.fixture(scope="module")
def logged_run(dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    model, logger = run_fit(dataset, run_dir)
    return run_dir, model, logger


def steps(acc, tag, kind="scalars"):
    events = acc.Scalars(tag) if kind == "scalars" else acc.Histograms(tag)
    return [e.step for e in events]


def test_every_expected_tag_is_logged_with_the_right_step_count(logged_run):
    run_dir, model, logger = logged_run
    assert logger.log_dir == run_dir / "tensorboard"
    acc = load_events(run_dir / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    for tag in RUNNING_SCALARS:
        assert steps(acc, tag) == RUNNING_STEPS, tag
    for tag in EPOCH_SCALARS:
        assert steps(acc, tag) == EPOCH_STEPS, tag
    assert [e.value for e in acc.Scalars("epoch")] == [1, 2]
    assert set(acc.Tags()["histograms"]) == expected_histograms(model)
    for tag in acc.Tags()["histograms"]:
        assert steps(acc, tag, "histograms") == EPOCH_STEPS, tag
    assert {"hparam/test_accuracy", "hparam/best_test_accuracy", "hparam/test_loss"} <= scalars
    assert acc.PluginTagToContent("hparams")  # the HPARAMS tab has this run
    assert acc.Graph() is not None  # the GRAPHS tab
    accuracy = [e.value for e in acc.Scalars("accuracy/test")]
    assert all(0 <= a <= 100 for a in accuracy)


def test_histograms_carry_their_own_tensor(logged_run):
    """Each weights/ and buffers/ histogram summarises the tensor of that name (the seed course's bug)."""
    run_dir, model, _ = logged_run
    acc = load_events(run_dir / "tensorboard")
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    checked = 0
    for tag in acc.Tags()["histograms"]:
        kind, name = tag.split("/", 1)
        if kind not in ("weights", "buffers"):
            continue
        value = acc.Histograms(tag)[-1].histogram_value  # logged after the last step: the final tensor
        tensor = state[name].detach().double()
        assert value.num == tensor.numel(), tag
        assert value.min == pytest.approx(tensor.min().item(), rel=1e-5, abs=1e-6), tag
        assert value.max == pytest.approx(tensor.max().item(), rel=1e-5, abs=1e-6), tag
        assert value.sum == pytest.approx(tensor.sum().item(), rel=1e-4, abs=1e-4), tag
        checked += 1
    assert checked == len(state) - 2  # all but the two integer num_batches_tracked buffers


def test_log_weight_histograms_names_every_tensor_after_batchnorm():
    model = WideNet(width=4)
    written = {}

    class Writer:
        def add_histogram(self, tag, values, step):
            written[tag] = values

    tags = log_weight_histograms(Writer(), model, 0, gradients=False)
    assert tags == list(written)
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    for tag, values in written.items():
        assert torch.equal(values, named[tag.split("/", 1)[1]].float()), tag
    assert "buffers/features.0.1.running_var" in written
    assert not any("num_batches_tracked" in t for t in written)


class StopAt(Callback):
    """Simulates the Colab runtime dying in the middle of epoch 2."""

    def __init__(self, step):
        self.step = step

    def on_log(self, global_step, metrics):
        if global_step == self.step:
            raise KeyboardInterrupt


def test_resumed_run_continues_at_the_right_step_without_duplicates(dataset, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_fit(dataset, tmp_path, callbacks=[StopAt(6)])
    partial = load_events(tmp_path / "tensorboard")
    assert steps(partial, "loss/train_running") == [2, 4, 6]  # step 6 is after the checkpoint (epoch 1)
    model, _ = run_fit(dataset, tmp_path, resume=True)
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) >= 2  # same folder
    acc = load_events(tmp_path / "tensorboard")
    for tag in RUNNING_SCALARS:
        assert steps(acc, tag) == RUNNING_STEPS, tag
    for tag in EPOCH_SCALARS:
        assert steps(acc, tag) == EPOCH_STEPS, tag
    assert [e.value for e in acc.Scalars("epoch")] == [1, 2]
    for tag in expected_histograms(model):
        assert steps(acc, tag, "histograms") == EPOCH_STEPS, tag


def test_fresh_run_in_a_used_folder_replaces_the_old_curves(dataset, tmp_path):
    run_fit(dataset, tmp_path)
    run_fit(dataset, tmp_path)  # resume=False: starts again from epoch 1
    acc = load_events(tmp_path / "tensorboard")
    assert steps(acc, "loss/train_running") == RUNNING_STEPS
    assert steps(acc, "accuracy/test") == EPOCH_STEPS


def test_scalars_to_csv_has_one_row_per_step(logged_run, tmp_path):
    run_dir, _, _ = logged_run
    path = scalars_to_csv(run_dir / "tensorboard", tmp_path / "scalars.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == RUNNING_STEPS
    assert {"loss/train", "accuracy/test", "learning_rate"} <= set(rows[0])
    acc = load_events(run_dir / "tensorboard")
    assert float(rows[-1]["accuracy/test"]) == pytest.approx(acc.Scalars("accuracy/test")[-1].value)


def test_logger_needs_images_for_activations_and_checks_layer_names(dataset, tmp_path):
    with pytest.raises(ValueError, match="images"):
        TensorBoardLogger(activation_layers=["features.0.0"])
    logger = TensorBoardLogger(tmp_path, images=torch.zeros(2, 3, 32, 32), activation_layers=["features.9"])
    with pytest.raises(KeyError, match="features.0.0"):  # the message lists the real layer names
        logger.on_train_begin(WideNet(width=4), 1, None)
    with pytest.raises(ValueError, match="run_dir"):
        TensorBoardLogger().on_train_begin(WideNet(width=4), 1, None)


# --- activation hooks -----------------------------------------------------------------------------


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_record_activations_copies_outputs_before_inplace_relu():
    torch.manual_seed(0)
    model = WideNet(width=4).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), record_activations(model, ["features.0.1", "features.0.3"]) as acts:
        model(x)  # the only forward pass while the hooks are on (another call would overwrite acts)
    with torch.no_grad():
        conv, bn = model.features[0][0], model.features[0][1]
        expected_bn = bn(conv(x))  # BatchNorm output before the in-place ReLU
    assert torch.allclose(acts["features.0.1"], expected_bn, atol=1e-6)
    assert (acts["features.0.1"] < 0).any()  # a view would have been rectified by the ReLU
    assert acts["features.0.3"].shape == (3, 4, 16, 16)
    assert hook_count(model) == 0


def test_record_activations_removes_its_hooks_on_exceptions():
    model = WideNet(width=4)
    with pytest.raises(RuntimeError, match="boom"), record_activations(model, ["features.0.0", "classifier.1"]):
        assert hook_count(model) == 2
        raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(KeyError, match="no layer named"), record_activations(model, ["features.0.0", "nope"]):
        pass
    assert hook_count(model) == 0


def test_activations_for_restores_the_training_mode():
    model = WideNet(width=4).train()
    acts = activations_for(model, torch.randn(2, 3, 32, 32), ["classifier.1"])
    assert model.training and acts["classifier.1"].shape == (2, 256) and hook_count(model) == 0
