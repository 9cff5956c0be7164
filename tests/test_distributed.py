"""``torchrun --nproc-per-node 2 -m MyModules train`` on the CPU (gloo): real processes, a real SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from MyModules.checkpoint import load_checkpoint
from MyModules.data import load_dataset
from MyModules.errors import ConfigError
from MyModules.loader import DeviceLoader

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--dataset", "synthetic", "--epochs", "3", "--batch-size", "64", "--max-steps", "10", "--lr", "0.05",
         "--device", "cpu", "--no-progress", "--no-plots", "--no-tensorboard"]


def env_for(course_dir: Path) -> dict:
    env = dict(os.environ, COURSE_DIR=str(course_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("COURSE_TEST_MODE", None)  # these runs choose their own (small) sizes
    return env


def torchrun_command(*args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "MyModules", *map(str, args)]


def rows(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "metrics.csv")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_root):
    """The same training with 2 processes (no --out: the command names the folder) and with 1."""
    course = tmp_path_factory.mktemp("course")
    two = subprocess.run(torchrun_command(*TRAIN, "--data-root", synthetic_root), env=env_for(course), capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    one_dir = tmp_path_factory.mktemp("single") / "run"
    one = subprocess.run([sys.executable, "-m", "MyModules", *TRAIN, "--data-root", str(synthetic_root), "--out",
                          str(one_dir)], env=env_for(course),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    return course, two, one_dir


def test_two_processes_write_one_run_folder_with_one_row_per_epoch(runs):
    course, two, _ = runs
    folders = [p for p in (course / "runs").iterdir()]
    assert len(folders) == 1, folders  # both ranks used the folder rank 0 made
    run = folders[0]
    assert [r["epoch"] for r in rows(run)] == ["1", "2", "3"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 3
    assert sorted(p.name for p in run.glob("checkpoint*")) == ["checkpoint-a.pt", "checkpoint-b.pt"]
    assert load_checkpoint(run)["epoch"] == 3
    assert two.stdout.count("test accuracy") == 1  # rank 1 prints nothing
    # Every step saw the whole batch of 64 (32 per process): the image counts are those of one process.
    assert sum(r["images"] for r in load_checkpoint(run)["history"]) == 3 * 10 * 64


def test_two_processes_learn_like_one(runs):
    course, _, one_dir = runs
    run = next((course / "runs").iterdir())
    two_summary = json.loads((run / "summary.json").read_text())
    one_summary = json.loads((one_dir / "summary.json").read_text())
    assert one_summary["world_size"] == 1
    assert one_summary["test_accuracy"] > 25  # it learns (10 classes: chance is 10 %)
    # Same batches, gradients averaged over the two halves: the same run up to float rounding.
    assert two_summary["test_accuracy"] == pytest.approx(one_summary["test_accuracy"], abs=3.0)
    for a, b in zip(rows(run), rows(one_dir)):
        assert float(a["test_loss"]) == pytest.approx(float(b["test_loss"]), rel=0.02)
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=0.02)


def test_killed_torchrun_run_resumes_with_torchrun(tmp_path, runs, synthetic_root):
    course, _, _ = runs
    run = tmp_path / "split"
    process = subprocess.Popen(torchrun_command(*TRAIN, "--data-root", synthetic_root, "--out", run), env=env_for(tmp_path),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if (run / "metrics.csv").exists() and (run / "metrics.csv").read_text().count("\n") >= 2:
                os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers, with no chance to clean up
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert load_checkpoint(run)["epoch"] < 3
    resumed = subprocess.run(torchrun_command("train", "--resume", "--out", run, "--no-progress", "--no-plots", "--no-tensorboard"),
                             env=env_for(tmp_path), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    assert [r["epoch"] for r in rows(run)] == ["1", "2", "3"]
    assert json.loads((run / "summary.json").read_text())["world_size"] == 2
    whole = next((course / "runs").iterdir())  # the uninterrupted 2-process run
    assert float(rows(run)[-1]["test_accuracy"]) == pytest.approx(float(rows(whole)[-1]["test_accuracy"]), abs=1.0)


@pytest.mark.parametrize("augment", ["none", "crop-flip"])
def test_shards_of_a_batch_are_the_rows_of_the_single_process_batch(augment):
    dataset = load_dataset("synthetic", None)

    def batches(rank: int, world: int):
        loader = DeviceLoader(dataset.train, 64, dataset.mean, dataset.std, shuffle=True, augment=augment,
                              dataset_name="synthetic", seed=3)
        if world > 1:
            loader.set_shard(rank, world)
        loader.set_epoch(2)
        return list(loader)

    single = batches(0, 1)
    halves = [batches(r, 2) for r in range(2)]
    assert len(halves[0]) == len(halves[1]) == len(single)
    for i, (images, labels) in enumerate(single):
        for r in range(2):
            assert torch.equal(halves[r][i][1], labels[r::2])
            assert torch.equal(halves[r][i][0], images[r::2])


def test_fit_shards_a_copy_and_leaves_the_callers_loader_whole(monkeypatch):
    """Under torchrun each process iterates its share of every batch, in a copy of the loader."""
    from MyModules import distributed

    dataset = load_dataset("synthetic", None)
    loader = DeviceLoader(dataset.train, 64, dataset.mean, dataset.std, shuffle=True, augment="crop-flip",
                          dataset_name="synthetic", seed=3)
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    shard = distributed.shard_loader(loader)
    assert shard is not loader and shard.shard == (1, 2) and loader.shard == (0, 1)
    assert shard.images is loader.images  # a copy of the loader, not of the data
    loader.set_epoch(2)
    shard.set_epoch(2)
    for (images, labels), (mine, my_labels) in zip(loader, shard):
        assert torch.equal(mine, images[1::2]) and torch.equal(my_labels, labels[1::2])


def test_a_batch_smaller_than_the_processes_is_refused():
    dataset = load_dataset("synthetic", None)
    loader = DeviceLoader(dataset.train, 1, dataset.mean, dataset.std)
    with pytest.raises(ConfigError, match="batch size 1 is smaller than the 2 processes"):
        loader.set_shard(0, 2)
