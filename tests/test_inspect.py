"""``python -m MyModules inspect`` on a finished, a killed and a resumed run (SIGKILL), as real processes
or through ``main`` in this process."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from MyModules.checkpoint import load_checkpoint
from MyModules.data import CIFAR10_CLASSES, load_dataset
from MyModules.runs.inspect import describe_run
from tests.support.runs import cli, in_process, killed_run, resumed_run, trained_run


def inspect_json(run) -> dict:
    result = in_process("inspect", run, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def metrics(run) -> list[dict]:
    return list(csv.DictReader(open(run / "metrics.csv")))


def test_finished_run_json_says_what_the_run_is_and_how_it_did():
    run = trained_run("synthetic")
    info = inspect_json(run)
    summary = json.loads((run / "summary.json").read_text())
    rows = metrics(run)
    assert info["state"] == "finished" and info["epochs_done"] == info["epochs_planned"] == 2
    assert (info["model"], info["model_class"], info["dataset"]) == ("net", "Net", "synthetic")
    assert info["classes"] == list(CIFAR10_CLASSES)
    assert (info["seed"], info["augment"], info["batch_size"]) == (0, "crop-flip", 32)
    assert info["precision"] == summary["precision"] == "fp32"  # trained with --no-amp
    assert info["test_accuracy"] == pytest.approx(float(rows[-1]["test_accuracy"]), abs=1e-4)
    assert info["best_test_accuracy"] == pytest.approx(max(float(r["test_accuracy"]) for r in rows), abs=1e-4)
    assert info["per_class_accuracy"] == summary["per_class_accuracy"]
    assert info["num_parameters"] == summary["num_parameters"] == 62006
    assert info["preprocessing"]["mean"] == pytest.approx(load_dataset("synthetic", None).mean)
    assert "Conv2d (conv1)" in info["model_summary"] and "[1, 3, 32, 32]" in info["model_summary"]


def test_finished_run_report_for_people():
    result = cli("inspect", trained_run("mnist"))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "finished: 2/2 epochs" in text and "net (Net), 62,006 parameters" in text
    assert "dataset:       mnist, 10 classes: 0 - zero, 1 - one" in text
    assert "per-class test accuracy (summary.json):" in text and "9 - nine:" in text
    assert "Total params: 62,006" in text  # torchinfo's table


def test_killed_run_shows_the_last_complete_epoch_and_evaluates_its_checkpoint():
    run = killed_run()
    assert not (run / "summary.json").exists()
    info = inspect_json(run)
    assert info["state"] == "interrupted" and info["epochs_done"] == 1 and info["epochs_planned"] == 2
    assert info["model"] == "widenet" and len(info["history"]) == 1
    assert load_checkpoint(run)["epoch"] == 1
    assert (info["augment"], info["precision"]) == ("crop-flip", "fp32")  # resolved from config, --no-amp
    # Per-class accuracy from the checkpoint's last evaluation: weighted by class sizes it must give
    # the overall test accuracy that fit measured after epoch 1 (metrics.csv).
    assert info["per_class_source"] == "the checkpoint's last evaluation (epoch 1)"
    assert weighted_accuracy(info["per_class_accuracy"]) == pytest.approx(float(metrics(run)[0]["test_accuracy"]),
                                                                          abs=1e-3)
    text = in_process("inspect", run).stdout
    assert "interrupted after epoch 1 of 2" in text and "--resume" in text


def weighted_accuracy(per_class: dict[str, float]) -> float:
    counts = load_dataset("synthetic", None).test.labels.bincount(minlength=10).tolist()
    return sum(acc * n for acc, n in zip(per_class.values(), counts)) / sum(counts)


def test_checkpoint_without_an_evaluation_is_evaluated_on_the_test_set(tmp_path):
    """An older checkpoint (one file, no confusion matrix): the per-class accuracy is computed now,
    from its weights on the test set, and agrees with what fit measured after that epoch."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("run.json", "metrics.csv"):
        shutil.copy(killed_run() / name, old / name)
    state = load_checkpoint(killed_run())
    del state["confusion"], state["format"]
    torch.save(state, old / "checkpoint.pt")
    info = describe_run(old)
    assert info["per_class_source"] == "computed now from the checkpoint (epoch 1) on the test set"
    assert weighted_accuracy(info["per_class_accuracy"]) == pytest.approx(float(metrics(old)[0]["test_accuracy"]),
                                                                          abs=1e-3)
    assert describe_run(old, evaluate=False)["per_class_accuracy"] is None


def test_resumed_run_is_finished_with_every_epoch():
    run = resumed_run()
    info = inspect_json(run)
    assert info["state"] == "finished" and info["epochs_done"] == info["epochs_planned"] == 2
    assert [r["epoch"] for r in info["history"]] == [1, 2]
    assert info["per_class_source"] == "summary.json"
    assert info["test_accuracy"] == pytest.approx(float(metrics(run)[-1]["test_accuracy"]), abs=1e-4)


def test_not_a_run_folder_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "empty").mkdir()
    for run, folder in ((cli, tmp_path / "empty"), (in_process, tmp_path / "absent")):
        result = run("inspect", folder)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    torn = tmp_path / "torn"
    torn.mkdir()
    whole = max(trained_run("synthetic").glob("checkpoint-*.pt"), key=lambda p: p.stat().st_mtime_ns)
    (torn / whole.name).write_bytes(whole.read_bytes()[:1000])  # cut off, as by a full disk
    result = in_process("inspect", torn)
    assert result.returncode == 2 and "damaged" in result.stderr and "Traceback" not in result.stderr
