"""What the course costs on Google Drive: checkpoint sizes, and reading an image folder from Drive.

    python benchmarks/bench_drive.py            # sizes, then image-folder reads on the emulated Drive
    python benchmarks/bench_drive.py --images 5000 --repeats 3

1. The bytes a run writes: one checkpoint (model + SGD momentum + RNG and history, what ``fit`` saves
   after every epoch) per model. A run keeps two slots (``checkpoint-a.pt``/``-b.pt``).
2. Reading an ``imagefolder`` dataset that lies on Drive: file by file (decode every image each time a
   notebook loads it) against the course's cache (one file of decoded images, rebuilt only when an image
   changes). The Drive is the tests' emulated one (``tests/support/drivefs.py``: a real FUSE mount, needs
   root and /dev/fuse), so every file operation makes a round trip through a FUSE daemon as on Colab;
   Colab's own client adds network latency for files not yet in its local cache, so real Drive is
   slower per file than this, never faster.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import data, models, train  # noqa: E402
from MyModules.formats import read_image_folder  # noqa: E402


def checkpoint_bytes(name: str) -> int:
    """Bytes of the checkpoint ``fit`` writes for model ``name`` after an epoch (CIFAR-10, SGD)."""
    model = models.build_model(name)
    config = train.TrainConfig()
    optimizer = train.make_optimizer(model, config)
    model(torch.zeros(2, 3, 32, 32)).sum().backward()
    optimizer.step()  # creates the momentum buffers, as after the first step of a run
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1,
             "rng": {"torch": torch.get_rng_state()}, "history": [{}] * 15}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def mounted_drive(tmp: Path):
    """Start the emulated Drive client over ``tmp/cache``; returns (process, mount point)."""
    cache, mount = tmp / "cache", tmp / "mnt"
    (cache / "MyDrive").mkdir(parents=True)
    mount.mkdir()
    client = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "drivefs.py"), str(cache),
                               str(mount)])
    for _ in range(200):
        if (mount / "MyDrive").is_dir():
            return client, mount
        time.sleep(0.05)
    raise SystemExit("the emulated Drive did not mount (root and /dev/fuse needed)")


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images of the folder (test: a fifth)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print("checkpoint of one epoch (fit's slot; a run keeps two):")
    for name in ("net", "widenet", "vgg11_bn"):
        size = checkpoint_bytes(name)
        print(f"  {name:9s} {size / 2**20:7.2f} MiB  ({models.count_parameters(models.build_model(name)):,} parameters)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        local = tmp / "local-images"
        data.generate_test_data("imagefolder", local, train_size=args.images, test_size=args.images // 5)
        client, mount = mounted_drive(tmp)
        try:
            on_drive = mount / "MyDrive" / "images"
            shutil.copytree(local, on_drive)
            files = sum(1 for _ in on_drive.rglob("*.png"))
            cache = mount / "MyDrive" / "pytorch-course" / "cache"
            file_by_file = timed(lambda: read_image_folder(on_drive), args.repeats)
            first = timed(lambda: (shutil.rmtree(cache, ignore_errors=True), read_image_folder(on_drive, cache_dir=cache)),
                          1)
            cached = timed(lambda: read_image_folder(on_drive, cache_dir=cache), args.repeats)
            local_time = timed(lambda: read_image_folder(local), args.repeats)
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
            client.kill()
    print(f"\nreading an image folder of {files:,} PNG files (best of {args.repeats}):")
    print(f"  local disk, file by file:           {local_time:6.2f} s")
    print(f"  emulated Drive, file by file:       {file_by_file:6.2f} s  (every load of the notebook)")
    print(f"  emulated Drive, first load + cache: {first:6.2f} s  (once)")
    print(f"  emulated Drive, from the cache:     {cached:6.2f} s  (every later load: {file_by_file / cached:.1f}x faster)")


if __name__ == "__main__":
    main()
