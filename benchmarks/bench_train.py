"""Training throughput: the seed course's loop against the course's default path, on the same data.

    python benchmarks/bench_train.py                      # CPU here; generated data if CIFAR-10 is absent
    python benchmarks/bench_train.py --device cuda        # on a GPU (Colab T4, lab server, H100)
    python benchmarks/bench_train.py --device cuda --compile --models net vgg11_bn

Measured, for each model (tutorial Net, VGG11-BN), at the same batch size:

* seed   - torchvision ``CIFAR10`` + per-image PIL transforms (RandomCrop(32, 4), flip, ToTensor,
           Normalize) + ``DataLoader(num_workers=2)``, fp32, the tutorial's loop
* course - ``MyModules.loader.DeviceLoader`` (uint8 data on the device, batch-level augmentation)
           + ``MyModules.train.train_one_epoch`` (channels_last; mixed precision on CUDA)
* loader - the DeviceLoader alone: one 50,000-image epoch of shuffled, augmented, normalised batches

It prints images/s, seconds per 50,000-image epoch and the speed-up. Figures go to RESULTS.md with
the command that produced them. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import data, env  # noqa: E402
from MyModules.loader import DeviceLoader  # noqa: E402
from MyModules.models import build_model  # noqa: E402
from MyModules.speed import loader_epoch_seconds, synchronize, training_throughput  # noqa: E402

EPOCH_IMAGES = 50_000


def cifar_root(data_dir: Path | None, tmp: Path) -> tuple[Path, str]:
    """A folder holding ``cifar-10-batches-py``: the real one if present, else 50,000 generated images."""
    if data_dir is not None and (data_dir / "cifar-10-batches-py" / "batches.meta").exists():
        return data_dir, "CIFAR-10"
    print("CIFAR-10 not found: generating 50,000 + 10,000 images in its format (about 20 s)")
    data.generate_test_data("cifar10", tmp, train_size=EPOCH_IMAGES, test_size=10_000)
    return tmp, "generated (CIFAR-10 format)"


def seed_loader(root: Path, batch_size: int, workers: int):
    """The seed course's input pipeline, as in the official tutorial (plus its augmentation)."""
    import torchvision
    import torchvision.datasets.cifar
    import torchvision.transforms as T

    if not (root / "cifar-10-python.tar.gz").exists():
        # Generated files cannot pass torchvision's MD5 check of the real archive's files.
        torchvision.datasets.cifar.check_integrity = lambda *args: True
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    dataset = torchvision.datasets.CIFAR10(str(root), train=True, download=False, transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       drop_last=True)


def time_seed(model: nn.Module, loader, device: torch.device, steps: int, warmup: int) -> float:
    """Images/s of the tutorial loop (fp32, batches copied from host memory each step)."""
    model.to(device).train()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    it = iter(loader)
    start, images = None, 0
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            start, images = time.perf_counter(), 0
        try:
            inputs, labels = next(it)
        except StopIteration:  # a new epoch, as the real loop would start
            it = iter(loader)
            inputs, labels = next(it)
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # the tutorial reads the loss every step (running_loss += loss.item())
        images += labels.shape[0]
    synchronize(device)
    return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--models", nargs="+", default=["net", "vgg11_bn"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed loop")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement "
                        "(default: 390 on GPU = one epoch; on CPU 100, 10 for VGG)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats; the median is reported")
    parser.add_argument("--compile", action="store_true", help="torch.compile the course path")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding cifar-10-batches-py")
    args = parser.parse_args(argv)

    device = env.pick_device(args.device)
    print(f"device: {env.describe_device(device)} | torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root, source = cifar_root(args.data_dir, Path(tmp))
        train, _test, _classes = data.read_cifar(root / "cifar-10-batches-py")
        mean, std = data.channel_stats(train.images)
        fast = DeviceLoader(train, args.batch_size, mean, std, device=device, shuffle=True, augment=True,
                            drop_last=True, channels_last=env.prefers_channels_last(device))
        seed = seed_loader(root, args.batch_size, args.workers)
        print(f"data: {source}, {len(train)} training images, batch size {args.batch_size}")

        rows = []
        loader_runs = [EPOCH_IMAGES / loader_epoch_seconds(fast, device) for _ in range(args.repeats)]
        rows.append(("loader alone", "-", loader_runs, None))
        for name in args.models:
            default_steps = 390 if device.type == "cuda" else (10 if name.startswith("vgg") else 100)
            steps = args.steps or default_steps
            seed_runs, course_runs = [], []
            for _ in range(args.repeats):  # interleaved, so a noisy neighbour hits both paths alike
                torch.manual_seed(0)
                seed_runs.append(time_seed(build_model(name), seed, device, steps, args.warmup))
                torch.manual_seed(0)
                course_runs.append(training_throughput(build_model(name), fast, device, steps=steps,
                                                       warmup=args.warmup, compile_model=args.compile))
            ratio = statistics.median(course_runs) / statistics.median(seed_runs)
            rows.append(("seed loop", name, seed_runs, None))
            rows.append(("course path", name, course_runs, ratio))

    print()
    print(f"median of {args.repeats} interleaved repeats (range in brackets)")
    print("| path | model | images/s | s per 50k-image epoch | vs seed loop |")
    print("| --- | --- | ---: | ---: | ---: |")
    for path, model, runs, ratio in rows:
        ips = statistics.median(runs)
        spread = f" [{min(runs):,.0f}-{max(runs):,.0f}]" if len(runs) > 1 else ""
        print(f"| {path} | {model} | {ips:,.0f}{spread} | {EPOCH_IMAGES / ips:.3f} | "
              f"{f'{ratio:.1f}x' if ratio else ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
