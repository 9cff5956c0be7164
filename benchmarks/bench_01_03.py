"""01_03's comparison recipe: MyWideNet (no BatchNorm) against MyBNNet at a few peak learning rates.

    python benchmarks/bench_01_03.py                              # generated data, 2,500 images
    python benchmarks/bench_01_03.py --train-size 10000 --lrs 0.01 0.02
    python benchmarks/bench_01_03.py --data-dir DIR               # real CIFAR-10 in DIR/cifar-10-batches-py

For each model, peak lr and seed it runs what the notebook runs (``train.fit``, ``TrainConfig(epochs=10,
batch_size=128, lr=...)``, the course loader with its default augmentation) and prints the final test
accuracy, the lowest test accuracy of any epoch after the first, and "diverged" when ``fit`` stopped
with a DivergenceError. MyWideNet and MyBNNet are ``models.WideNet(batch_norm=False / True)``, the
references of the notebook's self-checks. Not a test: nothing here asserts an accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import data, env, loader, models, train  # noqa: E402
from MyModules.errors import DivergenceError  # noqa: E402


def run(batch_norm: bool, dataset, lr: float, seed: int, epochs: int, device: str) -> tuple[str, str]:
    config = train.TrainConfig(epochs=epochs, batch_size=128, lr=lr, seed=seed)
    train_loader, test_loader = loader.make_loaders(dataset, config.batch_size, device, seed=seed)
    torch.manual_seed(seed)
    model = models.WideNet(dataset.num_classes, batch_norm=batch_norm)
    try:
        history = train.fit(model, train_loader, test_loader, config, device, progress=False).history
    except DivergenceError as e:
        return "diverged", str(e).split(":")[1].split(";")[0].strip()
    accuracies = [row["test_accuracy"] for row in history]
    return f"{accuracies[-1]:.1f}", f"{min(accuracies[1:]):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.015, 0.02, 0.03])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=2500, help="generated training images")
    parser.add_argument("--data-dir", type=Path, help="folder holding cifar-10-batches-py (real CIFAR-10)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    os.environ.pop(env.TEST_MODE_VAR, None)
    with tempfile.TemporaryDirectory() as scratch:
        if args.data_dir:
            dataset = data.load_dataset("cifar10", args.data_dir, download=False, test_mode=False)
        else:
            data.generate_test_data("cifar10", Path(scratch), train_size=args.train_size,
                                    test_size=max(500, args.train_size // 5))
            dataset = data.load_dataset("cifar10", Path(scratch), download=False, test_mode=False)
        print(dataset, f"| torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
        print("| model | peak lr | final test accuracy per seed (%) | lowest after epoch 1 per seed (%) |")
        print("| --- | ---: | --- | --- |")
        for batch_norm in (False, True):
            for lr in args.lrs:
                start = time.perf_counter()
                results = [run(batch_norm, dataset, lr, s, args.epochs, args.device) for s in args.seeds]
                name = "MyBNNet" if batch_norm else "MyWideNet"
                print(f"| {name} | {lr:g} | {', '.join(f for f, _ in results)} | "
                      f"{', '.join(low for _, low in results)} | ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
