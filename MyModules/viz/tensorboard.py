"""TensorBoard logging as a ``fit`` callback, and reading the logs back.

    logger = TensorBoardLogger(images=example_images, activation_layers=["features.0.2"])
    fit(model, train_loader, test_loader, config, device, run_dir=run_dir, callbacks=[logger])

Each run writes into its own folder, ``run_dir/tensorboard`` (``run_dir`` is new for every run and
lives on Drive in Colab), so runs never mix; point TensorBoard at ``course.runs_dir`` to compare
runs side by side. A resumed run (``fit(..., resume=True)``) continues in the same folder: the
writer is opened with ``purge_step`` just after the last checkpointed epoch, so what the killed
run logged after its checkpoint is dropped instead of drawn twice.

What is logged, every tag on one x axis, the global optimiser step:

* ``loss/train_running``, ``accuracy/train_running``: running means every ``log_every`` steps;
* ``loss/train``, ``loss/test``, ``accuracy/train``, ``accuracy/test`` (%), ``learning_rate``,
  ``epoch``: once per epoch, at the epoch's last step;
* histograms every ``histograms_every`` epochs: ``weights/<name>`` (``named_parameters()``),
  ``buffers/<name>`` (float ``named_buffers()``, e.g. BatchNorm running statistics),
  ``gradients/<name>`` (of the epoch's last step) and ``activations/<layer>`` (outputs of chosen
  layers on a fixed batch, through forward hooks);
* the model graph (once), and at the end the run's hyperparameters with its final metrics (HPARAMS tab).

Names come from ``named_parameters()`` / ``named_buffers()``, so each histogram is labelled with
its own tensor by construction (the seed course zipped ``state_dict()`` with ``parameters()`` and
shifted every name after the first BatchNorm, whose buffers are not parameters).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import run_folder
from ..train import Callback
from .hooks import activations_for, find_module

TENSORBOARD_FOLDER = "tensorboard"  # sub-folder of a run folder that holds its event files
EPOCH_TAG = "epoch"  # scalar logged at each epoch's last step; lets a resumed run find that step


def log_weight_histograms(writer, model: nn.Module, step: int, *, gradients: bool = True) -> list[str]:
    """Histograms of every parameter, float buffer and (if present) gradient of ``model``.

    Returns the tags written. Integer buffers (BatchNorm's ``num_batches_tracked``) are skipped:
    a histogram of one counter says nothing.
    """
    tags = []
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), step)
        tags.append(f"weights/{name}")
        if gradients and param.grad is not None:
            writer.add_histogram(f"gradients/{name}", param.grad.detach().float().cpu(), step)
            tags.append(f"gradients/{name}")
    for name, buffer in model.named_buffers():
        if buffer.is_floating_point():
            writer.add_histogram(f"buffers/{name}", buffer.detach().float().cpu(), step)
            tags.append(f"buffers/{name}")
    return tags


def _hparam_value(value: Any):
    # The HPARAMS tab accepts numbers, strings and bools only.
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class TensorBoardLogger(Callback):
    """A :class:`~MyModules.train.Callback` that writes TensorBoard logs of a ``fit`` run.

    ``images``: a fixed batch of *normalised* images (B, C, H, W) for the model graph and the
    activation histograms (a few dozen are enough); without it both are skipped.
    ``activation_layers``: names from ``model.named_modules()`` whose outputs get histograms.
    ``log_dir``: default ``run_dir/tensorboard``. ``hparams``: extra hyperparameters to show next
    to the training settings (the run folder's ``run.json``; none without a ``run_dir``), e.g.
    ``{"model": "widenet"}``.
    """

    def __init__(self, log_dir: str | Path | None = None, *, images: torch.Tensor | None = None,
                 activation_layers: Sequence[str] = (), histograms_every: int = 1, graph: bool = True,
                 gradients: bool = True, hparams: dict[str, Any] | None = None, flush_secs: int = 10):
        if activation_layers and images is None:
            raise ValueError("activation_layers need example images: pass images=<a normalised batch>")
        if histograms_every < 0:
            raise ValueError(f"histograms_every must be 0 (never) or more, got {histograms_every}")
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.images = images
        self.activation_layers = list(activation_layers)
        self.histograms_every = histograms_every
        self.graph, self.gradients = graph, gradients
        self.hparams = dict(hparams or {})
        self.run_dir: Path | None = None  # fit's run folder, whose run.json holds the settings
        self.flush_secs = flush_secs  # TensorBoard in Colab shows new points after at most this long
        self.writer = None
        self.step = 0  # global step of the last logged point
        self.last_row: dict[str, float] = {}

    # -- Callback -------------------------------------------------------------------------------

    def on_train_begin(self, model: nn.Module, start_epoch: int, run_dir: Path | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.log_dir is None:
            if run_dir is None:
                raise ValueError("TensorBoardLogger needs a folder: pass run_dir= to fit or log_dir= here")
            self.log_dir = Path(run_dir) / TENSORBOARD_FOLDER
        for name in self.activation_layers:
            find_module(model, name)  # a typo fails now, not after the first epoch
        purge_step = None
        if start_epoch > 1:  # resumed: drop what was logged after the checkpointed epoch
            purge_step = epoch_end_step(self.log_dir, start_epoch - 1)
            self.step = purge_step - 1 if purge_step is not None else 0
        elif has_events(self.log_dir):  # a fresh run in a used folder replaces the old curves
            purge_step = 0
        self.log_dir.mkdir(parents=True, exist_ok=True)
        wait_to_sort_last(self.log_dir)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step, flush_secs=self.flush_secs)
        if start_epoch == 1:
            self._layout()
            if self.graph and self.images is not None:
                self._add_graph(model)

    def on_log(self, global_step: int, metrics: dict[str, float]) -> None:
        self.step = global_step
        for key, value in metrics.items():
            self.writer.add_scalar(f"{key}/train_running", value, global_step)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None:
        w, step = self.writer, self.step
        w.add_scalar("loss/train", metrics["train_loss"], step)
        w.add_scalar("loss/test", metrics["test_loss"], step)
        w.add_scalar("accuracy/train", metrics["train_accuracy"], step)
        w.add_scalar("accuracy/test", metrics["test_accuracy"], step)
        if "lr" in metrics:
            w.add_scalar("learning_rate", metrics["lr"], step)
        w.add_scalar(EPOCH_TAG, epoch, step)
        if self.histograms_every and epoch % self.histograms_every == 0:
            log_weight_histograms(w, model, step, gradients=self.gradients)
            if self.activation_layers:
                images = self.images.to(next(model.parameters()).device)
                for name, act in activations_for(model, images, self.activation_layers).items():
                    w.add_histogram(f"activations/{name}", act, step)
        self.last_row = dict(metrics)
        w.flush()  # the epoch's points reach Drive now, not when the run ends

    def on_train_end(self, summary: dict[str, Any]) -> None:
        if self.writer is None:
            return
        settings = run_folder.read_settings(self.run_dir) if self.run_dir is not None else None
        config = settings.config if settings is not None else {}
        hparams = {f"config.{k}": _hparam_value(v) for k, v in config.items()}
        hparams.update({k: _hparam_value(summary[k]) for k in ("model", "dataset") if summary.get(k) is not None})
        hparams.update({k: _hparam_value(v) for k, v in self.hparams.items()})
        final = {"test_accuracy": summary.get("test_accuracy"), "best_test_accuracy": summary.get("best_test_accuracy"),
                 "test_loss": self.last_row.get("test_loss")}
        metrics = {f"hparam/{k}": float(v) for k, v in final.items() if v is not None}
        if metrics:
            # run_name="." keeps the HPARAMS entry in this run's folder (the default makes a new sub-run).
            self.writer.add_hparams(hparams, metrics, run_name=".", global_step=self.step)
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and close the event file (``fit`` does it at the end; call it after an interrupted fit)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _layout(self) -> None:
        # CUSTOM SCALARS tab: train and test on one chart, the view that shows overfitting.
        self.writer.add_custom_scalars({"train vs test": {
            "loss": ["Multiline", ["loss/train", "loss/test"]],
            "accuracy (%)": ["Multiline", ["accuracy/train", "accuracy/test"]],
        }})

    def _add_graph(self, model: nn.Module) -> None:
        images = self.images.to(next(model.parameters()).device)
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings are noise for students
                self.writer.add_graph(model, images[:1])
        except Exception as e:  # noqa: BLE001 - a model the tracer cannot handle must not stop training
            print(f"TensorBoard: model graph skipped ({type(e).__name__}: {e})")
        finally:
            model.train(was_training)


# ----------------------------------------------------------------------------------------------
# Reading logs back (TensorBoard's own reader, which applies purge_step as the UI does)
# ----------------------------------------------------------------------------------------------

def wait_to_sort_last(log_dir: str | Path) -> None:
    """Wait (under a second) until an event file created now sorts after every one in ``log_dir``.

    TensorBoard reads a folder's event files in name order. A name holds its creation time in whole
    seconds, then the process id and a per-process counter as a decimal string, so of two files made
    in the same second by one process, counter 10 sorts before counter 9: a resumed run's file could
    be read before the killed run's, and its purge would apply before the points it must drop.
    """
    stamps = [int(part) for p in Path(log_dir).glob("events.out.tfevents.*")
              if (part := p.name.split(".")[3]).isdigit()]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.02)


def has_events(log_dir: str | Path) -> bool:
    return Path(log_dir).is_dir() and any(Path(log_dir).glob("events.out.tfevents.*"))


def load_events(log_dir: str | Path, *, histograms: bool = True):
    """An ``EventAccumulator`` for ``log_dir`` with every scalar (and histogram) kept, already loaded."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    size = {ea.SCALARS: 0, ea.HISTOGRAMS: 0 if histograms else 1, ea.TENSORS: 0,
            ea.IMAGES: 1, ea.AUDIO: 1, ea.COMPRESSED_HISTOGRAMS: 1}
    return ea.EventAccumulator(str(log_dir), size_guidance=size).Reload()


def epoch_end_step(log_dir: str | Path, epoch: int) -> int | None:
    """The global step just after epoch ``epoch`` ended in the logs of ``log_dir`` (None if not logged)."""
    if not has_events(log_dir):
        return None
    acc = load_events(log_dir, histograms=False)
    if EPOCH_TAG not in acc.Tags()["scalars"]:
        return None
    steps = [e.step for e in acc.Scalars(EPOCH_TAG) if round(e.value) == epoch]
    return max(steps) + 1 if steps else None


def read_scalars(log_dir: str | Path):
    """All scalars of one run as a pandas DataFrame with columns tag, step, value, wall_time."""
    import pandas as pd

    acc = load_events(log_dir, histograms=False)
    rows = [(tag, e.step, e.value, e.wall_time) for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]
    return pd.DataFrame(rows, columns=["tag", "step", "value", "wall_time"])


def scalars_to_csv(log_dir: str | Path, path: str | Path) -> Path:
    """Write one run's scalars as a wide CSV (one row per step, one column per tag); returns ``path``."""
    frame = read_scalars(log_dir)
    wide = frame.pivot_table(index="step", columns="tag", values="value", aggfunc="last").sort_index()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wide.to_csv(path)
    return path


def tensorboard_command(log_dir: str | Path, port: int = 6006) -> str:
    """The shell command that serves ``log_dir`` on a lab server (open it through ``ssh -L``)."""
    return f"tensorboard --logdir {log_dir} --port {port}"
