"""What a run folder is, for ``python -m MyModules inspect RUN``: a report for people and a dict for scripts.

:func:`describe_run` reads the run's files (see ``inference.read_run``) and returns one dict: what was
trained on what, how far it got (``epochs_done`` of ``epochs_planned``: a run that was killed shows
the last complete epoch), its accuracies, and the model's torchinfo summary. A run that did not finish
has no ``summary.json`` yet; its per-class accuracy then comes from the checkpoint's last evaluation
(its confusion matrix) or, for checkpoints without one, is computed on the test set (``evaluate=True``);
its accuracies come from the checkpoint's history (what ``metrics.csv`` shows).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import CourseError
from ..metrics import confusion_matrix, per_class_accuracy
from ..train import amp_dtype_for, precision_name
from ..viz.summary import model_summary
from .inference import RunFiles, load_model, read_run, run_dataset


def _precision(run: RunFiles) -> str:
    recorded = run.recorded("precision")
    if recorded:
        return str(recorded)
    amp = run.config.get("amp")
    device = run.recorded("device")
    if amp is False:
        return precision_name(None)
    if not device:
        return f"not recorded (amp={amp}, device not recorded)"
    device = torch.device(device)
    if device.type != "cpu" and not (device.type == "cuda" and torch.cuda.is_available()):
        return f"not recorded (amp={amp}, device {device})"  # e.g. a GPU run inspected on a laptop
    return f"{precision_name(amp_dtype_for(device, amp))} (not recorded: what amp={amp} picks for {device} here)"


def _augment(run: RunFiles) -> str | None:
    done = run.summary.get("augment")  # what the loader did (a finished run)
    augment = done if done is not None else run.config.get("augment")  # run.json: as fit resolved it
    return "unknown" if augment == "auto" else augment  # "auto" stays only for loaders of your own


@torch.inference_mode()
def _evaluate_per_class(loaded, run: RunFiles, batch_size: int = 500) -> dict[str, float]:
    test = run_dataset(run).test
    images, labels = test.images, test.labels
    k = len(loaded.classes)
    confusion = torch.zeros((k, k), dtype=torch.int64)
    for start in range(0, len(labels), batch_size):
        logits = loaded.model(loaded.prepare(images[start:start + batch_size]))
        confusion += confusion_matrix(logits.argmax(1).cpu(), labels[start:start + batch_size], k)
    return dict(zip(loaded.classes, per_class_accuracy(confusion).tolist()))


def describe_run(run_dir, *, evaluate: bool = True, summary_depth: int = 3) -> dict[str, Any]:
    """Everything ``inspect`` shows, as a JSON-ready dict (``model_summary`` is the torchinfo table)."""
    run = read_run(run_dir)
    loaded = load_model(run)
    history = list(run.checkpoint.get("history") or [])
    planned = run.summary.get("planned_epochs") or run.config.get("epochs")
    done = int(run.checkpoint.get("epoch", len(history)))
    finished = bool(run.summary) and planned is not None and done >= planned
    accuracies = [r["test_accuracy"] for r in history]
    best_epoch = max(range(len(accuracies)), key=accuracies.__getitem__) + 1 if accuracies else None
    per_class = run.summary.get("per_class_accuracy")
    per_class_source = "summary.json"
    confusion = run.checkpoint.get("confusion")
    if not per_class and isinstance(confusion, torch.Tensor) and confusion.shape == (len(loaded.classes),) * 2:
        per_class = dict(zip(loaded.classes, per_class_accuracy(confusion).tolist()))
        per_class_source = f"the checkpoint's last evaluation (epoch {done})"
    if not per_class and evaluate:
        try:
            per_class = _evaluate_per_class(loaded, run)
            per_class_source = f"computed now from the checkpoint (epoch {done}) on the test set"
        except CourseError as e:  # the dataset is not here: report what the files say
            per_class, per_class_source = None, f"not available ({e})"
    stats = model_summary(loaded.model, (1, *loaded.preprocessing.input_shape), depth=summary_depth)
    return {
        "run_dir": str(run.run_dir),
        "state": "finished" if finished else "interrupted",
        "model": run.model_name or run.summary.get("model"),
        "model_class": type(loaded.model).__name__,
        "dataset": run.dataset_name,
        "classes": loaded.classes,
        "num_classes": len(loaded.classes),
        "epochs_done": done,
        "epochs_planned": planned,
        "precision": _precision(run),
        "augment": _augment(run),
        "seed": run.config.get("seed", run.recorded("seed")),
        "batch_size": run.config.get("batch_size"),
        "lr": run.config.get("lr"),
        "optimizer": run.config.get("optimizer"),
        "world_size": run.recorded("world_size") or 1,
        "device": run.recorded("device"),
        "test_mode": run.summary.get("test_mode"),
        "test_accuracy": accuracies[-1] if accuracies else run.summary.get("test_accuracy"),
        "best_test_accuracy": max(accuracies) if accuracies else run.summary.get("best_test_accuracy"),
        "best_epoch": best_epoch,
        "per_class_accuracy": per_class,
        "per_class_source": per_class_source,
        "num_parameters": stats.trainable_params,
        "mult_adds": stats.total_mult_adds,
        "preprocessing": loaded.preprocessing.to_dict(),
        "train_seconds": run.summary.get("train_seconds"),
        "images_per_second": run.summary.get("images_per_second"),
        "history": history,
        "model_summary": str(stats),
    }


def format_report(info: dict[str, Any]) -> str:
    """The text ``inspect`` prints."""
    p = info["preprocessing"]
    state = (f"finished: {info['epochs_done']}/{info['epochs_planned']} epochs" if info["state"] == "finished"
             else f"interrupted after epoch {info['epochs_done']} of {info['epochs_planned']} "
                  "(continue with: python -m MyModules train --resume --out RUN)")
    lines = [
        f"run:           {info['run_dir']}",
        f"state:         {state}",
        f"model:         {info['model']} ({info['model_class']}), {info['num_parameters']:,} parameters, "
        f"{info['mult_adds'] / 1e6:,.2f} M MACs per image",
        f"dataset:       {info['dataset']}, {info['num_classes']} classes: {', '.join(info['classes'])}",
        f"input:         {p['channels']}x{p['image_size']}x{p['image_size']}, mean "
        f"{[round(m, 4) for m in p['mean']]}, std {[round(s, 4) for s in p['std']]}",
        f"training:      {info['optimizer']}, lr {info['lr']}, batch {info['batch_size']}, seed {info['seed']}, "
        f"augmentation {info['augment']}, precision {info['precision']}, "
        f"{info['world_size']} process(es)",
    ]
    if info["test_accuracy"] is not None:
        lines.append(f"test accuracy: {info['test_accuracy']:.2f} % (last epoch), best "
                     f"{info['best_test_accuracy']:.2f} % (epoch {info['best_epoch']})")
    if info["per_class_accuracy"]:
        lines.append(f"per-class test accuracy ({info['per_class_source']}):")
        lines.extend(f"  {name:>14s}: {acc:5.1f} %" for name, acc in info["per_class_accuracy"].items())
    else:
        lines.append(f"per-class test accuracy: {info['per_class_source']}")
    lines.append("model summary (torchinfo, one image):")
    lines.append(info["model_summary"])
    return "\n".join(lines)
