"""How long session 3's searches take: training throughput of the search space's models, and the
time budget of each notebook derived from it.

    python benchmarks/bench_trial.py                  # CPU here: prints images/s and the T4 estimate
    python benchmarks/bench_trial.py --device cuda    # on Colab's T4: the real figure (no factor)

For the smallest, middle and largest ConvNet of the default ``SearchSpace`` (batch 128, the course's
DeviceLoader + train_one_epoch, generated CIFAR-sized images) it prints images/s, then the training
minutes of each notebook's required and optional parts (every trial trained to the end: pruning only
makes it shorter; the test pass after each epoch counted as a third of a training pass per image).

On a CPU the minutes for a T4 are an **estimate**: CPU time divided by ``--t4-factor`` (default 20).
Why 20: a T4 peaks at 65 TFLOPS in fp16 against about 0.6 TFLOPS bf16 for the two AVX512-BF16 cores
measured here (about 100x), but small convnets at batch 128 reach only a small share of a T4's peak
(kernel launches, memory-bound BatchNorm and activations), about a fifth of the share a CPU reaches;
100 / 5 = 20. Replace the estimate by running this script with ``--device cuda`` on a T4.
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import env  # noqa: E402
from MyModules.data import Dataset, ImageSet  # noqa: E402
from MyModules.loader import make_loaders  # noqa: E402
from MyModules.search_space import ConvNet, ConvNetShape, SearchSpace  # noqa: E402
from MyModules.speed import training_throughput  # noqa: E402

EPOCH_IMAGES, TEST_IMAGES = 50_000, 10_000
TEST_COST = 1 / 3  # a test image costs about a third of a training image (forward only)

# (notebook part, trials, epochs per trial): what the notebooks run outside test mode.
PLANS = [
    ("03_01 required: 10 trials x 3 epochs", 10, 3),
    ("03_01 optional: 10 more trials", 10, 3),
    ("03_02 required: 2 pruners x 5 trials x 3 epochs", 10, 3),
    ("03_02 optional: 2 more pruners", 10, 3),
]


def shapes(space: SearchSpace) -> dict[str, ConvNetShape]:
    def pick(values, k):
        return values[k] if isinstance(values, tuple) and len(values) > 2 else values[0 if k == 0 else -1]

    middle = ConvNetShape(conv_blocks=2, layers_per_block=1, width=32, fc_layers=1, fc_units=128)
    return {
        "smallest": ConvNetShape(conv_blocks=space.conv_blocks[0], layers_per_block=space.layers_per_block[0],
                                 width=pick(space.widths, 0), fc_layers=space.fc_layers[0], fc_units=0),
        "middle": middle,
        "largest": ConvNetShape(conv_blocks=space.conv_blocks[1], layers_per_block=space.layers_per_block[1],
                                width=pick(space.widths, -1), fc_layers=space.fc_layers[1],
                                fc_units=pick(space.fc_units, -1)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    p.add_argument("--repeats", type=int, default=3, help="median of this many measurements per model")
    p.add_argument("--t4-factor", type=float, default=20.0, help="T4 speed over this CPU (estimate, see above)")
    args = p.parse_args()
    device = env.pick_device(args.device)
    generator = torch.Generator().manual_seed(0)
    n = 128 * (args.steps + 10)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    dataset = Dataset("generated", ImageSet(images, labels), ImageSet(images[:512], labels[:512]),
                      [str(i) for i in range(10)], mean=(0.5,) * 3, std=(0.25,) * 3)
    train_loader, _ = make_loaders(dataset, 128, device)
    print(f"device: {env.describe_device(device)}; batch 128; median of {args.repeats} x {args.steps} steps")
    rates = {}
    for name, shape in shapes(SearchSpace()).items():
        runs = [training_throughput(ConvNet(shape, 10), train_loader, device, steps=args.steps)
                for _ in range(args.repeats)]
        rates[name] = statistics.median(runs)
        print(f"{name:9s} {shape}: {rates[name]:,.0f} images/s")
    rate = statistics.median(rates.values())  # a search samples across the space: the middle model
    factor = args.t4_factor if device.type == "cpu" else 1.0
    where = f"Colab T4 (estimate: CPU time / {factor:g})" if factor != 1.0 else env.describe_device(device)
    print(f"\ntraining minutes per notebook part on {where}, at {rate:,.0f} images/s here:")
    for label, trials, epochs in PLANS:
        images_seen = trials * epochs * (EPOCH_IMAGES + TEST_COST * TEST_IMAGES)
        minutes = images_seen / rate / factor / 60
        print(f"  {label:50s} {minutes:6.1f} min")


if __name__ == "__main__":
    main()
