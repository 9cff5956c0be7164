"""Training in the pytorch/examples shape: ``train_one_epoch``, ``evaluate``, and ``fit`` around them.

``fit`` adds what a student's hour of training needs: a checkpoint after every epoch (atomic, in the
run folder on Drive), ``resume=True`` to continue a killed run from its last complete epoch with the
same result as an uninterrupted one, ``metrics.csv`` and ``summary.json``, and callbacks (TensorBoard,
Optuna pruning) that see each epoch's numbers.

Speed (see ``loader.py`` for the data side): mixed precision on GPUs (bf16 where supported, else fp16
with loss scaling), channels_last and cudnn.benchmark on CUDA, optional ``torch.compile``, and no
host synchronisation inside the step: loss and correct counts are summed on the device and read once
per ``log_every`` steps.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import env
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .metrics import confusion_matrix, format_per_class, per_class_accuracy
from .models import count_parameters
from .seeding import epoch_seed, seed_everything  # noqa: F401  (seed_everything: part of this module's API)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


@dataclass
class TrainConfig:
    """How to train. The defaults reach high accuracy on CIFAR-10 in a few epochs."""

    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # images per optimiser step
    lr: float = 0.05  # peak learning rate (one-cycle schedule: warms up, then anneals to ~0)
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adam" (AdamW)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 penalty, per step
    schedule: str = "onecycle"  # "onecycle" or "constant"
    label_smoothing: float = 0.0  # 0.1 often helps a little on CIFAR
    augment: bool = True  # random crop (padding 4) + horizontal flip on the training set
    seed: int = 0  # fixes data order and augmentation (seed_everything(seed) before building the model fixes its weights)
    max_steps_per_epoch: int | None = None  # stop each epoch after this many steps (quick runs)
    amp: bool | None = None  # mixed precision; None: on for CUDA and for CPUs with native bf16
    channels_last: bool | None = None  # NHWC memory layout; None: where faster (CUDA, CPU)
    compile: bool = False  # torch.compile the model (slow first epoch, faster later ones)
    log_every: int = 50  # steps between progress-bar updates (each one waits for the device)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("onecycle", "constant"):
            raise ValueError(f"schedule must be 'onecycle' or 'constant', got {self.schedule!r}")


def amp_dtype_for(device: torch.device, amp: bool | None = None) -> torch.dtype | None:
    """The autocast dtype to use on ``device``: bf16 where supported, fp16 on older GPUs (T4), None for off.

    ``amp=None`` means: on for CUDA, and on for CPUs that compute bf16 in hardware.
    """
    if amp is None:
        amp = device.type == "cuda" or (device.type == "cpu" and env.cpu_has_native_bf16())
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16  # CPU autocast supports bf16 only


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW, updating all parameters at once: fused kernels on CUDA
    (one launch, and with fp16 loss scaling no host sync per step to check for infinities), foreach
    ops on CPU (measured here: the tutorial Net's step 10.7 -> 8.9 ms)."""
    fused = {"fused": True} if next(model.parameters()).is_cuda else {"foreach": True}
    if config.optimizer == "adam":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           nesterov=config.momentum > 0, weight_decay=config.weight_decay, **fused)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """One-cycle (per step) or None; ``total_steps`` = epochs × steps per epoch."""
    if config.schedule == "constant" or total_steps < 3:
        return None  # a run of 1-2 steps is too short to warm up and anneal
    # Warm up for a quarter of the run, and for at least 2 steps (OneCycleLR divides by the length).
    pct_start = min(0.5, max(0.25, 2 / total_steps))
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps,
                                               pct_start=pct_start)


def _steps(loader, max_steps: int | None) -> int:
    n = len(loader)
    return min(n, max_steps) if max_steps else n


def train_one_epoch(model: nn.Module, device: torch.device, train_loader, optimizer: torch.optim.Optimizer,
                    epoch: int, *, criterion: nn.Module | None = None, scheduler=None,
                    scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None,
                    max_steps: int | None = None, log_every: int = 50, progress: bool = True,
                    on_log=None) -> dict[str, float]:
    """One pass over ``train_loader``; returns ``loss`` (mean), ``accuracy`` (%), ``images``, ``seconds``.

    ``on_log(step_in_epoch, {"loss", "accuracy"})`` is called every ``log_every`` steps with the
    running numbers (the only place the host waits for the device).
    """
    model.train()
    criterion = criterion or nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    steps = _steps(train_loader, max_steps)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"epoch {epoch} train", leave=False, disable=not progress)
    for step, (images, labels) in enumerate(train_loader, start=1):
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            outputs = model(images)  # (B, num_classes)
            loss = criterion(outputs, labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach().float() * labels.shape[0]
        correct += (outputs.detach().argmax(1) == labels).sum()
        seen += labels.shape[0]
        if step % log_every == 0 or step == steps:
            running = {"loss": loss_sum.item() / seen, "accuracy": 100.0 * correct.item() / seen}
            bar.set_postfix(loss=f"{running['loss']:.3f}", acc=f"{running['accuracy']:.1f}%")
            if on_log is not None:
                on_log(step, running)
        bar.update(1)
        if step >= steps:
            break
    bar.close()
    if seen == 0:
        raise RuntimeError("the training loader yielded no batch")
    return {"loss": loss_sum.item() / seen, "accuracy": 100.0 * correct.item() / seen, "images": seen,
            "seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model: nn.Module, device: torch.device, test_loader, *, num_classes: int | None = None,
             criterion: nn.Module | None = None, amp_dtype: torch.dtype | None = None,
             max_steps: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Loss (mean), accuracy (%) and, when ``num_classes`` is given, the confusion matrix (CPU, int64)."""
    model.eval()
    criterion = criterion or nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device) if num_classes else None
    seen = 0
    steps = _steps(test_loader, max_steps)
    for step, (images, labels) in enumerate(tqdm(test_loader, total=steps, desc="test", leave=False,
                                                 disable=not progress), start=1):
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            outputs = model(images)
        loss_sum += criterion(outputs.float(), labels) * labels.shape[0]
        predictions = outputs.argmax(1)
        correct += (predictions == labels).sum()
        if confusion is not None:
            confusion += confusion_matrix(predictions, labels, num_classes)
        seen += labels.shape[0]
        if step >= steps:
            break
    if seen == 0:
        raise RuntimeError("the test loader yielded no batch")
    result = {"loss": loss_sum.item() / seen, "accuracy": 100.0 * correct.item() / seen, "images": seen}
    if confusion is not None:
        result["confusion"] = confusion.cpu()
    return result


class Callback:
    """Hooks ``fit`` calls; subclass and override what you need (TensorBoard, Optuna pruning...)."""

    def on_train_begin(self, model: nn.Module, start_epoch: int, run_dir: Path | None) -> None: ...

    def on_log(self, global_step: int, metrics: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None: ...

    def on_train_end(self, summary: dict[str, Any]) -> None: ...


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one row per epoch, columns METRICS_COLUMNS
    summary: dict[str, Any]  # what summary.json holds
    run_dir: Path | None
    confusion: torch.Tensor | None = field(default=None, repr=False)  # last evaluation, (K, K)


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """A fresh folder ``runs_dir/<name>-<YYYYmmdd-HHMMSS>`` (never an earlier run's)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    path.mkdir(parents=True)
    return path


def latest_run_dir(runs_dir: str | Path) -> Path | None:
    """The most recently changed run folder under ``runs_dir`` that holds a checkpoint."""
    runs = [p.parent for p in Path(runs_dir).glob(f"*/{CHECKPOINT_NAME}")]
    return max(runs, key=lambda p: (p / CHECKPOINT_NAME).stat().st_mtime) if runs else None


def _write_metrics(run_dir: Path, history: Sequence[dict]) -> None:
    tmp = run_dir / ".metrics.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    tmp.replace(run_dir / "metrics.csv")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def apply_test_mode(config: TrainConfig, verbose: bool = True) -> TrainConfig:
    """In test mode, cap epochs and steps per epoch; otherwise return ``config`` unchanged."""
    limits = env.test_limits()
    if not limits:
        return config
    steps = min(config.max_steps_per_epoch or limits.steps, limits.steps,
                max(2, -(-limits.images // config.batch_size)))  # ceil: at least 2 steps
    capped = dataclasses.replace(config, epochs=min(config.epochs, limits.epochs), max_steps_per_epoch=steps)
    if verbose and (capped.epochs, capped.max_steps_per_epoch) != (config.epochs, config.max_steps_per_epoch):
        print(f"テストモード: epochs {config.epochs} → {capped.epochs}, 1エポック最大 {steps} ステップ")
    return capped


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig, device: torch.device | str, *,
        run_dir: str | Path | None = None, resume: bool = False, classes: Sequence[str] | None = None,
        callbacks: Iterable[Callback] = (), info: dict[str, Any] | None = None,
        progress: bool = True) -> FitResult:
    """Train ``model`` for ``config.epochs`` epochs, evaluating on ``test_loader`` after each.

    With ``run_dir``, a checkpoint (``checkpoint.pt``), ``metrics.csv`` and ``summary.json`` are
    written there after every epoch; ``resume=True`` continues from that checkpoint (same final
    weights as an uninterrupted run on CPU). ``classes`` adds per-class accuracy to the summary.
    ``info`` goes into ``summary.json`` as is (e.g. ``{"model": "net", "dataset": "cifar10"}``).
    """
    device = torch.device(device)
    config = apply_test_mode(config)
    callbacks = list(callbacks)
    run_dir = Path(run_dir) if run_dir is not None else None
    seed_everything(config.seed)
    amp_dtype = amp_dtype_for(device, config.amp)
    channels_last = config.channels_last if config.channels_last is not None else env.prefers_channels_last(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    train_model = torch.compile(model) if config.compile else model  # weights stay shared with `model`
    optimizer = make_optimizer(model, config)
    steps_per_epoch = _steps(train_loader, config.max_steps_per_epoch)
    scheduler = make_scheduler(optimizer, config, config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    num_classes = len(classes) if classes is not None else None

    history: list[dict[str, float]] = []
    start_epoch = 1
    checkpoint_path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
    if resume:
        if checkpoint_path is None:
            raise FileNotFoundError("cannot resume: no run folder given (run_dir is None); pass the folder of "
                                    "the run to continue, e.g. train.latest_run_dir(course.runs_dir)")
        if not checkpoint_path.exists():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT_NAME} in {run_dir} (no epoch has finished "
                                    "there yet); start it without resume=True")
        state = load_checkpoint(checkpoint_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        history = list(state["history"])
        start_epoch = state["epoch"] + 1
        print(f"resuming {run_dir.name} after epoch {state['epoch']}/{config.epochs}")
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / "config.json", dataclasses.asdict(config))

    for cb in callbacks:
        cb.on_train_begin(model, start_epoch, run_dir)
    last_eval: dict[str, Any] = {}
    for epoch in range(start_epoch, config.epochs + 1):
        # Everything random in this epoch depends on (seed, epoch) only: resuming repeats it exactly.
        torch.manual_seed(epoch_seed(config.seed, epoch))
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)

        def on_log(step: int, metrics: dict[str, float], _epoch: int = epoch) -> None:
            for cb in callbacks:
                cb.on_log((_epoch - 1) * steps_per_epoch + step, metrics)

        train = train_one_epoch(train_model, device, train_loader, optimizer, epoch, criterion=criterion,
                                scheduler=scheduler, scaler=scaler, amp_dtype=amp_dtype,
                                max_steps=config.max_steps_per_epoch, log_every=config.log_every,
                                progress=progress, on_log=on_log)
        last_eval = evaluate(train_model, device, test_loader, num_classes=num_classes, amp_dtype=amp_dtype)
        row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
               "test_loss": last_eval["loss"], "test_accuracy": last_eval["accuracy"],
               "seconds": train["seconds"], "lr": optimizer.param_groups[0]["lr"], "images": train["images"]}
        history.append(row)
        if progress:
            print(f"epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.3f} acc {row['train_accuracy']:.1f}% | "
                  f"test loss {row['test_loss']:.3f} acc {row['test_accuracy']:.1f}% | {row['seconds']:.1f} s")
        if run_dir is not None:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler is not None else None,
                             "scaler": scaler.state_dict() if scaler is not None else None,
                             "epoch": epoch, "rng": capture_rng(), "config": dataclasses.asdict(config),
                             "history": history}, checkpoint_path)
            _write_metrics(run_dir, history)
        for cb in callbacks:
            cb.on_epoch_end(epoch, row, model)

    summary = _summary(model, config, history, last_eval, classes, info, device)
    if run_dir is not None:
        _write_json(run_dir / "summary.json", summary)
    if classes is not None and "confusion" in last_eval and progress:
        print(format_per_class(last_eval["confusion"], classes))
    for cb in callbacks:
        cb.on_train_end(summary)
    return FitResult(history, summary, run_dir, last_eval.get("confusion"))


def _summary(model, config, history, last_eval, classes, info, device) -> dict[str, Any]:
    train_seconds = sum(r["seconds"] for r in history)
    images = sum(r.get("images", 0) for r in history)
    summary: dict[str, Any] = {
        "model": type(model).__name__,
        "dataset": None,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "best_test_accuracy": max(r["test_accuracy"] for r in history) if history else None,
        "epochs": len(history),
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images / train_seconds, 1) if train_seconds > 0 else None,
        "num_parameters": count_parameters(model),
        "device": str(device),
        "test_mode": env.test_mode(),
        "config": dataclasses.asdict(config),
    }
    if classes is not None and "confusion" in last_eval:
        summary["per_class_accuracy"] = dict(zip(classes, per_class_accuracy(last_eval["confusion"]).tolist()))
    summary.update(info or {})
    return summary
