"""Command line: ``python -m MyModules train ...`` (the main job; lab servers run it from a terminal).

Thin on purpose: it parses arguments, then calls ``env``, ``data``, ``loader``, ``models`` and
``train``. Every failure a user can cause (bad arguments, missing data, nothing to resume) ends with
one line saying what to do and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2
RUN_ARGS_FILE = "run.json"


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see: python -m MyModules {self.prog.split()[-1]} --help)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .data import DATASETS
    from .models import MODELS

    p.add_argument("--dataset", default="cifar10", choices=DATASETS, help="dataset (default cifar10)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the datasets (for imagefolder: the folder with train/ and test/); "
                        "default: <course folder>/data")
    p.add_argument("--model", default="net", choices=MODELS, help="model (default net, the tutorial's)")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=_positive_float, default=0.05, help="peak learning rate (one-cycle)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop each epoch after this many steps")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: a new folder under <course folder>/runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: the latest run) from its last complete epoch")
    p.add_argument("--course-dir", type=Path, default=None, help="course folder (default $COURSE_DIR or ~/pytorch-course)")
    p.add_argument("--no-fast", dest="fast", action="store_false",
                   help="use the standard DataLoader path instead of the device-resident loader")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for --no-fast")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="disable mixed precision")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="do not write TensorBoard logs (<run folder>/tensorboard)")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="do not save plots and confusion-matrix CSVs into the run folder")


def run_train(args: argparse.Namespace) -> int:
    from . import env
    from .data import DatasetError, load_dataset
    from .loader import make_loaders
    from .models import build_model
    from .train import TrainConfig, fit, latest_run_dir, new_run_dir, seed_everything

    course = env.setup(device=None, course_path=args.course_dir, verbose=False)
    if args.resume:
        run_dir = args.out or latest_run_dir(course.runs_dir)
        if run_dir is None or not (run_dir / "checkpoint.pt").exists():
            raise UsageError(f"nothing to resume: no checkpoint.pt in {run_dir or course.runs_dir}; "
                             "pass --out with the run folder of the run to continue")
        saved = json.loads((run_dir / RUN_ARGS_FILE).read_text())
        # The run continues exactly as it started; only the device may change.
        for key, value in saved.items():
            if key not in ("device", "resume", "out", "progress"):
                setattr(args, key, Path(value) if key in ("data_root", "course_dir") and value else value)
    try:
        device = env.pick_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from e
    print(f"device: {env.describe_device(device)}")
    try:
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                             weight_decay=args.weight_decay, seed=args.seed, max_steps_per_epoch=args.max_steps,
                             amp=args.amp, compile=args.compile)
    except ValueError as e:
        raise UsageError(str(e)) from e
    data_dir = args.data_root or course.data_dir
    try:
        dataset = load_dataset(args.dataset, data_dir)
    except DatasetError as e:
        raise UsageError(str(e)) from e
    print(dataset)
    train_loader, test_loader = make_loaders(dataset, config.batch_size, device, fast=args.fast,
                                             seed=config.seed, num_workers=args.workers)
    seed_everything(config.seed)  # same initial weights for the same --seed
    model = build_model(args.model, dataset.num_classes)
    if not args.resume:
        run_dir = args.out or new_run_dir(course.runs_dir, f"{args.model}-{args.dataset}")
        run_dir.mkdir(parents=True, exist_ok=True)
        if (run_dir / "checkpoint.pt").exists():
            raise UsageError(f"{run_dir} already holds a run: add --resume to continue it, or choose another --out")
        saved = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
        (run_dir / RUN_ARGS_FILE).write_text(json.dumps(saved, indent=2) + "\n")
    print(f"run folder: {run_dir}")
    callbacks = []
    if args.tensorboard:
        from .tb_logging import TensorBoardLogger

        callbacks.append(TensorBoardLogger(images=next(iter(test_loader))[0][:64],
                                           hparams={"model": args.model, "dataset": args.dataset}))
    result = fit(model, train_loader, test_loader, config, device, run_dir=run_dir, resume=args.resume,
                 classes=dataset.classes, progress=args.progress, callbacks=callbacks,
                 info={"model": args.model, "dataset": args.dataset})
    s = result.summary
    print(f"test accuracy {s['test_accuracy']:.2f} % after {s['epochs']} epochs, "
          f"{s['train_seconds']:.1f} s training ({s['images_per_second']:.0f} images/s); saved in {run_dir}")
    if args.plots:
        from .plots import save_run_plots

        paths = save_run_plots(run_dir, model, dataset, device)
        print("plots and confusion CSVs:", ", ".join(sorted(p.name for p in paths.values())))
    return 0


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    from .data import DATASETS
    from .tuning import PRUNERS

    p.add_argument("--storage", default=None,
                   help="database URL shared by all workers (postgresql+psycopg2://user:pass@host/db, "
                        "mysql+pymysql://...; URL-encode '@' in a password as %%40) or a .journal file; "
                        "default: <course folder>/studies/<study>.journal (one runtime at a time)")
    p.add_argument("--study", default=None,
                   help="study name; default: derived from dataset and search space, so workers started with "
                        "the same options join the same study")
    p.add_argument("--n-trials", type=_positive_int, default=20,
                   help="COMPLETE + PRUNED trials the study should reach, all workers together (default 20)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="stop this worker after this many seconds")
    p.add_argument("--storage-timeout", type=_positive_float, default=None,
                   help="seconds to keep retrying an unreachable database before stopping (default 60)")
    p.add_argument("--pruner", choices=PRUNERS, default="median")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS, help="dataset (default cifar10)")
    p.add_argument("--data-root", type=Path, default=None, help="folder holding the datasets (default <course folder>/data)")
    p.add_argument("--epochs", type=_positive_int, default=5, help="epochs per trial (default 5)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every trial's weights and data order, and of the sampler (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--course-dir", type=Path, default=None, help="course folder (default $COURSE_DIR or ~/pytorch-course)")
    p.add_argument("--tensorboard", action="store_true",
                   help="TensorBoard logs per trial (<course folder>/runs/<study>/trial-NNNN/tensorboard)")
    space = p.add_argument_group("search space (default: MyModules.search_space.SearchSpace)")
    space.add_argument("--lr", type=_positive_float, nargs=2, metavar=("LOW", "HIGH"), help="learning-rate range (log)")
    space.add_argument("--optimizers", nargs="+", choices=("sgd", "adam"))
    space.add_argument("--batch-sizes", type=_positive_int, nargs="+")
    space.add_argument("--conv-blocks", type=_positive_int, nargs=2, metavar=("LOW", "HIGH"))
    space.add_argument("--layers-per-block", type=_positive_int, nargs=2, metavar=("LOW", "HIGH"))
    space.add_argument("--widths", type=_positive_int, nargs="+", help="channels of the first block")
    space.add_argument("--fc-layers", type=int, nargs=2, metavar=("LOW", "HIGH"))
    space.add_argument("--fc-units", type=_positive_int, nargs="+")
    space.add_argument("--activations", nargs="+", choices=("relu", "gelu", "silu"))


def run_tune(args: argparse.Namespace) -> int:
    import dataclasses

    from . import env
    from .errors import CourseError, one_line
    from .search_space import space_from_options
    from .study_storage import StorageConfig
    from .train import TrainConfig
    from .tuning import resume_command, tune

    try:
        space = space_from_options(lr=args.lr, optimizers=args.optimizers, batch_sizes=args.batch_sizes,
                                   conv_blocks=args.conv_blocks, layers_per_block=args.layers_per_block,
                                   widths=args.widths, fc_layers=args.fc_layers, fc_units=args.fc_units,
                                   activations=args.activations)
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
        print(f"error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: a trial that was running is queued again and continues from its last complete epoch; "
              f"continue with: {resume_command()}", file=sys.stderr)
        return 130
    return 0


COMMANDS = {
    "train": ("train a model (the main job)", add_train_arguments, run_train),
    "tune": ("search hyperparameters with Optuna: start one worker of a study", add_tune_arguments, run_tune),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m MyModules", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, add_arguments, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(func=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: the last complete epoch is saved; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
