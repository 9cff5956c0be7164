"""Hyperparameter search with Optuna on top of the course's ``fit``: objective, pruning, workers.

    objective = Objective(dataset, device, runs_dir, TrainConfig(epochs=5), space=SearchSpace())
    study = open_study(open_storage(None, course_dir=..., study_name=name), name, objective.identity())
    run_worker(study, objective, n_trials=20)      # run again after a lost runtime: it continues

Each trial trains with ``fit`` in its own run folder, reports the test accuracy after every epoch
(``trial.report``) and stops early when the pruner says so (``TrialPruned``). The run folder that holds
its checkpoints is stored in the trial's ``user_attrs["run_dir"]`` from the start, so pruned and failed trials have one too
(studies saved by version 0.1 call it ``"checkpoint"``: read it with :func:`recorded_run_dir`). A
trial retried after its worker died (or after Ctrl-C) copies that checkpoint into *its own* folder
and continues from it, reporting the whole history again, so a frozen worker that wakes up later
writes only into the old attempt's folder and can never change the retry's results.

Reproducible: the seed (``TrainConfig.seed``, ``--seed``) is set before each trial builds its model
and data order, and :func:`study_for` seeds the sampler with it, so the same command on a fresh
storage gives the same trials with the same values (on CPU; GPUs add their own nondeterminism).

``n_trials`` counts for the whole *study*: several workers (processes, Colab sessions, lab servers)
on one database together finish exactly that many COMPLETE + PRUNED trials (see :func:`run_worker`).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import shlex
import shutil
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from .. import env, interrupt
from ..atomic import temp_path
from ..checkpoint import has_checkpoint, load_checkpoint, newest_slot
from ..data import Dataset, ImageSet
from ..errors import ConfigError, DivergenceError
from ..loader import make_loaders
from ..models import count_parameters
from ..seeding import seed_everything
from ..train import (
    Callback,
    TrainConfig,
    amp_dtype_for,
    evaluate,
    fit,
)
from .space import SearchSpace, model_from_params, suggest_config, suggest_model
from .storage import (
    FAIL_REASON_ATTR,
    HEARTBEAT_ATTR,
    RESUME_FROM_ATTR,
    RUN_DIR_ATTR,
    STUDIES_DIR,
    Heartbeat,
    StorageConfig,
    TrialLost,
    TuningError,
    default_study_name,
    enqueue_retry,
    fail_stale_trials,
    hide_password,
    is_url,
    journal_path,
    open_storage,
    open_study,
    recorded_run_dir,
)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # trials that count towards n_trials
SURPLUS_ATTR = "surplus"  # user attribute of a trial that found the study already full


class SurplusTrial(Exception):
    """Raised inside a trial that another worker's trial made unnecessary (the study is full)."""


def capped_trials(n_trials: int, limits: env.TestModeLimits | None) -> int:
    """``n_trials``, or in test mode (``limits``) at most ``limits.trials``: a study takes seconds."""
    return min(n_trials, limits.trials) if limits else n_trials


def trial_data(dataset: Dataset, limits: env.TestModeLimits | None) -> Dataset:
    """The dataset a trial sees: in test mode the test split shrinks to ``trial_test_images`` images."""
    if not limits:
        return dataset
    n = limits.trial_test_images
    return dataclasses.replace(dataset, test=ImageSet(dataset.test.images[:n], dataset.test.labels[:n]))


def trial_config(config: TrainConfig, limits: env.TestModeLimits | None) -> TrainConfig:
    """``config`` as a trial trains it: in test mode (``limits``), few steps of small batches.

    Only a trial's own caps; ``fit`` applies the caps of every run (epochs, steps), once.
    """
    if not limits:
        return config
    steps = min(config.max_steps_per_epoch or limits.trial_steps, limits.trial_steps)
    return dataclasses.replace(config, batch_size=min(config.batch_size, limits.trial_batch_size),
                               max_steps_per_epoch=steps)


class PruningCallback(Callback):
    """Report each epoch's test accuracy to the trial and stop the training when the pruner says so.

    ``history``: the rows of the checkpoint a retry continues from; they are reported first, so the
    pruner compares the retry's whole curve with the others, without gaps. Before each report the
    trial's claim is checked: a worker that another worker declared dead stops here (``TrialLost``).
    """

    def __init__(self, trial: optuna.Trial, history: list[dict[str, float]] = ()):
        self.trial = trial
        self.history = list(history)

    def on_train_begin(self, model: nn.Module, start_epoch: int, run_dir: Path | None) -> None:
        for row in self.history:
            if row["epoch"] < start_epoch:
                self.trial.report(row["test_accuracy"], step=row["epoch"])

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None:
        try:
            self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())  # fails once the trial is not ours any more
        except optuna.exceptions.UpdateFinishedTrialError as e:
            raise TrialLost(f"trial {self.trial.number} was declared dead by another worker and is retried "
                            "there; this worker stops it") from e
        self.trial.report(metrics["test_accuracy"], step=epoch)
        if self.trial.should_prune():
            # fit has already saved this epoch's checkpoint: the pruned trial keeps its weights.
            raise optuna.TrialPruned(f"pruned after epoch {epoch} at {metrics['test_accuracy']:.1f}% test accuracy")


def _source(fn: Callable) -> str:
    """The function's code as a syntax tree dump: comments and blank lines do not change the study."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):  # docstrings are comments too
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str)):
            body.pop(0)
    return ast.dump(tree)


@dataclass
class Objective:
    """Optuna's objective: suggest settings and a model, train with ``fit``, return the final test accuracy (%).

    ``suggest_config(trial, base) -> TrainConfig`` and ``build_model(trial, num_classes) -> nn.Module``
    default to :mod:`MyModules.tuning.space` over ``space``; pass your own to search something else.
    """

    dataset: Dataset
    device: torch.device | str
    runs_dir: Path  # trial run folders go to runs_dir/<study name>/trial-NNNN
    base: TrainConfig = field(default_factory=TrainConfig)  # what the trial does not choose (epochs, seed...)
    space: SearchSpace | None = field(default_factory=SearchSpace)
    suggest_config: Callable[[Any, TrainConfig], TrainConfig] | None = None
    build_model: Callable[[Any, int], nn.Module] | None = None
    progress: bool = False  # per-epoch lines from fit
    tensorboard: bool = False  # TensorBoard logs per trial: point TensorBoard at runs_dir/<study name>
    # Test mode's caps (env.test_limits), read once: the study's identity and every trial agree.
    test_limits: env.TestModeLimits | None = field(default_factory=env.test_limits, repr=False)

    def __post_init__(self):
        if self.space is None and (self.suggest_config is None or self.build_model is None):
            raise ValueError("without a SearchSpace, give both suggest_config and build_model")
        if self.space is not None and self.build_model is None:
            check_fits(self.space, self.dataset)

    def run_dir(self, study_name: str, number: int) -> Path:
        """The folder of one attempt: every trial (a retry too) writes only into its own."""
        return Path(self.runs_dir) / study_name / f"trial-{number:04d}"

    def make_config(self, trial) -> TrainConfig:
        if self.suggest_config is not None:
            config = self.suggest_config(trial, self.base)
        else:
            config = suggest_config(trial, self.space, self.base)
        if not isinstance(config, TrainConfig):
            raise TypeError(f"suggest_config must return a TrainConfig, got {type(config).__name__}")
        return config

    def make_model(self, trial) -> nn.Module:
        if self.build_model is not None:
            return self.build_model(trial, self.dataset.num_classes)
        return suggest_model(trial, self.space, self.dataset.num_classes)

    def identity(self) -> dict[str, Any]:
        """What makes two studies comparable; the default study name is derived from it."""
        return {
            "dataset": self.dataset.name,
            # Test mode trains and scores differently: its trials never mix with real ones.
            "test_mode": {"steps": limits.trial_steps, "batch_size": limits.trial_batch_size,
                          "test_images": limits.trial_test_images} if (limits := self.test_limits) else False,
            "base": dataclasses.asdict(self.base),
            "space": self.space.to_dict() if self.space is not None and self.suggest_config is None
            and self.build_model is None else None,
            # Your own functions: their source text, so editing them starts a new study.
            "functions": [_source(f) for f in (self.suggest_config, self.build_model) if f is not None],
        }

    def __call__(self, trial: optuna.Trial) -> float:
        config = trial_config(self.make_config(trial), self.test_limits)
        seed_everything(config.seed)  # before the model: the same seed gives the same initial weights
        model = self.make_model(trial)
        run_dir = self.run_dir(trial.study.study_name, trial.number)
        history = _take_over(trial.user_attrs.get(RESUME_FROM_ATTR), run_dir)
        trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))  # load_checkpoint reads its newest slot
        trial.set_user_attr("host", socket.gethostname())  # checkpoints are on this machine's disk
        trial.set_user_attr("num_parameters", count_parameters(model))
        data = trial_data(self.dataset, self.test_limits)
        train_loader, test_loader = make_loaders(data, config.batch_size, self.device, augment=config.augment,
                                                 seed=config.seed)
        callbacks: list[Callback] = [PruningCallback(trial, history)]
        if self.tensorboard:
            from ..viz.tensorboard import TensorBoardLogger

            callbacks.append(TensorBoardLogger(graph=False, histograms_every=0,
                                               hparams={"trial": trial.number, **trial.params}))
        try:
            result = fit(model, train_loader, test_loader, config, self.device, run_dir=run_dir,
                         resume=bool(history), callbacks=callbacks, progress=self.progress,
                         info={"study": trial.study.study_name, "trial": trial.number, "params": trial.params})
        except DivergenceError as e:
            trial.set_user_attr(FAIL_REASON_ATTR, str(e))
            raise
        accuracy = result.history[-1]["test_accuracy"]
        trial.set_user_attr("epochs", len(result.history))
        return accuracy


def _take_over(checkpoint: str | None, run_dir: Path) -> list[dict[str, float]]:
    """Copy an earlier attempt's newest checkpoint into this attempt's folder; its history (empty: start fresh).

    ``checkpoint`` is the earlier attempt's run folder (or, in studies of earlier versions, a file in it).
    """
    if not checkpoint:
        return []
    # A study copied to another machine: the earlier attempt's folder sits next to this one's.
    source = relocate_run_dir(checkpoint, (run_dir.parent.parent,)) or Path(checkpoint)
    source = source if source.is_file() else newest_slot(source if source.is_dir() else source.parent)
    if source is None:
        return []
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / source.name
    tmp = temp_path(target)
    shutil.copyfile(source, tmp)  # a copy, then a rename: the old attempt may still be writing
    tmp.replace(target)
    return list(load_checkpoint(run_dir)["history"])


def relocate_run_dir(recorded: str | Path, runs_dirs: tuple[str | Path, ...] = ()) -> Path | None:
    """Where a trial's recorded checkpoint (its run folder, or a file in it) is on this machine, or None.

    The trial attribute holds the absolute path on the machine that ran the trial. A study copied
    elsewhere (a Drive folder downloaded to a lab server, a journal moved to another course folder)
    keeps that path, so when it does not exist here the same ``<study>/trial-NNNN`` tail is looked for
    under each of ``runs_dirs``, then under this course folder's ``runs/`` (``$COURSE_DIR``,
    ``--course-dir``; see :func:`MyModules.env.course_dir`).
    """
    path = Path(recorded)
    if path.is_file() or has_checkpoint(path):
        return path
    for candidate in _relocations(path, runs_dirs):
        if candidate.is_file() or has_checkpoint(candidate):
            return candidate
    return None


def _relocations(path: Path, runs_dirs: tuple[str | Path, ...]) -> list[Path]:
    tail = Path(*path.parts[-3:] if path.suffix == ".pt" else path.parts[-2:])  # <study>/trial-NNNN[/file]
    return [Path(root) / tail for root in (*runs_dirs, env.course_dir(mount=False) / "runs")]


def max_conv_blocks(image_size: int) -> int:
    """Conv blocks that fit an image ``image_size`` pixels high: each block halves it, down to 1 pixel."""
    return max(int(image_size).bit_length() - 1, 0)


def check_fits(space: SearchSpace, dataset: Dataset) -> None:
    """Refuse, before any trial, a search space whose largest model does not fit the dataset's images."""
    size = min(dataset.test.images.shape[-2:])
    most = max_conv_blocks(size)
    if space.conv_blocks[1] > most:
        raise ConfigError(f"conv_blocks up to {space.conv_blocks[1]} do not fit {size}x{size} images: each "
                          f"block halves them, so at most {most} blocks fit (e.g. --conv-blocks 1 {most})")


def make_pruner(name: str = "median", **kwargs: Any) -> optuna.pruners.BasePruner:
    """A pruner by name: median, percentile, halving (successive halving), threshold, none.

    Steps are epochs counted from 1; ``n_warmup_steps=2`` never prunes after the first, noisiest epoch.
    """
    name = name.lower()
    if name == "median":
        return optuna.pruners.MedianPruner(**{"n_startup_trials": 2, "n_warmup_steps": 2, **kwargs})
    if name == "percentile":
        return optuna.pruners.PercentilePruner(**{"percentile": 25.0, "n_startup_trials": 2, "n_warmup_steps": 2,
                                                  **kwargs})
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(**kwargs)
    if name == "threshold":
        return optuna.pruners.ThresholdPruner(**{"lower": 15.0, **kwargs})  # % accuracy: barely above chance
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose median, percentile, halving, threshold or none")


PRUNERS = ("median", "percentile", "halving", "threshold", "none")


def _count(study: optuna.Study) -> dict[TrialState, int]:
    counts = dict.fromkeys(TrialState, 0)
    for t in study.get_trials(deepcopy=False):
        counts[t.state] += 1
    return counts


def _is_surplus(study: optuna.Study, number: int, n_trials: int) -> bool:
    """True when ``n_trials`` other live trials with smaller numbers already fill the study.

    Trial numbers follow the order in which workers asked, so when two workers ask for the last slot
    at the same moment both see the same ordering and exactly one of them steps back.
    """
    live = sorted(t.number for t in study.get_trials(
        deepcopy=False, states=(*FINISHED, TrialState.RUNNING, TrialState.WAITING)))
    return number in live and live.index(number) >= n_trials


@dataclass
class WorkerReport:
    trials_run: int  # trials this worker started (surplus ones included)
    seconds: float  # wall time of this worker
    finished: int  # COMPLETE + PRUNED trials in the study at the end
    waited_seconds: float  # time spent waiting for other workers' last trials


def run_worker(study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int, *,
               poll_seconds: float | None = None, timeout: float | None = None,
               callbacks: tuple = (), verbose: bool = True, config: StorageConfig | None = None) -> WorkerReport:
    """Work on ``study`` until it holds ``n_trials`` COMPLETE + PRUNED trials (all workers together).

    Before each trial, trials of dead workers are failed and re-queued (heartbeat). When every
    remaining slot is taken by a RUNNING trial, this worker waits for them instead of leaving: if one
    of those workers dies, its retry still needs someone to run it. ``timeout`` (s) stops waiting and
    starting new trials after that long. Re-running after a lost runtime simply continues the study.

    Each trial beats (``config``, default :meth:`StorageConfig.default`); Ctrl-C queues a retry of the
    interrupted trial (same parameters, from its last checkpoint) before it stops this worker, so the
    same command started again continues exactly there. A loss that became NaN/inf fails the trial
    (``fail_reason``) and the search goes on.
    """
    n_trials = capped_trials(n_trials, env.test_limits())
    config = config or StorageConfig.default()
    poll = poll_seconds or float(config.heartbeat_interval)
    guarded = _guarded(study, objective, n_trials, config)
    start = time.perf_counter()
    run = waited = 0
    said_waiting = False
    while True:
        interrupt.check()  # a Ctrl-C swallowed during the last trial stops the worker before the next one
        fail_stale_trials(study, config)
        finished, running, waiting = _tally(study)
        if finished >= n_trials or (timeout is not None and time.perf_counter() - start > timeout):
            break
        if finished + running + waiting >= n_trials and waiting == 0:
            if verbose and not said_waiting:
                print(f"{study.study_name}: waiting for {running} running trial(s) of other "
                      f"workers ({finished}/{n_trials} finished)")
                said_waiting = True
            time.sleep(poll)
            waited += poll
            continue
        _reseed(study)
        _optimize_one(study, guarded, callbacks, verbose)
        run += 1
    finished = _tally(study)[0]
    seconds = time.perf_counter() - start
    if verbose:
        print(f"{study.study_name}: {finished}/{n_trials} trials finished; this worker ran {run} in {seconds:.1f} s")
    return WorkerReport(run, seconds, finished, waited)


def _tally(study: optuna.Study) -> tuple[int, int, int]:
    """(finished: COMPLETE + PRUNED, RUNNING, WAITING) trials of ``study``."""
    counts = _count(study)
    return (counts[TrialState.COMPLETE] + counts[TrialState.PRUNED], counts[TrialState.RUNNING],
            counts[TrialState.WAITING])


def _guarded(study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int,
             config: StorageConfig) -> Callable[[optuna.Trial], float]:
    """``objective`` that refuses surplus trials, beats while it runs and queues a retry on Ctrl-C."""
    def guarded(trial: optuna.Trial) -> float:
        if _is_surplus(study, trial.number, n_trials):
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise SurplusTrial(f"trial {trial.number} is not needed: the study already has {n_trials} trials")
        with Heartbeat(trial, config):
            try:
                return objective(trial)
            except KeyboardInterrupt:
                _queue_interrupted(study, trial, config)
                raise

    return guarded


def _optimize_one(study: optuna.Study, guarded: Callable[[optuna.Trial], float], callbacks: tuple,
                  verbose: bool) -> None:
    """Run one trial; a trial another worker declared dead (and retries) is stepped over."""
    try:
        study.optimize(guarded, n_trials=1, catch=(SurplusTrial, TrialLost, DivergenceError),
                       callbacks=list(callbacks), gc_after_trial=False)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as e:
        # Telling our trial failed because another worker declared it dead and finished it
        # (it runs the retry): that is the one fault to step over; anything else is a bug.
        if not (isinstance(e, optuna.exceptions.UpdateFinishedTrialError) or "Cannot tell a" in str(e)):
            raise
        if verbose:
            print(f"{study.study_name}: this worker's trial was declared dead by another worker "
                  f"(it was silent too long) and is retried there; going on")


class SeededSampler(optuna.samplers.TPESampler):
    """TPE seeded from ``(seed, trials in the study)``: the same command on a fresh storage samples the
    same trials, and a worker that joins or resumes a study does not repeat the first worker's draws."""

    def __init__(self, seed: int, position: int = 0):
        self.course_seed = seed
        super().__init__(seed=(seed * 1_000_003 + position) % 2**32)


def _reseed(study: optuna.Study) -> None:
    if isinstance(study.sampler, SeededSampler):
        study.sampler = SeededSampler(study.sampler.course_seed, len(study.get_trials(deepcopy=False)))


def _queue_interrupted(study: optuna.Study, trial: optuna.Trial, config: StorageConfig) -> None:
    """Ctrl-C inside a trial: queue its retry now; optuna marks this attempt FAIL when it re-raises."""
    trial.set_user_attr(FAIL_REASON_ATTR, "interrupted (Ctrl-C / SIGINT)")
    frozen = study.get_trials(deepcopy=False)[trial.number]
    enqueue_retry(study, frozen, config, "interrupted (Ctrl-C / SIGINT)")


def resume_command(argv: list[str] | None = None) -> str:
    """The command that continues this worker's study: the same command again (passwords as ``***``)."""
    args = sys.argv[1:] if argv is None else argv
    return "python -m MyModules " + shlex.join(hide_password(a) if is_url(a) else a for a in args)


def study_for(objective: Objective, *, course_dir: str | Path, storage: str | Path | None = None,
              study_name: str | None = None, prefix: str = "study", pruner: optuna.pruners.BasePruner | None = None,
              sampler: optuna.samplers.BaseSampler | None = None,
              config: StorageConfig | None = None) -> optuna.Study:
    """Open (or continue) the study for ``objective``: the default name comes from what it searches,
    the default storage is ``<course_dir>/studies/<name>.journal``; a database URL shares it.
    The default sampler is TPE seeded with ``objective.base.seed``."""
    identity = objective.identity()
    name = study_name or default_study_name(identity, prefix)
    store = open_storage(storage, course_dir=course_dir, study_name=name, config=config)
    if sampler is None:
        sampler = SeededSampler(getattr(getattr(objective, "base", None), "seed", 0))
    return open_study(store, name, identity, direction="maximize", sampler=sampler, pruner=pruner)


def tune(*, dataset: Dataset, device: torch.device | str, course_dir: str | Path, runs_dir: str | Path,
         n_trials: int, base: TrainConfig, space: SearchSpace, storage: str | Path | None = None,
         study_name: str | None = None, pruner: str = "median", timeout: float | None = None,
         progress: bool = False, tensorboard: bool = False,
         config: StorageConfig | None = None) -> tuple[optuna.Study, WorkerReport]:
    """One worker of the command line (``python -m MyModules tune``): open the study, run, write the table."""
    from .results import save_trials_csv

    config = config or StorageConfig.default()
    objective = Objective(dataset, device, Path(runs_dir), base=base, space=space, progress=progress,
                          tensorboard=tensorboard)
    study = study_for(objective, course_dir=course_dir, storage=storage, study_name=study_name,
                      pruner=make_pruner(pruner), config=config)
    print(f"study {study.study_name} ({'database' if is_url(storage) else 'journal'}: "
          f"{hide_password(str(storage)) if is_url(storage) else storage or journal_path(course_dir, study.study_name)})")
    report = run_worker(study, objective, n_trials, timeout=timeout, config=config)
    csv_path = save_trials_csv(study, Path(course_dir) / STUDIES_DIR / f"{study.study_name}-trials.csv")
    print(f"{describe(study)}; trials table: {csv_path}")
    return study, report


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The COMPLETE trial with the best value (pruned trials never count)."""
    try:
        return study.best_trial
    except ValueError as e:
        raise TuningError(f"study {study.study_name!r} has no complete trial yet; run some trials first") from e


def load_trial_model(trial: optuna.trial.FrozenTrial, num_classes: int, *, space: SearchSpace | None = None,
                     build_model: Callable[[Any, int], nn.Module] | None = None,
                     device: torch.device | str = "cpu", runs_dir: str | Path | None = None) -> nn.Module:
    """Rebuild ``trial``'s model (``FixedTrial(trial.params)``) and load its checkpoint's weights.

    The checkpoint is found with :func:`relocate_run_dir`: where the trial recorded it, else (a study
    copied from another machine) under ``runs_dir`` or the course folder's ``runs/``."""
    if build_model is not None:
        model = build_model(optuna.trial.FixedTrial(dict(trial.params)), num_classes)
    else:
        model = model_from_params(trial.params, space or SearchSpace(), num_classes)
    recorded = recorded_run_dir(trial)
    runs_dirs = () if runs_dir is None else (runs_dir,)
    path = relocate_run_dir(recorded, runs_dirs) if recorded else None
    if path is None:
        looked = (f"; not in {' nor '.join(map(str, _relocations(Path(recorded), runs_dirs)))} either: copy its "
                  "run folder there, or pass runs_dir=" if recorded else "")
        raise TuningError(f"trial {trial.number} has no checkpoint here ({recorded}); it was saved on host "
                          f"{trial.user_attrs.get('host', '?')}{looked}")
    state = load_checkpoint(path, map_location=device)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def evaluate_trial_model(model: nn.Module, dataset: Dataset, device: torch.device | str,
                         batch_size: int = 256) -> float:
    """Test accuracy (%) of ``model`` on the same test images the trials were scored on."""
    device = torch.device(device)
    _, test_loader = make_loaders(trial_data(dataset, env.test_limits()), batch_size, device, augment=False)
    # Same mixed precision as fit used for the recorded accuracy (bf16/fp16 on GPUs, off on CPU).
    return evaluate(model, device, test_loader, amp_dtype=amp_dtype_for(device))["accuracy"]


def describe(study: optuna.Study) -> str:
    counts = _count(study)
    parts = [f"{s.name} {n}" for s, n in counts.items() if n]
    return f"study {study.study_name}: {', '.join(parts) or 'no trials'}"
