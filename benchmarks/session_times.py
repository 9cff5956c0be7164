"""Time budget of each session's training cells: measured here, scaled to a Colab T4 by FLOPs.

    python benchmarks/session_times.py            # measure on this machine's CPU, print the table
    python benchmarks/session_times.py --device cuda   # on a GPU: the figures are measured, not scaled

For every training cell of the notebooks (model, batch size, epochs as the notebook sets them) it
measures training images/s with ``speed.training_throughput`` (the code path ``fit`` uses) on
generated CIFAR-sized batches, counts the forward MACs per image with torchinfo, and prints:

* ``here img/s`` and ``here GFLOP/s`` (achieved: images/s x 6 x MACs; a training step costs about
  three forward passes, 2 FLOP per MAC);
* ``T4 s/epoch`` (estimate): 50,000 images x 6 x MACs / ``T4_FLOPS`` (8 TFLOP/s: 12 % of the T4's
  published 65 TFLOP/s fp16 Tensor Core peak, what small CIFAR convnets reach with fp16 autocast +
  GradScaler), but never below ``steps x T4_STEP_S`` (3 ms per step: a small net on a GPU is bound by
  Python and kernel launches, not by FLOPs), plus the test pass (10,000 images, forward only).

The scale factor "T4 / here" is printed too. None of the T4 figures is measured: measure them with
``--device cuda`` on a T4 and put them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from MyModules import models, speed
from MyModules.quant.networks import QuantNet, QuantNetConfig
from MyModules.viz import summary

T4_FLOPS = 8e12  # effective fp16 FLOP/s of a T4 on small convnets (12 % of the 65 TFLOP/s peak)
T4_STEP_S = 0.003  # floor per training step on a GPU: Python + kernel launches (small nets)
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10


@dataclass
class Cell:
    notebook: str
    what: str
    build: object  # () -> nn.Module
    batch_size: int
    epochs: int
    same_shape: object = None  # () -> nn.Module torchinfo can count (quantised convs count as 0 MACs)


CELLS = [
    Cell("01_01", "Net, batch 4, 2 epochs (CPU runtime)", lambda: models.build_model("net"), 4, 2),
    Cell("01_02", "Net, batch 128, 5 + 1 (fit_by_hand) + 10 epochs", lambda: models.build_model("net"), 128, 16),
    Cell("01_03", "MyWideNet + MyBNNet, 10 epochs each", lambda: models.WideNet(batch_norm=True), 128, 20),
    Cell("01_03", "VGG11-BN, 15 epochs (homework)", lambda: models.build_model("vgg11_bn"), 128, 15),
    Cell("01_04", "Net, 3 epochs x 2 loaders", lambda: models.build_model("net"), 128, 6),
    Cell("02_01", "WideNet-BN, 10 epochs x 2 runs", lambda: models.build_model("widenet"), 128, 20),
    Cell("04_01", "BinaryNet + float twin (16,32,64), 10 epochs each", lambda: QuantNet(QuantNetConfig(
        widths=(16, 32, 64))), 64, 20, lambda: QuantNet(QuantNetConfig(widths=(16, 32, 64), quantize=False))),
]


class Batches:
    """The same generated batch ``steps`` times (no loader cost: the course's loader is on the device)."""

    def __init__(self, batch_size: int, steps: int, device: torch.device):
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
        self.labels = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
        self.steps = steps

    def __len__(self):
        return self.steps

    def __iter__(self):
        return iter([(self.images, self.labels)] * self.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="about how long to time each model")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| notebook | training | MACs/img | here img/s | here GFLOP/s | T4/here | T4 s/epoch (est.) | T4 total (est.) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell in CELLS:
        macs = summary.model_summary((cell.same_shape or cell.build)(), (1, 3, 32, 32)).total_mult_adds
        probe = speed.training_throughput(cell.build(), Batches(cell.batch_size, 3, device), device, steps=3,
                                          warmup=1)
        steps = max(3, int(args.seconds * probe / cell.batch_size))
        ips = speed.training_throughput(cell.build(), Batches(cell.batch_size, steps, device), device,
                                        steps=steps, warmup=2)
        flops = ips * 6 * macs
        train_s = max(TRAIN_IMAGES * 6 * macs / T4_FLOPS, TRAIN_IMAGES / cell.batch_size * T4_STEP_S)
        test_s = TEST_IMAGES * 2 * macs / T4_FLOPS + TEST_IMAGES / 512 * T4_STEP_S
        epoch_s = train_s + test_s
        print(f"| {cell.notebook} | {cell.what} | {macs / 1e6:,.1f} M | {ips:,.0f} | {flops / 1e9:,.1f} | "
              f"{T4_FLOPS / flops:,.0f}x | {epoch_s:,.1f} | {epoch_s * cell.epochs / 60:,.1f} min |")


if __name__ == "__main__":
    main()
