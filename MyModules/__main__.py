"""Command line: ``python -m MyModules train ...`` (the main job; lab servers run it from a terminal).

Thin on purpose: it parses arguments, then calls ``env``, ``data``, ``loader``, ``models`` and
``train``. Every failure a user can cause ends with one line saying what to do, never a traceback.

Exit codes: the table in :mod:`MyModules.errors` (``EXIT_CODES``); every command returns one of its names.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import dataclasses
import inspect
import io
import json
import os
import signal
import sys
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Any

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError

#: Arguments that are not settings of the run (run.json leaves them out): the parser's own, this
#: invocation's --resume, and --out, the run folder itself.
NOT_RECORDED = ("func", "explicit", "resume", "out")


class _Parser(argparse.ArgumentParser):
    commands: dict[str, argparse.ArgumentParser]  # each command's own parser (set by build_parser)

    def error(self, message: str):  # one line instead of argparse's usage block
        command = self.prog.removeprefix("python -m MyModules").strip()
        raise UsageError(f"{message} (see: python -m MyModules {command + ' ' if command else ''}--help)")


def _number(text: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be 0 or a positive finite number, got {text}")
    return value


def field_defaults(cls) -> dict[str, Any]:
    """Each field's default in dataclass ``cls``: the one place a setting's default is written."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(cls)}


def field_comments(cls) -> dict[str, str]:
    """The comment after each field of dataclass ``cls`` in its source, where it says what the field means
    (none when the source cannot be read). The command line's help texts are these comments."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    rows = {node.target.id: node.end_lineno for node in ast.parse(source).body[0].body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    return {name: comments[row] for name, row in rows.items() if row in comments}


def _help(comment: str, note: str = "", default: Any = None) -> str:
    """Help text: what the field means, the command line's own note, and the default (as it is typed)."""
    shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
    return f"{'; '.join(part for part in (comment, note) if part)} (default: {shown})".lstrip().replace("%", "%%")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_options(p: argparse.ArgumentParser, cls, options: dict[str, tuple], **notes: str) -> None:
    """One option per field of ``cls`` named in ``options`` (``{field: (type, choices, option)}``, choices and
    option may be None): default from the dataclass, help from the comment after the field (plus ``notes``).
    A field whose default is a tuple takes a list: ``(low, high)`` two values, ``tuple[x, ...]`` one or more."""
    defaults, comments, hints = field_defaults(cls), field_comments(cls), typing.get_type_hints(cls)
    for name, (kind, choices, option) in options.items():
        option = option or _option(name)
        extra = {"metavar": None if choices else option[2:].upper().replace("-", "_")}
        if typing.get_origin(hints[name]) is tuple:  # tuple[x, ...]: one or more; tuple[x, x]: a range
            extra = {"nargs": "+", **extra} if Ellipsis in typing.get_args(hints[name]) else {
                "nargs": 2, "metavar": ("LOW", "HIGH")}
        p.add_argument(option, dest=name, type=kind, choices=choices, default=defaults[name],
                       help=_help(comments.get(name, ""), notes.get(name, ""), defaults[name]), **extra)


def train_options() -> dict[str, tuple]:
    """The TrainConfig fields ``train`` sets from its options: ``{field: (type, choices, option)}``."""
    from .loader import AUGMENTS
    from .train import OPTIMIZERS

    return {
        "epochs": (_positive_int, None, None),
        "batch_size": (_positive_int, None, None),
        "lr": (_positive_float, None, None),
        "optimizer": (str, OPTIMIZERS, None),
        "momentum": (_non_negative_float, None, None),
        "weight_decay": (_non_negative_float, None, None),
        "augment": (str, ("auto", *AUGMENTS), None),
        "seed": (int, None, None),
        "max_steps_per_epoch": (_positive_int, None, "--max-steps"),
    }


#: TrainConfig fields the command line leaves at their defaults (a test keeps this list true).
NOT_ON_THE_COMMAND_LINE = ("schedule", "label_smoothing", "channels_last", "log_every")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .data import DATASETS
    from .loader import AUTO_AUGMENT, AUTO_FALLBACK, make_loaders
    from .models import MODELS
    from .train import TrainConfig

    defaults, comments = field_defaults(TrainConfig), field_comments(TrainConfig)
    by_dataset = ", ".join(f"{name} {augment}" for name, augment in AUTO_AUGMENT.items())
    p.add_argument("--dataset", default="cifar10", choices=DATASETS, help="dataset (default: %(default)s)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the datasets (for imagefolder: the folder with train/ and test/); "
                        "must exist; default: <course folder>/data")
    p.add_argument("--model", default="net", choices=MODELS, help="model (default: %(default)s, the tutorial's)")
    add_config_options(p, TrainConfig, train_options(),
                       epochs="a resumed run keeps the number it started with",
                       augment=f"auto by dataset: {by_dataset}, others {AUTO_FALLBACK}")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: a new folder under <course folder>/runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: the latest run) from its last complete epoch, "
                        "with the settings it started with (changing --epochs etc. is refused)")
    p.add_argument("--course-dir", type=Path, default=None, help="course folder (default $COURSE_DIR or ~/pytorch-course)")
    p.add_argument("--no-fast", dest="fast", action="store_false",
                   help="use the standard DataLoader path instead of the device-resident loader")
    p.add_argument("--workers", type=_non_negative_int, default=_parameter_default(make_loaders, "num_workers"),
                   help="DataLoader workers for --no-fast (default: %(default)s)")
    amp = p.add_mutually_exclusive_group()
    amp.add_argument("--amp", dest="amp", action="store_true", default=defaults["amp"],
                     help=_help(comments.get("amp", ""), default=defaults["amp"]))
    amp.add_argument("--no-amp", dest="amp", action="store_false", help="float32 everywhere (the CPU default)")
    p.add_argument("--compile", action="store_true", default=defaults["compile"], help=_help(comments.get("compile", ""), default=defaults["compile"]))
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="do not write TensorBoard logs (<run folder>/tensorboard)")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="do not save plots and confusion-matrix CSVs into the run folder")


def train_config(args: argparse.Namespace):
    """The TrainConfig the options ask for (every field the command line sets, the others at their defaults)."""
    from .train import TrainConfig

    return TrainConfig(**{name: getattr(args, name) for name in (*train_options(), "amp", "compile")})


def _parameter_default(function, name: str):
    """The default of ``function``'s parameter ``name``: the command line does not write it again."""
    return inspect.signature(function).parameters[name].default


_NOT_GIVEN = object()


def _explicit(argv: list[str], parser: argparse.ArgumentParser, args: argparse.Namespace) -> set[str]:
    """The destinations of the arguments written in ``argv`` (not left at their defaults), parsed into ``args``.

    ``argv`` is parsed again into a namespace whose every destination already holds a marker: argparse
    sets a default only where the namespace has no value yet, so what still holds the marker was not given
    (abbreviations such as ``--epo 3`` included). Fine for store and store_true/false options; an
    ``append`` or ``count`` option would add to the marker."""
    marked = argparse.Namespace(**dict.fromkeys(vars(args), _NOT_GIVEN))
    parser.parse_args(argv, namespace=marked)
    return {name for name, value in vars(marked).items() if value is not _NOT_GIVEN}


def _resume_args(args: argparse.Namespace, runs_dir: Path) -> Path:
    """The run folder to resume; ``args`` take the values the run started with. Refuses changed settings
    (``run_folder.resume_conflicts``, the check ``fit(resume=True)`` makes too)."""
    from . import run_folder
    from .checkpoint import has_checkpoint
    from .errors import CourseError, one_line
    from .train import latest_run_dir

    run_dir = args.out or latest_run_dir(runs_dir)
    if run_dir is None or not has_checkpoint(run_dir):
        raise UsageError(f"nothing to resume: no checkpoint in {run_dir or runs_dir} (no epoch has finished "
                         "there); pass --out with the run folder of the run to continue, or start without --resume")
    try:
        saved = run_folder.read_settings(run_dir)
    except CourseError as e:
        raise UsageError(f"cannot resume {run_dir}: {one_line(e)}") from e
    if saved is None or saved.command_line is None:
        raise UsageError(f"cannot resume {run_dir}: its {run_folder.SETTINGS_FILE} is missing or holds no command "
                         "line; it was not started by this command line, resume it from Python with "
                         "train.fit(resume=True)")
    given = run_folder.RunSettings({}, command_line={k: _jsonable(getattr(args, k)) for k in sorted(args.explicit)
                                                     if hasattr(args, k)})
    options = {name: option for name, (_, _, option) in train_options().items() if option}
    changed = [f"{options.get(c.key, _option(c.key))} {c.saved} (given {c.now})"
               for c in run_folder.resume_conflicts(saved, given)]
    if changed:
        raise UsageError(f"{run_dir.name} was started with {', '.join(changed)}; --resume continues a run as it "
                         "started: drop those options, or start a new run (without --resume) with the new values")
    for key, value in saved.command_line.items():
        if key not in run_folder.RESUME_MAY_CHANGE and hasattr(args, key):
            setattr(args, key, Path(value) if key in ("data_root", "course_dir") and value else value)
    return run_dir


def _jsonable(value):
    return str(value) if isinstance(value, Path) else value


def recorded_args(args: argparse.Namespace) -> dict:
    """The arguments as run.json records them (what was asked on the command line, JSON-ready)."""
    return {k: _jsonable(v) for k, v in vars(args).items() if k not in NOT_RECORDED}


def _new_run(args: argparse.Namespace, runs_dir: Path) -> Path:
    """A fresh run folder (``--out`` or a new one); ``fit`` writes its run.json."""
    from . import run_folder
    from .checkpoint import has_checkpoint

    run_dir = run_folder.prepare(args.out) if args.out else run_folder.new_run_dir(runs_dir, f"{args.model}-{args.dataset}")
    if has_checkpoint(run_dir):
        raise UsageError(f"{run_dir} already holds a run: add --resume to continue it, or choose another --out")
    return run_dir


def _check_data_root(args: argparse.Namespace) -> None:
    if args.data_root is not None and not args.data_root.expanduser().is_dir():
        raise UsageError(f"--data-root {args.data_root} does not exist (a typo?); give an existing folder, or "
                         "leave it out to use <course folder>/data")


def run_train(args: argparse.Namespace) -> int:
    from . import distributed, env
    from .data import load_dataset
    from .loader import make_loaders
    from .models import build_model
    from .train import seed_everything

    course = env.setup(device=None, course_path=args.course_dir, verbose=False)
    context = distributed.init_from_env(args.device)  # started by torchrun: join its group; else None
    if context is not None:
        args.device = str(context.device)  # this process's GPU (cuda:LOCAL_RANK) or the CPU
        if context.rank != 0:  # rank 0 prints and writes for all
            sys.stdout = open(os.devnull, "w")  # for the rest of this process
            args.progress = args.tensorboard = args.plots = False
    run_dir = _resume_args(args, course.runs_dir) if args.resume else None
    _check_data_root(args)
    device = env.pick_device(args.device)
    print(f"device: {env.describe_device(device)}")
    config = train_config(args)
    dataset = load_dataset(args.dataset, args.data_root or course.data_dir, cache_dir=course.course_dir / "cache")
    print(dataset)
    train_loader, test_loader = make_loaders(dataset, config.batch_size, device, fast=args.fast,
                                             augment=config.augment, seed=config.seed, num_workers=args.workers)
    seed_everything(config.seed)  # same initial weights for the same --seed
    model = build_model(args.model, dataset.num_classes)
    run_dir = run_dir or distributed.from_main(lambda: _new_run(args, course.runs_dir))  # one folder for all
    print(f"run folder: {run_dir}")
    return _fit_and_report(args, model, dataset, train_loader, test_loader, config, device, run_dir)


def _fit_and_report(args, model, dataset, train_loader, test_loader, config, device, run_dir: Path) -> int:
    from .checkpoint import has_checkpoint
    from .train import fit

    callbacks = []
    if args.tensorboard:
        from .viz.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(images=next(iter(test_loader))[0][:64],
                                           hparams={"model": args.model, "dataset": args.dataset}))
    try:
        result = fit(model, train_loader, test_loader, config, device, run_dir=run_dir, resume=args.resume,
                     classes=dataset.classes, progress=args.progress, callbacks=callbacks,
                     info={"model": args.model, "dataset": args.dataset}, command_line=recorded_args(args))
    except KeyboardInterrupt:
        if has_checkpoint(run_dir):
            print(f"interrupted: the last complete epoch is saved in {run_dir}; continue with "
                  f"python -m MyModules train --resume --out {run_dir}", file=sys.stderr)
        else:
            print(f"interrupted during the first epoch: nothing was saved yet ({run_dir} holds no checkpoint); "
                  "start the run again", file=sys.stderr)
        return EXIT_INTERRUPTED
    s = result.summary
    print(f"test accuracy {s['test_accuracy']:.2f} % after {s['epochs']} epochs, "
          f"{s['train_seconds']:.1f} s training ({s['images_per_second']:.0f} images/s, {s['precision']}); "
          f"saved in {run_dir}")
    if args.plots:
        from .viz.plots import save_run_plots

        paths = save_run_plots(run_dir, model, dataset, device)
        print("plots and confusion CSVs:", ", ".join(sorted(p.name for p in paths.values())))
    return EXIT_OK


def space_options() -> dict[str, tuple]:
    """The search space's fields as ``tune`` options: ``{field: (type of one value, choices, option)}``."""
    from .train import OPTIMIZERS
    from .tuning.space import ACTIVATIONS

    return {
        "lr": (_positive_float, None, None),
        "optimizers": (str, OPTIMIZERS, None),
        "momentum": (_non_negative_float, None, None),
        "adam_weight_decay": (_positive_float, None, None),
        "batch_sizes": (_positive_int, None, None),
        "conv_blocks": (_positive_int, None, None),
        "layers_per_block": (_positive_int, None, None),
        "widths": (_positive_int, None, None),
        "fc_layers": (_non_negative_int, None, None),
        "fc_units": (_positive_int, None, None),
        "activations": (str, tuple(ACTIVATIONS), None),
    }


#: Epochs per trial unless --epochs says otherwise: a trial needs fewer than a whole run
#: (TrainConfig.epochs), and the pruner stops the hopeless ones earlier still.
TRIAL_EPOCHS = 5


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    from .data import DATASETS
    from .train import TrainConfig
    from .tuning.objective import PRUNERS, tune
    from .tuning.space import SearchSpace
    from .tuning.storage import StorageConfig

    p.add_argument("--storage", default=None,
                   help="database URL shared by all workers (postgresql+psycopg2://user:pass@host/db, "
                        "mysql+pymysql://...; URL-encode '@' in a password as %%40) or a .journal file; "
                        "default: <course folder>/studies/<study>.journal (one runtime at a time)")
    p.add_argument("--study", default=None,
                   help="study name; default: derived from dataset and search space, so workers started with "
                        "the same options join the same study")
    p.add_argument("--n-trials", type=_positive_int, default=20,
                   help="COMPLETE + PRUNED trials the study should reach, all workers together (default: %(default)s)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="stop this worker after this many seconds")
    p.add_argument("--storage-timeout", type=_positive_float, default=None,
                   help=_help(field_comments(StorageConfig).get("storage_timeout", ""),
                              default=field_defaults(StorageConfig)["storage_timeout"]))
    p.add_argument("--pruner", choices=PRUNERS, default=_parameter_default(tune, "pruner"),
                   help="stops trials that do worse than the others early (default: %(default)s)")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS, help="dataset (default: %(default)s)")
    p.add_argument("--data-root", type=Path, default=None, help="folder holding the datasets (default <course folder>/data)")
    p.add_argument("--epochs", type=_positive_int, default=TRIAL_EPOCHS, help="epochs per trial (default: %(default)s)")
    p.add_argument("--seed", type=int, default=field_defaults(TrainConfig)["seed"],
                   help="seed of every trial's weights and data order, and of the sampler (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--course-dir", type=Path, default=None, help="course folder (default $COURSE_DIR or ~/pytorch-course)")
    p.add_argument("--tensorboard", action="store_true",
                   help="TensorBoard logs per trial (<course folder>/runs/<study>/trial-NNNN/tensorboard)")
    add_config_options(p.add_argument_group("search space (MyModules.tuning.space.SearchSpace)"), SearchSpace,
                       space_options())


def search_space(args: argparse.Namespace):
    """The SearchSpace the options ask for (ValueError when it is not one)."""
    from .tuning.space import SearchSpace

    return SearchSpace(**{name: tuple(getattr(args, name)) for name in space_options()})


def run_tune(args: argparse.Namespace) -> int:
    import dataclasses

    from . import env
    from .errors import CourseError, one_line
    from .train import TrainConfig
    from .tuning.objective import resume_command, tune
    from .tuning.storage import StorageConfig

    try:
        space = search_space(args)
        device = env.pick_device(args.device)
        config = StorageConfig.default()
        if args.storage_timeout is not None:
            config = dataclasses.replace(config, storage_timeout=args.storage_timeout)
    except ValueError as e:
        raise UsageError(one_line(e)) from e
    try:
        course = env.setup(device=None, course_path=args.course_dir, verbose=False)
        print(f"device: {env.describe_device(device)}")
        from .data import load_dataset

        dataset = load_dataset(args.dataset, args.data_root or course.data_dir)
        tune(dataset=dataset, device=device, course_dir=course.course_dir, runs_dir=course.runs_dir,
             n_trials=args.n_trials, base=TrainConfig(epochs=args.epochs, seed=args.seed), space=space,
             storage=args.storage, study_name=args.study, pruner=args.pruner, timeout=args.timeout,
             tensorboard=args.tensorboard, config=config)
    except CourseError as e:
        print(f"error: {hide_secrets(one_line(e), [args.storage])}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: the trial that was running, if any, is queued again and continues from its last "
              "complete epoch; "
              f"continue with: {resume_command()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def hide_secrets(text: str, argv: list[str | None]) -> str:
    """``text`` without the password of any database URL in ``argv``: a driver's message, argparse (which
    repeats a stray argument) or a traceback may contain it, and none of them may show it."""
    urls = [a.split("=", 1)[1] if a.startswith("--") and "=" in a else a for a in argv if a and "@" in a]
    if not urls:
        return text
    from .tuning.storage import hide_secrets as hide

    for url in urls:
        text = hide(text, url)
    return text


def add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder (holds its checkpoints)")
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts) instead of the report")
    p.add_argument("--no-eval", dest="evaluate", action="store_false",
                   help="for a run that has not finished: do not compute per-class accuracy on the test set")


def run_inspect(args: argparse.Namespace) -> int:
    from .runs.inspect import describe_run, format_report

    info = describe_run(args.run, evaluate=args.evaluate)
    print(json.dumps(info, indent=2, ensure_ascii=False) if args.json else format_report(info))
    return EXIT_OK


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder (holds its checkpoints)")
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="image files and/or folders (searched recursively)")
    p.add_argument("--top", type=_positive_int, default=1, help="print the K most likely classes (default 1)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="images per forward pass")


def run_predict(args: argparse.Namespace) -> int:
    """One line per image on stdout (path, class, probability); unreadable files: one line each on stderr."""
    import time

    from .runs.inference import format_prediction, load_model, predict

    loaded = load_model(args.run)
    done = failed = 0
    start = time.perf_counter()
    for p in predict(loaded, args.paths, top=args.top, batch_size=args.batch_size):
        if p.error is not None:
            failed += 1
            print(f"error: {p.path}: {p.error}", file=sys.stderr)
        else:
            done += 1
            print(format_prediction(p), flush=False)
    seconds = time.perf_counter() - start
    print(f"{done} images predicted in {seconds:.2f} s ({done / seconds if seconds > 0 else 0:.0f} images/s)"
          + (f", {failed} could not be read" if failed else ""), file=sys.stderr)
    if done == 0 and failed == 0:
        raise UsageError(f"no image files found in {', '.join(map(str, args.paths))}")
    return EXIT_FAILED if failed else EXIT_OK


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    from .runs.export import FORMATS

    p.add_argument("run", type=Path, help="run folder (holds its checkpoints)")
    p.add_argument("--format", choices=FORMATS, default="onnx",
                   help="onnx (RUN/model.onnx, default) or torchscript (RUN/model.torchscript.pt)")
    p.add_argument("--output", type=Path, default=None, help="file to write (default: in the run folder)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="do not compare the exported file with PyTorch on test images")


def run_export(args: argparse.Namespace) -> int:
    from .runs.export import export_run

    path, check = export_run(args.run, args.format, args.output, check=args.check)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {args.format})")
    if check is not None:
        per_batch = ", ".join(f"batch {n}: {d:.2e}" for n, d in check.max_abs_diff.items())
        print(f"largest |logit difference| vs PyTorch on {check.images}: {check.largest:.2e} ({per_batch}); "
              f"predictions {'identical' if check.same_predictions else 'DIFFER'}")
        if check.largest > 1e-4 or not check.same_predictions:
            print(f"error: {path} does not match the PyTorch model closely enough", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


COMMANDS = {
    "train": ("train a model (the main job)", add_train_arguments, run_train),
    "tune": ("search hyperparameters with Optuna: start one worker of a study", add_tune_arguments, run_tune),
    "inspect": ("describe a run: model, data, epochs, accuracies, model summary", add_inspect_arguments, run_inspect),
    "predict": ("label image files or folders with a run's model", add_predict_arguments, run_predict),
    "export": ("write a run's model as ONNX (or TorchScript) and check it", add_export_arguments, run_export),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m MyModules", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.commands = {}
    for name, (help_text, add_arguments, handler) in COMMANDS.items():
        p = parser.commands[name] = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(func=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import CourseError, dead_mount_error, is_dead_mount, one_line

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command_argv = argv[argv.index(args.command) + 1:]  # what the command's own parser read
        args.explicit = _explicit(command_argv, parser.commands[args.command], args)
        return args.func(args)
    except CourseError as e:  # UsageError included
        print(f"error: {hide_secrets(one_line(e), argv)}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if not is_dead_mount(e):
            raise
        error = dead_mount_error(e)  # Colab's Drive died under a running command
        print(f"error: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: its traceback, but never a password from the command line
        if not any(a and "@" in a for a in argv):
            raise
        import traceback

        print(hide_secrets(traceback.format_exc(), argv), file=sys.stderr, end="")
        return EXIT_FAILED


def run() -> None:
    """``python -m MyModules`` and the ``mymodules`` script: :func:`main`, then exit with its code.

    After Ctrl-C the process ends killed by SIGINT, not with a plain exit code 130, as Python ends an
    unhandled KeyboardInterrupt. Bash stops a loop or a script only when its child died of SIGINT; a
    child that exits 130 looks as if it handled Ctrl-C itself, so ``for lr in ...; do python -m MyModules
    train ...; done`` went on with the next run. It also makes the ending the same wherever the signal
    lands: under ``python -m`` (measured on 3.10 to 3.13) Python kills itself with SIGINT anyway when the
    KeyboardInterrupt struck code built from a string by ``exec`` (dataclasses do that while
    torch._dynamo is imported at the first optimizer step), even though main caught it. The kill comes
    after the other exit handlers and after buffered output.
    """
    codes: list[int] = []

    def end_by_sigint_after_ctrl_c() -> None:
        if codes == [EXIT_INTERRUPTED] and os.name == "posix":  # elsewhere the exit code 130 stands
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    # Registered before main imports anything, so it runs after every exit handler registered later.
    atexit.register(end_by_sigint_after_ctrl_c)
    from . import interrupt

    with interrupt.catching():  # a Ctrl-C that a finalizer swallowed is still a Ctrl-C (see interrupt.py)
        code = main()
        if code == EXIT_OK and interrupt.pressed():
            print("interrupted: Ctrl-C came as the command was finishing; what it had done is saved",
                  file=sys.stderr)
            code = EXIT_INTERRUPTED
    codes.append(code)
    sys.exit(codes[0])


if __name__ == "__main__":
    run()
