"""Throughput of ``python -m MyModules predict``: images/s from PNG files to class names, on the CPU.

    python benchmarks/bench_predict.py                       # tutorial Net, 2,000 PNG files
    python benchmarks/bench_predict.py --models net vgg11_bn --images 1000

For each model it makes a real run folder (``train.fit`` for 2 steps on the generated ``synthetic``
data: the weights do not change the speed), writes ``--images`` 32×32 colour PNG files, and measures
(median of ``--repeats``):

* decode  - ``inference.read_image`` alone (PIL decode + the run's test-set conversion), images/s
* model   - the model alone on prepared uint8 batches (normalise + forward + softmax), images/s
* predict - ``inference.predict`` over the folder, everything included: what ``predict`` does, images/s
* command - ``python -m MyModules predict RUN FOLDER`` as a subprocess, wall time including start-up

Not a test: nothing here asserts a speed. Figures go to RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import data  # noqa: E402
from MyModules.loader import make_loaders  # noqa: E402
from MyModules.models import build_model  # noqa: E402
from MyModules.runs.inference import load_model, predict, read_image  # noqa: E402
from MyModules.train import TrainConfig, fit  # noqa: E402


def median_rate(count: int, fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["net"])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, COURSE_DIR=str(tmp / "course"), PYTHONPATH=str(ROOT))
        env.pop("COURSE_TEST_MODE", None)
        dataset = data.load_dataset("synthetic", tmp / "data", test_mode=False)
        folder = tmp / "images"
        folder.mkdir()
        from PIL import Image

        images, _ = data.make_synthetic(args.images, seed=7)  # (N, 3, 32, 32) uint8
        for i, image in enumerate(images):
            Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(folder / f"{i:05d}.png")
        paths = sorted(folder.glob("*.png"))
        print(f"{len(paths)} PNG files, 3x32x32, batch {args.batch_size}")
        print(f"{'model':>10s} {'decode':>10s} {'model':>10s} {'predict':>10s} {'command':>22s}")
        for name in args.models:
            run = tmp / f"run-{name}"
            train_loader, test_loader = make_loaders(dataset, 64, "cpu")
            torch.manual_seed(0)
            fit(build_model(name), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2),
                "cpu", run_dir=run, classes=dataset.classes, progress=False,
                info={"model": name, "dataset": "synthetic"})
            loaded = load_model(run)
            decode = median_rate(len(paths), lambda loaded=loaded: [read_image(p, loaded.preprocessing) for p in paths],
                                 args.repeats)
            batch = torch.from_numpy(images)

            def forward(batch=batch, loaded=loaded):
                for start in range(0, len(batch), args.batch_size):
                    loaded.probabilities(batch[start:start + args.batch_size])

            model = median_rate(len(batch), forward, args.repeats)
            end_to_end = median_rate(len(paths), lambda loaded=loaded: list(predict(loaded, [folder],
                                                                                    batch_size=args.batch_size)),
                                     args.repeats)
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "MyModules", "predict", str(run), str(folder)],
                                    env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            assert result.returncode == 0 and result.stdout.count("\n") == len(paths), result.stderr
            print(f"{name:>10s} {decode:10,.0f} {model:10,.0f} {end_to_end:10,.0f} "
                  f"{seconds:8.2f} s ({len(paths) / seconds:,.0f}/s)")


if __name__ == "__main__":
    main()
