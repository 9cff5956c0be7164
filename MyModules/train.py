"""Training in the pytorch/examples shape: ``train_one_epoch``, ``evaluate``, and ``fit`` around them.

``fit`` adds what a student's hour of training needs: a checkpoint after every epoch (two slots in the
run folder on Drive, see ``checkpoint.py``), ``resume=True`` to continue a killed run from its last
complete epoch with the same result as an uninterrupted one, the run's settings once in ``run.json``,
``metrics.csv`` and ``summary.json`` (``run_folder.py``), and callbacks (TensorBoard, Optuna pruning) that see each epoch's numbers.

Defaults that hold on every device (measured; see benchmarks/RESULTS.md):

* precision (:func:`amp_dtype_for`): bf16 autocast on GPUs of compute capability 8.0 and newer (A100,
  L4, H100), fp16 with loss scaling below (T4, V100), float32 on the CPU unless ``amp=True``;
* augmentation by dataset, chosen by the loaders (``loader.make_loaders``, ``loader.resolve_augment``):
  crop + flip for photos, none for digits and image folders, crop for clothes; ``fit`` records it;
* the momentum set is the momentum used (the one-cycle schedule varies the learning rate only);
* a loss that becomes NaN, infinite or a hundred times that of guessing stops the run with :class:`~MyModules.errors.DivergenceError`.

Speed (see ``loader.py`` for the data side): channels_last, cudnn.benchmark on CUDA while an epoch
runs (:func:`cudnn_autotune`; the flag is put back afterwards), optional ``torch.compile``, and no host
synchronisation inside a GPU step: loss and correct counts are summed on the device and read once per
``log_every`` steps. ``fit`` changes nothing it was given but the model it trains: not the loaders
(under torchrun it iterates a sharded copy), not torch's global flags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed, env, interrupt, run_folder
from .checkpoint import (
    capture_rng,
    check_compatible,
    load_checkpoint,
    restore_rng,
    save_run_checkpoint,
)
from .errors import CheckpointError, ConfigError, DivergenceError, DriveError
from .loader import AUGMENTS
from .metrics import confusion_matrix, format_per_class, per_class_accuracy
from .models import count_parameters
from .run_folder import METRICS_COLUMNS, RunSettings, latest_run_dir, new_run_dir  # noqa: F401  (part of this API)
from .seeding import epoch_seed, seed_everything  # noqa: F401  (seed_everything: part of this API)

OPTIMIZERS = ("sgd", "adam")  # TrainConfig.optimizer: SGD with Nesterov momentum, or AdamW


@dataclass
class TrainConfig:
    """How to train. The defaults reach high accuracy on CIFAR-10 in a few epochs."""

    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # images per optimiser step
    lr: float = 0.015  # peak learning rate (one-cycle: warms up, then anneals to ~0); 0.02+ unstable for Net, see RESULTS.md
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adam" (AdamW)
    momentum: float = 0.9  # SGD momentum, constant through the run
    weight_decay: float = 5e-4  # L2 penalty, per step
    schedule: str = "onecycle"  # "onecycle" or "constant"
    label_smoothing: float = 0.0  # 0.1 often helps a little on CIFAR
    augment: str = "auto"  # what the training loader does; make_loaders(augment=...) decides, fit records it here
    # ("auto": whatever the loader does; "none", "crop", "crop-flip": must be what it does, else ConfigError)
    seed: int = 0  # fixes data order and augmentation (seed_everything(seed) before building the model fixes its weights)
    max_steps_per_epoch: int | None = None  # stop each epoch after this many steps (quick runs)
    amp: bool | None = None  # mixed precision; None: on for CUDA (bf16 or fp16 by GPU), off on CPU
    channels_last: bool | None = None  # NHWC memory layout; None: where faster (CUDA, CPU)
    compile: bool = False  # torch.compile the model (slow first epoch, faster later ones)
    log_every: int = 50  # steps between progress-bar updates (each one waits for the device)

    def __post_init__(self):
        if isinstance(self.augment, bool):  # older spelling: True / False
            self.augment = "crop-flip" if self.augment else "none"
        for problem in _config_problems(self):
            raise ConfigError(problem)


def _config_problems(c: TrainConfig) -> list[str]:
    """What is wrong with ``c``, one sentence each (empty when nothing is)."""
    def positive(x) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x) and x > 0

    checks = [
        (isinstance(c.epochs, int) and c.epochs >= 1, f"epochs must be at least 1, got {c.epochs}"),
        (isinstance(c.batch_size, int) and c.batch_size >= 1, f"batch_size must be at least 1, got {c.batch_size}"),
        (positive(c.lr), f"lr must be a positive finite number, got {c.lr}"),
        (c.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {c.optimizer!r}"),
        (c.schedule in ("onecycle", "constant"), f"schedule must be 'onecycle' or 'constant', got {c.schedule!r}"),
        (0 <= c.momentum < 1, f"momentum must be in [0, 1), got {c.momentum}"),
        (math.isfinite(c.weight_decay) and c.weight_decay >= 0, f"weight_decay must be 0 or more, got {c.weight_decay}"),
        (0 <= c.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {c.label_smoothing}"),
        (c.augment == "auto" or c.augment in AUGMENTS,
         f"augment must be one of auto, {', '.join(AUGMENTS)}; got {c.augment!r}"),
        (c.max_steps_per_epoch is None or c.max_steps_per_epoch >= 1,
         f"max_steps_per_epoch must be at least 1 or None, got {c.max_steps_per_epoch}"),
        (c.log_every >= 1, f"log_every must be at least 1, got {c.log_every}"),
    ]
    return [message for ok, message in checks if not ok]


def amp_dtype_for(device: torch.device | str, amp: bool | None = None) -> torch.dtype | None:
    """The autocast dtype on ``device``, or None for float32. The one place that decides precision.

    CUDA: bf16 from compute capability 8.0 (A100, L4, H100); fp16 with a GradScaler below (T4 is 7.5,
    V100 7.0), where torch may *report* bf16 as supported but only emulates it, slowly. CPU: float32
    unless ``amp=True`` (then bf16): bf16 changes what a run learns (measured: the default synthetic run
    fell to chance from epoch 4 with bf16 on this AVX512-BF16 CPU, and reached 85.6 % in float32).
    ``amp=None`` means on for CUDA, off elsewhere; ``amp=False`` is always float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if amp is False:
            return None
        major, _minor = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if amp and device.type == "cpu":
        return torch.bfloat16  # CPU autocast supports bf16 only
    if amp and device.type == "mps":
        return torch.float16
    return None


def precision_name(amp_dtype: torch.dtype | None) -> str:
    """How a run computes, for the run header and summary.json: fp32, bf16, or fp16 + GradScaler."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16 + GradScaler"}[amp_dtype]


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
    # cycle_momentum=False: OneCycleLR would otherwise rewrite the momentum every step (0.85..0.95),
    # and the momentum a student sets (or session 3 searches) would have no effect.
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps,
                                               pct_start=pct_start, cycle_momentum=False)


def _steps(loader, max_steps: int | None) -> int:
    n = len(loader)
    return min(n, max_steps) if max_steps else n


def train_one_epoch(model: nn.Module, device: torch.device, train_loader, optimizer: torch.optim.Optimizer,
                    epoch: int, *, criterion: nn.Module | None = None, scheduler=None,
                    scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None,
                    max_steps: int | None = None, log_every: int = 50, progress: bool = True,
                    on_log=None) -> dict[str, float]:
    """One pass over ``train_loader``; returns ``loss`` (mean), ``accuracy`` (%), ``images``, ``seconds``.

    Raises :class:`~MyModules.errors.DivergenceError` as soon as the loss is NaN, infinite or huge.

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
        interrupt.check()  # a Ctrl-C that a finalizer swallowed still stops the run here
        loss_sum += loss.detach().float() * labels.shape[0]
        correct += (outputs.detach().argmax(1) == labels).sum()
        seen += labels.shape[0]
        # A NaN/inf loss makes the sum non-finite for good and a blown-up one keeps the mean huge, so
        # checking the running mean now and then is enough; on the CPU reading it costs nothing, so
        # check every step there.
        report = step % log_every == 0 or step == steps
        if report or device.type == "cpu":
            mean_loss = loss_sum.item() / seen
            _check_diverged(mean_loss, outputs.shape[-1], epoch, step, optimizer)
        if report:
            running = {"loss": mean_loss, "accuracy": 100.0 * correct.item() / seen}
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


# A mean cross-entropy this many times that of guessing (ln C) means logits in the hundreds: the weights
# have blown up, and the run only goes on at chance level. Runs that learn stay far below it.
DIVERGED_LOSS_FACTOR = 100.0


def _check_diverged(mean_loss: float, num_classes: int, epoch: int, step: int,
                    optimizer: torch.optim.Optimizer) -> None:
    """Stop at once when the loss diverged (NaN, inf, or huge), instead of training on at chance level."""
    guessing = math.log(max(num_classes, 2))  # the loss of a uniform prediction
    if math.isfinite(mean_loss) and mean_loss <= DIVERGED_LOSS_FACTOR * guessing:
        return
    lr = optimizer.param_groups[0]["lr"]
    became = ("NaN" if math.isnan(mean_loss) else "infinite" if math.isinf(mean_loss)
              else f"{mean_loss:.3g} (guessing gives {guessing:.2f})")
    raise DivergenceError(
        f"training diverged: the loss became {became} in epoch {epoch} "
        f"by step {step} (learning rate {lr:.3g}); try a lower learning rate (e.g. --lr {lr / 10:.3g}) "
        "or float32 (--no-amp)")


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


def apply_test_mode(config: TrainConfig, limits: env.TestModeLimits | None, verbose: bool = True) -> TrainConfig:
    """``config`` with test mode's caps on epochs and steps per epoch (``limits``, from
    ``env.test_limits()``); ``config`` itself when ``limits`` is None. ``fit`` is the one caller."""
    if limits is None:
        return config
    steps = min(config.max_steps_per_epoch or limits.steps, limits.steps,
                max(limits.min_steps, -(-limits.images // config.batch_size)))  # ceil
    capped = dataclasses.replace(config, epochs=min(config.epochs, limits.epochs), max_steps_per_epoch=steps)
    if verbose and (capped.epochs, capped.max_steps_per_epoch) != (config.epochs, config.max_steps_per_epoch):
        print(f"テストモード: epochs {config.epochs} → {capped.epochs}, 1エポック最大 {steps} ステップ")
    return capped


# --------------------------------------------------------------------------------------------
# fit, in parts: what a run needs (Training), its state (RunState), resume, one epoch, reporting
# --------------------------------------------------------------------------------------------

@dataclass
class Training:
    """Everything a run's epochs share, built once by :func:`prepare_training`."""

    model: nn.Module
    train_model: nn.Module  # ``model`` itself, or its torch.compile wrapper (same weights)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    criterion: nn.Module
    amp_dtype: torch.dtype | None
    device: torch.device
    config: TrainConfig
    steps_per_epoch: int
    augment: str  # what the training loader does (see loader.AUGMENTS), or "unknown" for foreign loaders
    train_loader: Any  # the loader the epochs iterate: the caller's, or under torchrun this process's sharded copy


@dataclass
class RunState:
    """What a checkpoint restores: the epochs done, their metrics rows, and the last evaluation."""

    epoch: int = 0  # last complete epoch (0: none yet)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch
    confusion: torch.Tensor | None = None  # last evaluation's confusion matrix (K, K)


def loader_augment(train_loader, augment: str) -> str:
    """What ``train_loader`` does to its images (see ``loader.AUGMENTS``); ``augment`` is what the config
    says. The loader decides (``make_loaders(augment=...)``), and is never changed here: a config that
    says otherwise is refused. A foreign loader (a plain DataLoader) keeps its own transforms: "unknown".
    """
    if hasattr(train_loader, "augment"):
        if augment not in ("auto", train_loader.augment):
            raise ConfigError(f"the training loader does augment={train_loader.augment!r}, but the TrainConfig says "
                              f"augment={augment!r}; augmentation is chosen where the loaders are built: "
                              f"loader.make_loaders(dataset, ..., augment={augment!r}) (or leave TrainConfig.augment "
                              "at 'auto')")
        return train_loader.augment
    if augment != "auto":
        raise ConfigError(f"augment={augment!r} needs the course's loaders: build them with "
                          f"loader.make_loaders(dataset, ..., augment={augment!r})")
    return "unknown"


@contextlib.contextmanager
def cudnn_autotune(device: torch.device | str):
    """On CUDA, let cuDNN time its convolution algorithms for each input shape and keep the fastest
    (``torch.backends.cudnn.benchmark``) while the block runs; the flag is put back afterwards, so a
    notebook's other cells see it as they set it. Elsewhere nothing changes."""
    if torch.device(device).type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def prepare_training(model: nn.Module, train_loader, config: TrainConfig, device: torch.device) -> Training:
    """Move ``model`` to ``device`` and build its optimizer, schedule, loss scaler and loss.

    The loaders are not changed: ``Training.train_loader`` is the one to iterate (under torchrun a
    sharded copy), and ``Training.config`` records the loader's augmentation.
    """
    augment = loader_augment(train_loader, config.augment)
    if augment in AUGMENTS:
        config = dataclasses.replace(config, augment=augment)  # what was resolved, for run.json and checkpoints
    amp_dtype = amp_dtype_for(device, config.amp)
    channels_last = config.channels_last if config.channels_last is not None else env.prefers_channels_last(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    train_loader = distributed.shard_loader(train_loader)  # several processes (torchrun): each its share of a batch
    steps_per_epoch = _steps(train_loader, config.max_steps_per_epoch)
    shared = distributed.wrap_model(model, device)  # DistributedDataParallel under torchrun, else model
    return Training(
        model=model, train_model=torch.compile(shared) if config.compile else shared, optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config, config.epochs * steps_per_epoch),
        scaler=torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None,
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), amp_dtype=amp_dtype,
        device=device, config=config, steps_per_epoch=steps_per_epoch, augment=augment, train_loader=train_loader)


def refuse_conflicts(saved: RunSettings, now: RunSettings, where: str) -> None:
    """Raise, saying what differs, when ``now`` changes a setting of ``saved`` that a resumed run keeps
    (``run_folder.resume_conflicts``): CheckpointError for what was trained, ConfigError for the rest."""
    conflicts = run_folder.resume_conflicts(saved, now)
    for c in conflicts:
        if c.part == "info":
            raise CheckpointError(f"{where} was made for {c.key} {c.saved!r}, not {c.now!r}; resume with the same "
                                  f"{c.key}, or start a new run in another folder")
    if conflicts:
        changes = ", ".join(f"{c.key}={c.saved!r} (now {c.now!r})" for c in conflicts)
        raise ConfigError(f"{where} was started with {changes}; a resumed run keeps the settings it started with "
                          "(its learning-rate schedule and each step depend on them): resume with the same settings, "
                          "or start a new run with the new ones")


def resume_state(t: Training, run_dir: Path | None, settings: RunSettings) -> tuple[RunState, RunSettings, RunSettings]:
    """Load ``run_dir``'s newest checkpoint into ``t``; says what is wrong if it cannot continue with ``settings``.

    Returns the run's state, the settings to record (``settings``, plus what the saved ones say that these
    do not) and the saved ones (``run.json``'s, or a lone checkpoint's).
    """
    if run_dir is None:
        raise CheckpointError("cannot resume: no run folder given (run_dir is None); pass the folder of the run "
                              "to continue, e.g. train.latest_run_dir(course.runs_dir)")
    state = load_checkpoint(run_dir, map_location=t.device)
    saved = run_folder.read_settings(run_dir, state)
    refuse_conflicts(saved, settings, run_dir.name)
    if saved.source != "checkpoint":  # run.json (or v0.1's files): the checkpoint may still be another run's
        refuse_conflicts(run_folder.checkpoint_settings(state), settings, f"the checkpoint in {run_dir}")
    check_compatible(state, t.model, run_dir)
    command_line = settings.command_line if settings.command_line is not None else saved.command_line
    settings = RunSettings(settings.config, {**saved.info, **settings.info}, command_line)
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])
    if t.scheduler is not None and state.get("scheduler"):
        t.scheduler.load_state_dict(state["scheduler"])
    if t.scaler is not None and state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    restore_rng(state["rng"])
    print(f"resuming {run_dir.name} after epoch {state['epoch']}/{t.config.epochs}")
    return RunState(int(state["epoch"]), list(state["history"]), state.get("confusion")), settings, saved


def start_run(t: Training, run_dir: Path | None, settings: RunSettings, resume: bool,
              writes: bool) -> tuple[RunState, RunSettings]:
    """The run's state (resumed from ``run_dir``, or a new one) and its settings, recorded in run.json
    when ``writes``: once when the run starts, and on resume again only when an allowed setting changed."""
    run, saved = RunState(), None
    if resume:
        run, settings, saved = resume_state(t, run_dir, settings)
    if writes and (saved is None or saved.source != run_folder.SETTINGS_FILE or not saved.same_as(settings)):
        run_folder.write_settings(run_dir, settings)
    return run, settings


def save_state(t: Training, run: RunState, run_dir: Path, info: dict[str, Any] | None) -> None:
    """Checkpoint first, then the CSV: a kill in between loses no row (the CSV is rebuilt on resume).

    When Drive's mount died during the epoch (Colab, "Transport endpoint is not connected"), Drive is
    mounted again and the epoch saved after all, instead of losing the run since its last checkpoint.
    """
    try:
        _save_state(t, run, run_dir, info)
    except DriveError:
        env.mount_drive()  # force_remount in the notebook; elsewhere a DriveError that says what to do
        _save_state(t, run, run_dir, info)


def _save_state(t: Training, run: RunState, run_dir: Path, info: dict[str, Any] | None) -> None:
    save_run_checkpoint({
        "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict() if t.scheduler is not None else None,
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "epoch": run.epoch, "rng": capture_rng(), "config": dataclasses.asdict(t.config),
        "history": run.history, "confusion": run.confusion, "info": dict(info or {}),
    }, run_dir)
    run_folder.write_metrics(run_dir, run.history)


def run_epoch(t: Training, epoch: int, test_loader, num_classes: int | None,
              callbacks: Sequence[Callback], progress: bool) -> tuple[dict[str, float], dict[str, Any]]:
    """Train one epoch on ``t.train_loader`` and evaluate; returns the metrics row and the evaluation."""
    # Everything random in this epoch depends on (seed, epoch) only: resuming repeats it exactly.
    torch.manual_seed(epoch_seed(t.config.seed, epoch))
    if hasattr(t.train_loader, "set_epoch"):
        t.train_loader.set_epoch(epoch)

    def on_log(step: int, metrics: dict[str, float]) -> None:
        for cb in callbacks:
            cb.on_log((epoch - 1) * t.steps_per_epoch + step, metrics)

    with cudnn_autotune(t.device):  # for this epoch only: the caller's flag is back afterwards
        train = train_one_epoch(t.train_model, t.device, t.train_loader, t.optimizer, epoch, criterion=t.criterion,
                                scheduler=t.scheduler, scaler=t.scaler, amp_dtype=t.amp_dtype,
                                max_steps=t.config.max_steps_per_epoch, log_every=t.config.log_every,
                                progress=progress, on_log=on_log)
        train = distributed.reduce_train_metrics(train)  # all processes' images (unchanged for one process)
        result = evaluate(t.train_model, t.device, test_loader, num_classes=num_classes, amp_dtype=t.amp_dtype)
    row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
           "test_loss": result["loss"], "test_accuracy": result["accuracy"],
           "seconds": train["seconds"], "lr": t.optimizer.param_groups[0]["lr"], "images": train["images"]}
    if progress:
        print(f"epoch {epoch}/{t.config.epochs}: train loss {row['train_loss']:.3f} acc {row['train_accuracy']:.1f}% | "
              f"test loss {row['test_loss']:.3f} acc {row['test_accuracy']:.1f}% | {row['seconds']:.1f} s")
    return row, result


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig, device: torch.device | str, *,
        run_dir: str | Path | None = None, resume: bool = False, classes: Sequence[str] | None = None,
        callbacks: Iterable[Callback] = (), info: dict[str, Any] | None = None,
        progress: bool = True, command_line: dict[str, Any] | None = None) -> FitResult:
    """Train ``model`` for ``config.epochs`` epochs, evaluating on ``test_loader`` after each.

    With ``run_dir``, the run's settings go into ``run.json`` when it starts (``config`` as resolved,
    ``info``, and ``command_line``: the arguments of ``python -m MyModules train``, which passes them),
    and a checkpoint and ``metrics.csv`` after every epoch, ``summary.json`` at the end.
    ``resume=True`` continues from the newest checkpoint (same final weights as an uninterrupted run on
    CPU) and refuses, saying why, a checkpoint of another model or dataset, or settings it must keep
    (``run_folder.RESUME_MAY_CHANGE`` says which may change; run.json is rewritten only when one did).
    ``classes`` adds per-class accuracy to the summary. ``info`` (e.g. ``{"model": "net", "dataset":
    "cifar10"}``) goes into run.json, the checkpoint and ``summary.json`` as is, and is checked on resume.
    Raises :class:`~MyModules.errors.DivergenceError` when the loss becomes NaN, infinite or huge.
    """
    device = torch.device(device)
    limits = env.test_limits()  # test mode: decided here once for the whole run
    config = apply_test_mode(config, limits, verbose=progress)
    callbacks = list(callbacks)
    run_dir = run_folder.prepare(run_dir) if run_dir is not None and distributed.is_main() else run_dir
    run_dir = Path(run_dir) if run_dir is not None else None
    writes = run_dir is not None and distributed.is_main()  # under torchrun only rank 0 writes
    seed_everything(config.seed)
    try:
        t = prepare_training(model, train_loader, config, device)
        settings = RunSettings(dataclasses.asdict(t.config), dict(info or {}), command_line)  # augmentation resolved
        run, settings = start_run(t, run_dir, settings, resume, writes)
        if progress:
            print(f"precision {precision_name(t.amp_dtype)} | augmentation {t.augment}")
        if writes:
            run_folder.write_metrics(run_dir, run.history)  # rebuilt from the checkpoint: no lost row
        num_classes = len(classes) if classes is not None else None
        for cb in callbacks:
            cb.on_train_begin(model, run.epoch + 1, run_dir)
        for epoch in range(run.epoch + 1, config.epochs + 1):
            row, result = run_epoch(t, epoch, test_loader, num_classes, callbacks, progress)
            run.epoch, run.confusion = epoch, result.get("confusion")
            run.history.append(row)
            if writes:
                save_state(t, run, run_dir, settings.info)
            for cb in callbacks:
                cb.on_epoch_end(epoch, row, model)
    except (ConfigError, DivergenceError, KeyboardInterrupt, DriveError):
        raise  # the run's folder says what happened (or Drive is gone): keep it
    except Exception:
        # A model or loss that crashed before the first checkpoint (a blank not filled in, a wrong shape):
        # leave no folder that looks like a run, among the student's real runs.
        if writes and not resume:
            run_folder.remove_unstarted_run(run_dir, (run_folder.SETTINGS_FILE, "metrics.csv"))
        raise
    return _finish(t, run, run_dir if writes else None, classes, settings.info, callbacks, progress)


def _finish(t: Training, run: RunState, run_dir: Path | None, classes, info, callbacks, progress) -> FitResult:
    summary = _summary(t, run, classes, info)
    if run_dir is not None:
        run_folder.write_json(run_dir, run_folder.SUMMARY_FILE, summary)
    if classes is not None and run.confusion is not None and progress:
        print(format_per_class(run.confusion, classes))
    for cb in callbacks:
        cb.on_train_end(summary)
    if progress:
        env.remind_to_finish(run_dir)  # Colab: once per runtime, the finish cell flushes Drive
    return FitResult(run.history, summary, run_dir, run.confusion)


def _summary(t: Training, run: RunState, classes, info) -> dict[str, Any]:
    history = run.history
    train_seconds = sum(r["seconds"] for r in history)
    images = sum(r.get("images", 0) for r in history)
    summary: dict[str, Any] = {
        "model": type(t.model).__name__,
        "dataset": None,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "best_test_accuracy": max(r["test_accuracy"] for r in history) if history else None,
        "epochs": len(history),
        "planned_epochs": t.config.epochs,
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images / train_seconds, 1) if train_seconds > 0 else None,
        "num_parameters": count_parameters(t.model),
        "device": str(t.device),
        "precision": precision_name(t.amp_dtype),
        "augment": t.augment,
        "seed": t.config.seed,
        "world_size": distributed.world_size(),  # processes that trained together (torchrun)
        "test_mode": env.test_mode(),
    }
    if classes is not None and run.confusion is not None:
        summary["per_class_accuracy"] = dict(zip(classes, per_class_accuracy(run.confusion).tolist()))
    summary.update(info or {})
    return summary
