"""How long session 3's searches train: the training minutes of each timed part of 03_01 and 03_02.

    python benchmarks/bench_trial.py                  # estimate for a Colab T4, and images/s on this CPU
    python benchmarks/bench_trial.py --device cuda    # on a GPU: minutes from the images/s measured there

The estimate uses the same model of a T4 as ``benchmarks/session_times.py`` (docs/01, section 5): a
training image costs 6 x its forward MACs (torchinfo) in FLOPs, a T4 delivers ``T4_FLOPS`` on small
convnets, and a step never takes less than ``T4_STEP_S`` (kernel launches and Python). A search samples
its model shapes and batch sizes across the search space (TPE's first trials are random), so an epoch
costs the mean over the space. ``tuning.Objective`` also writes a checkpoint and the journal file to
Drive every epoch and builds a model and loaders for every trial: ``EPOCH_OVERHEAD_S`` and
``TRIAL_OVERHEAD_S`` (guesses, not measured). Every trial is counted to its last epoch: pruning only
makes a search shorter.

docs/03_optuna.md's time table quotes these minutes (rounded up); tests/test_docs_ex03.py checks that
the table, the notebooks' settings (trials, epochs, search space) and this script agree. None of the T4
figures is measured: run this script with ``--device cuda`` on a T4 and put the result in
docs/instructor.md (第 3 回). Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from session_times import T4_FLOPS, T4_STEP_S  # noqa: E402

from MyModules import env  # noqa: E402
from MyModules.data import Dataset, ImageSet  # noqa: E402
from MyModules.loader import make_loaders  # noqa: E402
from MyModules.speed import training_throughput  # noqa: E402
from MyModules.tuning.space import ConvNet, ConvNetShape, SearchSpace  # noqa: E402
from MyModules.viz import summary  # noqa: E402

EPOCH_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10
TEST_BATCH = 512  # the course's test loader: one step per 500+ images
EPOCH_OVERHEAD_S = 1.0  # tuning.Objective, per epoch: checkpoint + metrics.csv + journal lines on Drive (guess)
TRIAL_OVERHEAD_S = 3.0  # tuning.Objective, per trial: model, loaders, first-step warm-up, journal (guess)

# The hand-written objective of 03_01 (2): one small model on a fifth of the data, batch 128.
HAND_SHAPE = ConvNetShape(conv_blocks=2, width=16)
HAND_BATCH = 128
HAND_TRAIN_IMAGES, HAND_TEST_IMAGES = EPOCH_IMAGES // 5, TEST_IMAGES // 5
# 03_02's smaller search space (the notebook's ``space``).
PRUNING_SPACE = SearchSpace(widths=(16, 32), conv_blocks=(1, 2), layers_per_block=(1, 1), fc_layers=(0, 1))


@dataclass(frozen=True)
class Plan:
    """One search of a notebook: what it trains outside test mode."""

    row: str  # how its row in docs/03_optuna.md's time table starts (several plans may share a row)
    what: str  # how the row names it, e.g. "8 試行 × 3 エポック"
    trials: int  # trials trained (all pruners together)
    epochs: int  # epochs per trial
    space: SearchSpace | None  # the shapes a search samples; None: the hand-written objective's one model
    course_objective: bool = True  # tuning.Objective (checkpoints, journal) rather than the plain loop


PLANS = [
    Plan("03_01 ①〜④", "② 8 試行 × 3 エポック", trials=8, epochs=3, space=None, course_objective=False),
    Plan("03_01 ①〜④", "③ 10 試行 × 3 エポック", trials=10, epochs=3, space=SearchSpace()),
    Plan("03_01 (任意)", "10 試行 × 3 エポック", trials=10, epochs=3, space=SearchSpace()),
    Plan("03_02 (任意)", "② 本物の学習 (2 つの pruner × 5 試行 × 3 エポック)", trials=2 * 5, epochs=3,
         space=PRUNING_SPACE),
    Plan("03_02 (任意)", "残りの pruner (2 つの pruner × 5 試行 × 3 エポック)", trials=2 * 5, epochs=3,
         space=PRUNING_SPACE),
]


def macs(shape: ConvNetShape) -> int:
    """Forward multiply-adds per 32x32 image (torchinfo), counted once per shape."""
    return _macs(tuple(dataclasses.astuple(shape)))


@functools.cache
def _macs(fields: tuple) -> int:
    return summary.model_summary(ConvNet(ConvNetShape(*fields), 10), (1, 3, 32, 32)).total_mult_adds


def t4_epoch_seconds(forward_macs: float, batch_size: int, train_images: int = EPOCH_IMAGES,
                     test_images: int = TEST_IMAGES) -> float:
    """One epoch and its test pass on a T4 (estimate, the model of benchmarks/session_times.py)."""
    train = max(train_images * 6 * forward_macs / T4_FLOPS, train_images / batch_size * T4_STEP_S)
    test = test_images * 2 * forward_macs / T4_FLOPS + test_images / TEST_BATCH * T4_STEP_S
    return train + test


def space_shapes(space: SearchSpace) -> list[ConvNetShape]:
    """Every (blocks, layers per block, width) of ``space``, with one hidden Linear layer of 128."""
    return [ConvNetShape(conv_blocks=b, layers_per_block=n, width=w, fc_layers=1, fc_units=128)
            for b, n, w in itertools.product(range(space.conv_blocks[0], space.conv_blocks[1] + 1),
                                             range(space.layers_per_block[0], space.layers_per_block[1] + 1),
                                             space.widths)]


def t4_minutes(plan: Plan) -> float:
    """Training minutes of ``plan`` on a Colab T4 (estimate; every trial trained to its last epoch)."""
    if plan.space is None:
        epoch = t4_epoch_seconds(macs(HAND_SHAPE), HAND_BATCH, HAND_TRAIN_IMAGES, HAND_TEST_IMAGES)
    else:
        epoch = statistics.mean(t4_epoch_seconds(m, b) for m in map(macs, space_shapes(plan.space))
                                for b in plan.space.batch_sizes)
    overhead_epoch, overhead_trial = (EPOCH_OVERHEAD_S, TRIAL_OVERHEAD_S) if plan.course_objective else (0.0, 0.0)
    return plan.trials * (plan.epochs * (epoch + overhead_epoch) + overhead_trial) / 60


def table_minutes(plan: Plan) -> int:
    """The figure docs/03_optuna.md's table shows: whole minutes, rounded up."""
    return math.ceil(t4_minutes(plan))


def measured_minutes(plan: Plan, images_per_second: float) -> float:
    train, test = ((HAND_TRAIN_IMAGES, HAND_TEST_IMAGES) if plan.space is None else (EPOCH_IMAGES, TEST_IMAGES))
    overhead_epoch, overhead_trial = (EPOCH_OVERHEAD_S, TRIAL_OVERHEAD_S) if plan.course_objective else (0.0, 0.0)
    epoch = (train + test / 3) / images_per_second  # a test image costs about a third of a training image
    return plan.trials * (plan.epochs * (epoch + overhead_epoch) + overhead_trial) / 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    p.add_argument("--repeats", type=int, default=3, help="median of this many measurements per model")
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
    for name, shape in {"hand-written objective": HAND_SHAPE, "middle of the space": ConvNetShape()}.items():
        runs = [training_throughput(ConvNet(shape, 10), train_loader, device, steps=args.steps)
                for _ in range(args.repeats)]
        rates[name] = statistics.median(runs)
        print(f"{name:24s} {shape}: {rates[name]:,.0f} images/s, {macs(shape) / 1e6:.1f} M MACs per image")
    print("\n| part | trials x epochs | T4 minutes (estimate) | table |"
          + (" measured here |" if device.type != "cpu" else ""))
    print("| --- | --- | ---: | ---: |" + (" ---: |" if device.type != "cpu" else ""))
    for plan in PLANS:
        line = f"| {plan.row} {plan.what} | {plan.trials} x {plan.epochs} | {t4_minutes(plan):.1f} | {table_minutes(plan)} |"
        if device.type != "cpu":
            rate = rates["hand-written objective" if plan.space is None else "middle of the space"]
            line += f" {measured_minutes(plan, rate):.1f} |"
        print(line)


if __name__ == "__main__":
    main()
