"""Which training augmentation fits handwritten digits? Real digits, the course's own code path.

scikit-learn ships 1,797 real handwritten digits (8x8, from UCI); they are upscaled to 28x28 like MNIST,
written as an ImageFolder tree (train/<digit>/*.png, test/<digit>/*.png) and trained with
``python -m MyModules train --dataset imagefolder --augment X`` (in-process ``main``), every other
option at its default. Prints the final test accuracy per augmentation and seed.

    pip install scikit-learn
    python benchmarks/bench_augment.py --epochs 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from MyModules.__main__ import main


def write_digits(root: Path, size: int = 28, seed: int = 0) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    n_test = len(order) // 5  # 80 / 20 split
    for rank, i in enumerate(order):
        part = "test" if rank < n_test else "train"
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255
        folder = root / part / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return root


def run(tree: Path, course: Path, augment: str, seed: int, epochs: int) -> float:
    out = course / "runs" / f"digits-{augment}-{seed}"
    code = main(["train", "--dataset", "imagefolder", "--data-root", str(tree), "--augment", augment,
                 "--seed", str(seed), "--epochs", str(epochs), "--course-dir", str(course), "--out", str(out),
                 "--no-progress", "--no-plots", "--no-tensorboard"])
    if code != 0:
        raise SystemExit(f"run failed with exit code {code}")
    return json.loads((out / "summary.json").read_text())["test_accuracy"]


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--augments", nargs="+", default=["none", "crop", "crop-flip", "auto"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = write_digits(Path(tmp) / "digits")
        results = {a: [run(tree, Path(tmp) / "course", a, s, args.epochs) for s in args.seeds] for a in args.augments}
    print(f"real digits (scikit-learn, 1,437 train / 360 test, 28x28 -> 32x32), tutorial Net, {args.epochs} epochs")
    for augment, accuracies in results.items():
        print(f"  {augment:10s} mean {statistics.mean(accuracies):5.1f} %  per seed {accuracies}")


if __name__ == "__main__":
    main_bench()
