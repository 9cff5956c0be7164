"""The command line as a lab server runs it: real processes, a real kill, a resume.

Bad arguments are tests/test_bad_inputs.py's: every case through ``main`` in-process, a few of them as
real processes.
"""

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

from MyModules.checkpoint import has_checkpoint, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def cli_env(course_dir: Path) -> dict:
    env = dict(os.environ, COURSE_DIR=str(course_dir), PYTHONPATH=str(ROOT))
    env.pop("COURSE_TEST_MODE", None)  # these runs choose their own (small) sizes
    return env


def run_cli(args, course_dir, **kwargs):
    return subprocess.run([sys.executable, "-m", "MyModules", *args], env=cli_env(course_dir),
                          capture_output=True, text=True, timeout=300, **kwargs)


def test_synthetic_run_writes_metrics_summary_and_checkpoint(tmp_path, synthetic_root):
    out = tmp_path / "run"
    result = run_cli(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--epochs", "2",
                      "--max-steps", "20", "--out", str(out), "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"test_accuracy", "epochs", "train_seconds", "model", "dataset", "num_parameters"} <= set(summary)
    assert summary["model"] == "net" and summary["dataset"] == "synthetic" and summary["num_parameters"] == 62006
    assert summary["test_accuracy"] == pytest.approx(float(rows[-1]["test_accuracy"]), abs=1e-4)
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    # What students and instructors look at afterwards: plots, confusion CSVs, TensorBoard events.
    for name in ("learning_curves.png", "confusion_matrix.png", "predictions.png", "confusion_counts.csv"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_killed_run_resumes_to_the_same_weights(tmp_path, synthetic_root):
    common = ["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--epochs", "4", "--batch-size", "64", "--max-steps", "15",
              "--no-progress", "--no-plots", "--no-tensorboard"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli([*common, "--out", str(whole)], tmp_path).returncode == 0

    process = subprocess.Popen([sys.executable, "-m", "MyModules", *common, "--out", str(split)],
                               env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if has_checkpoint(split):
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # as a lost Colab runtime: no chance to clean up
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load_checkpoint(split / "checkpoint.pt")["epoch"]
    assert 1 <= killed_at < 4

    result = run_cli(["train", "--resume", "--out", str(split), "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"after epoch {killed_at}/4" in result.stdout
    a = load_checkpoint(whole / "checkpoint.pt")
    b = load_checkpoint(split / "checkpoint.pt")
    assert b["epoch"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert (whole / "metrics.csv").read_text().count("\n") == (split / "metrics.csv").read_text().count("\n") == 5


def test_resume_without_out_continues_the_latest_run(tmp_path, synthetic_root):
    first = run_cli(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--epochs", "1",
                     "--max-steps", "5", "--no-progress", "--no-plots", "--no-tensorboard"], tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli(["train", "--resume", "--no-progress", "--no-plots", "--no-tensorboard"], tmp_path)
    assert again.returncode == 0 and "resuming" in again.stdout
