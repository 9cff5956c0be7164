"""The default recipe is one to trust: augmentation that fits the data, the right precision on each
device, the momentum that was set, divergence reported, and resume that never loses or breaks anything."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from MyModules import data, env, loader, run_folder, train
from MyModules.checkpoint import load_checkpoint
from MyModules.errors import ConfigError, DivergenceError
from MyModules.loader import DeviceLoader, make_loaders, resolve_augment
from MyModules.models import Net
from MyModules.train import TrainConfig, amp_dtype_for, fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]




def coordinate_set(n: int, size: int = 32) -> data.Dataset:
    """Images whose pixel (y, x) holds 10 + y (channel 0) and 10 + x (channel 1): crops and flips show."""
    ys = torch.arange(size).view(size, 1).expand(size, size) + 10
    xs = torch.arange(size).view(1, size).expand(size, size) + 10
    one = torch.stack([ys, xs, torch.full((size, size), 200)]).to(torch.uint8)
    images = data.ImageSet(one.expand(n, 3, size, size).clone(), torch.arange(n) % 2)
    return data.Dataset("coords", images, images, ["a", "b"], (0.0,) * 3, (1 / 255,) * 3)


def batches(train_loader) -> torch.Tensor:
    """All training images of one epoch, back in pixel units (the loaders normalise with mean 0, std 1/255)."""
    return torch.cat([images for images, _ in train_loader]).round()


def moved_and_flipped(images: torch.Tensor) -> tuple[float, float]:
    """Fraction of images shifted, fraction mirrored (decoded from the coordinate pattern's centre)."""
    c = images.shape[-1] // 2
    y = images[:, 0, c, c] - 10  # the source row shown at the centre
    x = images[:, 1, c, c] - 10
    left, right = images[:, 1, c, c - 1], images[:, 1, c, c + 1]
    mirrored = left > right  # the column index runs backwards
    return ((y != c) | ((x != c) & ~mirrored) | ((x != c - 1) & mirrored)).float().mean().item(), \
        mirrored.float().mean().item()


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("augment, moves, flips", [("none", False, False), ("crop", True, False),
                                                   ("crop-flip", True, True)])
def test_augmentation_on_both_loader_paths(fast, augment, moves, flips):
    ds = coordinate_set(400)
    train_loader, _ = make_loaders(ds, 100, "cpu", fast=fast, augment=augment, num_workers=0, channels_last=False)
    assert train_loader.augment == augment
    images = batches(train_loader)
    moved, mirrored = moved_and_flipped(images)
    assert (moved > 0.5) == moves, moved  # 80 of 81 crop offsets move the image
    assert (0.35 < mirrored < 0.65) if flips else mirrored == 0.0, mirrored


@pytest.mark.parametrize("fast", [True, False])
def test_fit_records_the_loaders_augmentation_and_changes_neither_loader_nor_torch_flags(fast, dataset, tmp_path,
                                                                                          monkeypatch):
    """The loader decides the augmentation, once; fit records it and leaves what it was given alone."""
    train_loader, test_loader = make_loaders(dataset, 64, "cpu", fast=fast, num_workers=0)
    assert train_loader.augment == "crop-flip"  # auto for photos
    before = dict(vars(train_loader))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # what the caller set stays set
    result = fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu",
                 run_dir=tmp_path / "run", progress=False)
    assert result.summary["augment"] == "crop-flip"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["augment"] == "crop-flip"
    assert run_folder.read_settings(tmp_path / "run").config["augment"] == "crop-flip"  # resolved, not "auto"
    after = dict(vars(train_loader))
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before if k not in ("epoch",
                                                                                                "_epoch_was_set"))
    assert torch.backends.cudnn.benchmark is True


@pytest.mark.parametrize("fast", [True, False])
def test_a_config_that_contradicts_the_loader_is_refused_and_the_loader_kept(fast, dataset, tmp_path):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu", fast=fast, num_workers=0)
    inner = getattr(train_loader, "loader", None)  # the DataLoader of the standard path
    with pytest.raises(ConfigError, match=r"make_loaders\(dataset, \.\.\., augment='crop'\)"):
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2, augment="crop"), "cpu",
            run_dir=tmp_path / "run", progress=False)
    assert train_loader.augment == "crop-flip" and getattr(train_loader, "loader", None) is inner
    crop, _ = make_loaders(dataset, 64, "cpu", fast=fast, num_workers=0, augment="crop")  # where it is chosen
    result = fit(Net(), crop, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2, augment="crop"), "cpu",
                 progress=False)
    assert result.summary["augment"] == "crop"


def test_the_command_lines_augment_reaches_the_loader_and_the_records(tmp_path):
    from MyModules.__main__ import main

    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--augment", "crop", "--epochs", "1", "--max-steps", "2",
                 "--out", str(run), "--no-progress", "--no-plots", "--no-tensorboard"]) == 0
    assert json.loads((run / "summary.json").read_text())["augment"] == "crop"
    settings = run_folder.read_settings(run)
    assert settings.config["augment"] == settings.command_line["augment"] == "crop"  # resolved, and as asked


def test_cudnn_autotune_is_on_only_inside_the_block_and_only_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with train.cudnn_autotune(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(RuntimeError), train.cudnn_autotune("cuda:0"):
        raise RuntimeError("a step that failed")
    assert torch.backends.cudnn.benchmark is False  # put back after an error too
    with train.cudnn_autotune("cpu"):
        assert torch.backends.cudnn.benchmark is False


def test_auto_augmentation_is_chosen_per_dataset():
    assert resolve_augment("auto", "cifar10") == "crop-flip"
    assert resolve_augment("auto", "cifar100") == "crop-flip"
    assert resolve_augment("auto", "mnist") == "none"  # measured best on real digits; flips make other shapes
    assert resolve_augment("auto", "fashionmnist") == "crop"
    assert resolve_augment("auto", "imagefolder") == "none"  # unknown content: change nothing it shows
    assert resolve_augment(False, "cifar10") == "none" and resolve_augment(True, None) == "crop-flip"
    with pytest.raises(ConfigError, match="augment must be one of"):
        resolve_augment("flip", "cifar10")
    with pytest.raises(ConfigError):
        TrainConfig(augment="rotate")


@pytest.mark.parametrize("name, expected", [("mnist", "none"), ("fashionmnist", "crop"), ("cifar10", "crop-flip")])
def test_make_loaders_choose_by_dataset(tmp_path, name, expected):
    ds = data.load_dataset(name, tmp_path, test_mode=True)
    train_loader, _ = make_loaders(ds, 256, "cpu")
    assert train_loader.augment == expected
    assert (train_loader.padding, train_loader.flip) == loader.AUGMENTS[expected]


class FakeCuda:
    """What torch.cuda reports on a given GPU (documented values: T4 is 7.5, A100 8.0)."""

    def __init__(self, capability, bf16_reported=True):
        self.capability, self.bf16_reported = capability, bf16_reported

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: self.capability)
        # torch reports bf16 as "supported" on a T4 (emulated): the choice must not depend on it.
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: self.bf16_reported)


def test_precision_t4_is_fp16_with_grad_scaler(monkeypatch):
    FakeCuda((7, 5)).install(monkeypatch)
    assert amp_dtype_for(torch.device("cuda")) == torch.float16
    assert train.precision_name(amp_dtype_for("cuda")) == "fp16 + GradScaler"
    assert amp_dtype_for("cuda", amp=False) is None


def test_precision_v100_is_fp16(monkeypatch):
    FakeCuda((7, 0)).install(monkeypatch)
    assert amp_dtype_for("cuda:0") == torch.float16


def test_precision_a100_is_bf16(monkeypatch):
    FakeCuda((8, 0), bf16_reported=True).install(monkeypatch)
    assert amp_dtype_for("cuda") == torch.bfloat16
    FakeCuda((9, 0)).install(monkeypatch)
    assert amp_dtype_for("cuda") == torch.bfloat16


def test_precision_cpu_is_fp32_unless_asked():
    assert amp_dtype_for("cpu") is None
    assert amp_dtype_for("cpu", amp=True) == torch.bfloat16
    assert train.precision_name(None) == "fp32"


def test_fit_records_precision(dataset):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    result = fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu", progress=False)
    assert result.summary["precision"] == "fp32" and result.summary["device"] == "cpu"


def test_the_momentum_set_is_the_momentum_used_on_every_step(dataset):
    seen = []

    def record(optimizer, args, kwargs):
        seen.append((optimizer.param_groups[0]["momentum"], optimizer.param_groups[0]["lr"]))

    handle = register_optimizer_step_pre_hook(record)
    try:
        train_loader, test_loader = make_loaders(dataset, 32, "cpu")
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=2, batch_size=32, momentum=0.5, max_steps_per_epoch=6), "cpu",
            progress=False)
    finally:
        handle.remove()
    assert len(seen) == 12
    assert {m for m, _ in seen} == {0.5}
    assert len({lr for _, lr in seen}) > 5  # the one-cycle schedule still varies the learning rate


def test_divergence_stops_fit_with_a_clear_error(dataset, tmp_path):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    with pytest.raises(DivergenceError, match=r"diverged.*epoch 1 by step \d+.*learning rate.*--lr"):
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=2, lr=1e30, schedule="constant"), "cpu",
            run_dir=tmp_path, progress=False)
    assert DivergenceError.exit_code == 3 and "学習率" in DivergenceError.hint_ja


def test_divergence_on_the_command_line_is_one_line_exit_3(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "MyModules", "train", "--dataset", "synthetic", "--lr", "1e30",
                           "--no-progress", "--no-plots", "--no-tensorboard", "--course-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "diverged" in errors[0] and "--lr" in errors[0]


def test_resume_refuses_a_changed_plan(dataset, tmp_path):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu", run_dir=tmp_path,
        progress=False)
    with pytest.raises(ConfigError, match=r"epochs=1 \(now 2\).*same settings"):
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=2, max_steps_per_epoch=2), "cpu", run_dir=tmp_path,
            resume=True, progress=False)


def test_resuming_a_finished_run_keeps_the_summary_complete(dataset, tmp_path):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    config = TrainConfig(epochs=2, max_steps_per_epoch=3)
    first = fit(Net(), train_loader, test_loader, config, "cpu", run_dir=tmp_path, classes=dataset.classes,
                progress=False)
    again = fit(Net(), train_loader, test_loader, config, "cpu", run_dir=tmp_path, classes=dataset.classes,
                resume=True, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["per_class_accuracy"]) == set(dataset.classes)
    assert summary["per_class_accuracy"] == first.summary["per_class_accuracy"]
    assert summary["epochs"] == 2 and again.history == first.history


KILL_AFTER_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    from MyModules import data, run_folder, train
    from MyModules.loader import make_loaders
    from MyModules.models import Net

    real_write = run_folder.write_metrics
    def write_metrics(run_dir, history):
        if len(history) == 2:  # epoch 2's checkpoint is on disk; its CSV row is not
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(run_dir, history)
    run_folder.write_metrics = write_metrics

    ds = data.load_dataset("synthetic", sys.argv[2], test_mode=True)
    tl, vl = make_loaders(ds, 64, "cpu")
    train.fit(Net(), tl, vl, train.TrainConfig(epochs=2, max_steps_per_epoch=3), "cpu", run_dir=sys.argv[1],
              progress=False)
""")


def test_a_kill_between_checkpoint_and_csv_loses_no_metrics_row(dataset, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_CHECKPOINT, str(run_dir), str(tmp_path / "data")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1: row 2 was lost
    assert load_checkpoint(run_dir)["epoch"] == 2
    ds = data.load_dataset("synthetic", tmp_path / "data", test_mode=True)
    train_loader, test_loader = make_loaders(ds, 64, "cpu")
    fit(Net(), train_loader, test_loader, TrainConfig(epochs=2, max_steps_per_epoch=3), "cpu", run_dir=run_dir,
        resume=True, progress=False)
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2]  # epoch 2's row is back, from the checkpoint


KILL_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    from MyModules import atomic
    with atomic.atomic_open(sys.argv[1], "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_temp_files_of_a_killed_write_are_removed_at_the_next_start(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(run_dir / "summary.json")], cwd=ROOT,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in run_dir.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".summary.json.tmp-")
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu", run_dir=run_dir,
        progress=False)
    assert not [p for p in run_dir.iterdir() if ".tmp-" in p.name]


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    live = tmp_path / f".metrics.csv.tmp-{os.getppid()}"  # the parent process is alive
    live.write_text("being written")
    run_folder.prepare(tmp_path)
    assert live.exists()


def test_default_recipe_learns_and_never_falls_back_to_chance(dataset, monkeypatch):
    """The README's offline check, shortened (80 steps): it learns, and once it has learnt it never
    collapses to chance (10 %) the way the old peak lr did at the top of the one-cycle."""
    monkeypatch.delenv("COURSE_TEST_MODE")
    train_loader, test_loader = make_loaders(dataset, 128, "cpu")
    seed_everything(0)
    result = fit(Net(), train_loader, test_loader, TrainConfig(epochs=4), "cpu", progress=False)
    accuracies = [row["test_accuracy"] for row in result.history]
    for i, accuracy in enumerate(accuracies[1:], start=1):
        if max(accuracies[:i]) >= 50:
            assert accuracy >= 30, accuracies
    assert accuracies[-1] > 60, accuracies


def test_whole_default_recipe_ends_well_above_chance(dataset, monkeypatch):
    """All ten default epochs (200 steps) on the small set, seed 2: the old peak lr 0.03 collapsed at
    the top of the one-cycle here and ended at 54.8 %; the measured default ends above 90 %."""
    monkeypatch.delenv("COURSE_TEST_MODE")
    config = TrainConfig(seed=2)
    train_loader, test_loader = make_loaders(dataset, config.batch_size, "cpu", seed=config.seed)
    seed_everything(config.seed)
    result = fit(Net(), train_loader, test_loader, config, "cpu", progress=False)
    assert result.history[-1]["test_accuracy"] > 80, [row["test_accuracy"] for row in result.history]


def test_device_loader_records_its_augmentation():
    ds = coordinate_set(10)
    assert DeviceLoader(ds.train, 5, ds.mean, ds.std, augment="crop").augment == "crop"
    assert loader.AUGMENTS["crop-flip"] == (4, True)


def test_synthetic_outside_test_mode_is_the_larger_offline_check(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYNTHETIC_SIZES", (600, 100))
    full = data.load_dataset("synthetic", tmp_path, test_mode=False)
    small = data.load_dataset("synthetic", tmp_path, test_mode=True)
    assert (len(full.train), len(full.test)) == (600, 100)
    assert (len(small.train), len(small.test)) == (env.TEST_MODE_LIMITS.train_size, env.TEST_MODE_LIMITS.test_size)
    assert (tmp_path / "synthetic-600").is_dir() and (tmp_path / "synthetic").is_dir()  # never mixed
