"""A run that never trained (a blank not filled in) leaves nothing that looks like a run.

Templates are run by students with their blanks still empty: the cell that builds the model raises,
or the model crashes at its first step. Their run folders must not mix with real runs.
"""

import pytest
import torch
from torch import nn

from MyModules import data, run_folder
from MyModules.errors import DivergenceError
from MyModules.loader import make_loaders
from MyModules.models import Net
from MyModules.train import TrainConfig, fit


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    dataset = data.load_dataset("synthetic", tmp_path_factory.mktemp("data"), test_mode=True)
    return make_loaders(dataset, 64, "cpu")


class NotWrittenYet(nn.Module):
    """A student's model whose forward is still the template's TODO."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        raise NotImplementedError("TODO: この部分を実装してください")


class Explodes(Net):
    def forward(self, x):
        return super().forward(x) * 1e12  # a loss far beyond guessing: DivergenceError in the first epoch


def test_a_model_that_fails_at_its_first_step_leaves_no_run_folder(loaders, tmp_path):
    run_dir = run_folder.new_run_dir(tmp_path, "blank")
    with pytest.raises(NotImplementedError):
        fit(NotWrittenYet(), *loaders, TrainConfig(epochs=1), "cpu", run_dir=run_dir, progress=False)
    assert not run_dir.exists()


def test_what_a_callback_wrote_stays_with_its_folder(loaders, tmp_path):
    run_dir = run_folder.new_run_dir(tmp_path, "blank")
    (run_dir / "tensorboard").mkdir()
    (run_dir / "tensorboard" / "events.out").write_bytes(b"log")
    with pytest.raises(NotImplementedError):
        fit(NotWrittenYet(), *loaders, TrainConfig(epochs=1), "cpu", run_dir=run_dir, progress=False)
    assert sorted(p.name for p in run_dir.iterdir()) == ["tensorboard"]  # run.json, metrics.csv removed


def test_a_diverged_run_keeps_its_folder_to_look_at(loaders, tmp_path):
    run_dir = run_folder.new_run_dir(tmp_path, "diverged")
    with pytest.raises(DivergenceError):
        fit(Explodes(), *loaders, TrainConfig(epochs=1), "cpu", run_dir=run_dir, progress=False)
    assert (run_dir / run_folder.SETTINGS_FILE).is_file()


def test_a_failure_after_an_epoch_keeps_the_run_to_resume(loaders, tmp_path):
    run_dir = run_folder.new_run_dir(tmp_path, "later")
    fit(Net(), *loaders, TrainConfig(epochs=1), "cpu", run_dir=run_dir, progress=False)
    torch.manual_seed(0)
    with pytest.raises(NotImplementedError):
        fit(NotWrittenYet(), *loaders, TrainConfig(epochs=1), "cpu", run_dir=run_dir, progress=False)
    assert list(run_dir.glob("checkpoint-*.pt")) and (run_dir / "metrics.csv").is_file()


def test_a_new_run_folder_clears_empty_ones_left_by_failed_cells(tmp_path):
    empty = run_folder.new_run_dir(tmp_path, "vgg11")  # the cell that builds the model then raised
    kept = tmp_path / "net-20250101-000000"
    kept.mkdir()
    (kept / "metrics.csv").write_text("epoch\n")
    fresh = run_folder.new_run_dir(tmp_path, "vgg11")
    assert not empty.exists() or empty == fresh
    assert kept.is_dir() and fresh.is_dir()
