"""Does the default recipe learn? The README's offline check and real digits, through the command line.

Runs ``python -m MyModules train`` (in-process ``main``) with every option at its default except
``--lr`` (one value per row, the default included) and ``--seed``, on

* ``--dataset synthetic``: the generated shapes, exactly the README's offline check;
* real handwritten digits (scikit-learn's 1,797, upscaled to 28x28, as an ImageFolder tree; needs
  ``pip install scikit-learn``; left out with ``--no-digits``).

Prints, per learning rate: the final test accuracy of each seed, the lowest, and the lowest accuracy
of any epoch after the first (a run that falls back to chance shows there).

    python benchmarks/bench_defaults.py                          # the default lr, seeds 0-5
    python benchmarks/bench_defaults.py --lrs 0.01 0.02 0.03 0.05  # the sweep behind the default
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from MyModules.__main__ import main
from MyModules.train import TrainConfig


def run(course: Path, name: str, extra: list[str], lr: float, seed: int) -> tuple[float, float]:
    """(final test accuracy, lowest test accuracy after epoch 1) of one default run."""
    out = course / "runs" / f"{name}-{lr:g}-{seed}"
    code = main(["train", *extra, "--lr", str(lr), "--seed", str(seed), "--course-dir", str(course),
                 "--out", str(out), "--no-progress", "--no-plots", "--no-tensorboard"])
    if code != 0:
        return float("nan"), float("nan")  # diverged (exit 3) or failed: shows as nan in the table
    final = json.loads((out / "summary.json").read_text())["test_accuracy"]
    with open(out / "metrics.csv") as f:
        later = [float(row["test_accuracy"]) for row in csv.DictReader(f)][1:]
    return final, min(later, default=final)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[TrainConfig().lr])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--no-digits", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"synthetic": ["--dataset", "synthetic"]}
        if not args.no_digits:
            from bench_augment import write_digits

            tree = write_digits(Path(tmp) / "digits")
            sets["digits"] = ["--dataset", "imagefolder", "--data-root", str(tree)]
        rows = []
        for name, extra in sets.items():
            for lr in args.lrs:
                results = [run(Path(tmp) / "course", name, extra, lr, s) for s in args.seeds]
                rows.append((name, lr, results))
                print(f"{name} lr {lr:g}: " + ", ".join(f"{f:.1f}" for f, _ in results), flush=True)
    print(f"\ndefault recipe (tutorial Net, {TrainConfig().epochs} epochs, every other option at its default), "
          f"seeds {args.seeds[0]}-{args.seeds[-1]}")
    print("| data | peak lr | final test accuracy per seed (%) | lowest final | lowest after epoch 1 |")
    print("| --- | ---: | --- | ---: | ---: |")
    for name, lr, results in rows:
        finals = ", ".join(f"{f:.1f}" for f, _ in results)
        print(f"| {name} | {lr:g} | {finals} | {min(f for f, _ in results):.1f} | "
              f"{min(low for _, low in results):.1f} |")


if __name__ == "__main__":
    main_bench()
