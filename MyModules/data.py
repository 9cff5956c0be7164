"""Datasets as whole uint8 tensors, with their class names.

Every dataset of the course ends up the same shape: ``images`` uint8 ``(N, C, H, W)`` (3×32×32 by
default, whatever the source), ``labels`` int64 ``(N,)`` and ``classes`` (the names, index = label).
Keeping the raw bytes makes CIFAR-10 150 MB, small enough to live on the GPU (see ``loader.py``).

Sources, all read from their real on-disk formats by the readers below:

* CIFAR-10 / CIFAR-100: the "python version" pickle batches (``cifar-10-batches-py/``, ``cifar-100-python/``);
* MNIST / FashionMNIST: the IDX files that torchvision downloads (``MNIST/raw/``, ``FashionMNIST/raw/``);
* any ImageFolder tree ``root/train/<class>/*`` and ``root/test/<class>/*`` (any size, any mode).

Downloads go through torchvision (which checks the archive's MD5) into the data folder, so on Colab
they land on Drive once and are reused. In test mode (``COURSE_TEST_MODE=1``) and for the
``synthetic`` dataset, small learnable images are *generated and written in the same format* first,
so the same reading code runs in the tests as for real data.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import env
from .errors import DatasetError
from .formats import (
    ImageSet,
    read_cifar,
    read_image_folder,
    read_mnist,
    write_cifar,
    write_idx,
    write_image_folder,
)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
MNIST_CLASSES = tuple(f"{i} - {w}" for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS = ("cifar10", "cifar100", "mnist", "fashionmnist", "imagefolder", "synthetic")

# Where each downloadable archive comes from, for the "put it there yourself" message.
ARCHIVES = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/ (4 files *-ubyte.gz)",
    "fashionmnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ (4 files *-ubyte.gz)",
}

# Sizes of the generated data: in test mode env.TestModeLimits.train_size / test_size; for
# --dataset synthetic outside test mode (the README's offline check): 10 epochs are 790 steps, so the
# default recipe is judged after as many steps as a real run takes to leave chance (RESULTS.md).
SYNTHETIC_SIZES = (10_000, 2_000)


@dataclass
class Dataset:
    """A train/test pair with everything that must travel with it."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, ...] = field(default=())  # per channel, in [0, 1], from the training split
    std: tuple[float, ...] = field(default=())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # (C, H, W)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train)}, test={len(self.test)}, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes})")


# --------------------------------------------------------------------------------------------
# Generated data (tests, test mode, --dataset synthetic): learnable, written in the real formats
# --------------------------------------------------------------------------------------------

# One colour per class (RGB in [0, 1]); shapes cycle through five kinds, so class k and k+5 share
# a shape but not a colour, and classes differ visibly.
_PALETTE = np.array([
    [0.90, 0.15, 0.15], [0.15, 0.75, 0.20], [0.20, 0.35, 0.95], [0.95, 0.85, 0.10], [0.85, 0.20, 0.85],
    [0.10, 0.85, 0.85], [0.95, 0.55, 0.10], [0.55, 0.30, 0.10], [0.95, 0.95, 0.95], [0.45, 0.45, 0.45],
])


def make_synthetic(n: int, num_classes: int = 10, image_size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated RGB images ``(n, 3, S, S)`` uint8 and balanced labels ``(n,)``.

    Class ``k`` is a shape (square, disc, horizontal bar, vertical bar, cross; ``k % 5``) in a colour
    of its own, at a random place and size on a noisy background: easy to tell apart, yet noisy
    enough that a model needs a few hundred steps to get most of them right.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    images = np.empty((n, 3, s, s), dtype=np.uint8)
    for i, k in enumerate(labels):
        colour = _PALETTE[k % len(_PALETTE)] * (1 - 0.3 * (k // len(_PALETTE) % 2))
        cy, cx = rng.uniform(0.3 * s, 0.7 * s, size=2)
        r = rng.uniform(0.2 * s, 0.32 * s)
        shape = k % 5
        if shape == 0:
            mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        elif shape == 1:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        elif shape == 2:
            mask = (np.abs(yy - cy) < r / 3) & (np.abs(xx - cx) < 1.5 * r)
        elif shape == 3:
            mask = (np.abs(xx - cx) < r / 3) & (np.abs(yy - cy) < 1.5 * r)
        else:
            mask = ((np.abs(yy - cy) < r / 4) | (np.abs(xx - cx) < r / 4)) & (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        background = rng.uniform(0.05, 0.35) + rng.uniform(-0.05, 0.05, size=(3, 1, 1))  # greyish
        img = np.where(mask[None], colour[:, None, None], background)
        img = img + rng.normal(0.0, 0.12, size=img.shape)
        images[i] = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def generate_test_data(name: str, root: Path, seed: int = 0, *, train_size: int, test_size: int) -> Path:
    """Write generated data for dataset ``name`` under ``root`` in that dataset's own layout.

    The files are written into a temporary folder and moved into place, so several processes
    starting at once (parallel workers, notebooks) never read a half-written dataset.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".generating-", dir=root))
    try:
        written = _generate_into(name, tmp, seed, train_size, test_size)
        for entry in tmp.iterdir():
            try:
                entry.rename(root / entry.name)  # atomic; fails if another process was first
            except OSError:
                pass
        return root / written.relative_to(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _generate_into(name: str, root: Path, seed: int, train_size: int, test_size: int) -> Path:
    num_classes = 100 if name == "cifar100" else 10
    train = make_synthetic(train_size, num_classes, seed=seed)
    test = make_synthetic(test_size, num_classes, seed=seed + 1)
    if name in ("cifar10", "synthetic"):
        return write_cifar(root / "cifar-10-batches-py", train, test, CIFAR10_CLASSES)
    if name == "cifar100":
        return write_cifar(root / "cifar-100-python", train, test, [f"class_{i:02d}" for i in range(100)], "cifar100")
    if name in ("mnist", "fashionmnist"):
        gray = [(imgs.mean(axis=1).astype(np.uint8)[:, 2:30, 2:30], labels) for imgs, labels in (train, test)]
        return write_idx(root / _MNIST_FOLDERS[name] / "raw", *gray)
    if name == "imagefolder":
        return write_image_folder(root, train, test, CIFAR10_CLASSES)
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


# --------------------------------------------------------------------------------------------
# Loading: download if needed, read, convert to the model's input
# --------------------------------------------------------------------------------------------

_MNIST_FOLDERS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST"}


def _download(name: str, root: Path) -> None:
    """Download with torchvision (MD5-checked); on failure one message says where to put the archive."""
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "mnist": tvd.MNIST,
           "fashionmnist": tvd.FashionMNIST}[name]
    # Where torchvision looks for the archive (CIFAR) or the .gz files (MNIST) before downloading.
    target = root / _MNIST_FOLDERS[name] / "raw" if name in _MNIST_FOLDERS else root
    try:
        print(f"downloading {name} into {root} (once; later runs reuse it)")
        cls(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        raise DatasetError(
            f"could not download {name} ({type(e).__name__}: {e}). Download {ARCHIVES[name]} yourself "
            f"and put it in {target} (it is unpacked on the next run), or point --data-root / data_dir "
            f"at a folder that already holds it") from e


def to_model_input(images: torch.Tensor, image_size: int = 32, channels: int = 3) -> torch.Tensor:
    """Convert uint8 ``(N, C, H, W)`` images to ``channels``×``image_size``×``image_size`` uint8."""
    if images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
    if tuple(images.shape[-2:]) != (image_size, image_size):
        resized = [F.interpolate(chunk.float(), size=(image_size, image_size), mode="bilinear",
                                 antialias=True, align_corners=False)
                   for chunk in images.split(4096)]
        images = torch.cat(resized).round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units."""
    x = images.float().div_(255).transpose(0, 1).reshape(images.shape[1], -1)  # (C, N*H*W)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


def _load_cifar(name: str, root: Path, generated: bool, download: bool,
                sizes: tuple[int, int]) -> tuple[ImageSet, ImageSet, list[str]]:
    variant = "cifar100" if name == "cifar100" else "cifar10"
    folder = root / ("cifar-100-python" if variant == "cifar100" else "cifar-10-batches-py")
    if not folder.exists():
        if generated:
            generate_test_data(name, root, train_size=sizes[0], test_size=sizes[1])
        elif download:
            _download(name, root)
    if not folder.exists():
        raise DatasetError(f"{name} not found in {folder}; download it (download=True) or put "
                           f"{ARCHIVES[name]} in {root}")
    return read_cifar(folder, variant)


def _load_mnist(name: str, root: Path, generated: bool, download: bool,
                sizes: tuple[int, int]) -> tuple[ImageSet, ImageSet, list[str]]:
    raw = root / _MNIST_FOLDERS[name] / "raw"
    if not any((raw / f"t10k-labels-idx1-ubyte{gz}").exists() for gz in ("", ".gz")):
        if generated:
            generate_test_data(name, root, train_size=sizes[0], test_size=sizes[1])
        elif download:
            _download(name, root)
    train, test = read_mnist(raw)
    return train, test, list(MNIST_CLASSES if name == "mnist" else FASHION_CLASSES)


def _normalise_name(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def load_dataset(
    name: str = "cifar10",
    data_dir: str | Path | None = None,
    *,
    image_size: int = 32,
    channels: int = 3,
    download: bool = True,
    test_mode: bool | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from ``data_dir`` as a :class:`Dataset`.

    ``data_dir`` is the folder that holds the datasets (``env.setup().data_dir``; on Colab that is on
    Drive, so a download happens once). For ``imagefolder`` it is the tree's root, which is only read:
    its decoded images are cached in ``cache_dir`` (default: the course folder's ``cache/``) and read
    from there while no image file changes (benchmarks/bench_drive.py measures both on the emulated Drive).
    In test mode (the default follows ``COURSE_TEST_MODE``) and for ``synthetic``, generated data is
    written there in the dataset's own format first, then read back by the same code as real data.
    """
    name = _normalise_name(name)
    limits = env.test_limits(test_mode)  # None outside test mode
    if data_dir is None:
        if name == "imagefolder":
            raise DatasetError("imagefolder needs data_dir (--data-root): the folder with train/ and test/")
        data_dir = env.data_folder(env.course_dir(), limits is not None)
    root = Path(data_dir).expanduser()
    env.ensure_drive(root)  # a dead or unmounted Drive: mount it again, or say so
    generated = limits is not None or name == "synthetic"
    sizes = SYNTHETIC_SIZES if limits is None else (limits.train_size, limits.test_size)  # of generated data
    if name in ("cifar10", "cifar100"):
        train, test, classes = _load_cifar(name, root, generated, download, sizes)
    elif name == "synthetic":  # outside test mode the larger offline check, in a folder of its own
        folder = root / (f"synthetic-{sizes[0]}" if limits is None else "synthetic")
        train, test, classes = _load_cifar(name, folder, True, False, sizes)
    elif name in _MNIST_FOLDERS:
        train, test, classes = _load_mnist(name, root, generated, download, sizes)
    else:  # imagefolder
        if generated and (not root.exists() or not any(root.iterdir())):  # never into a folder with files
            generate_test_data(name, root, train_size=sizes[0], test_size=sizes[1])
        if cache_dir is None:  # decode the files once; later loads read one file (on Drive: no per-file downloads)
            cache_dir = env.course_dir() / "cache"
        train, test, classes = read_image_folder(root, image_size, channels, cache_dir=Path(cache_dir))
    if limits is not None:  # real data found in test mode: keep test mode small anyway
        train = ImageSet(train.images[:limits.train_size], train.labels[:limits.train_size])
        test = ImageSet(test.images[:limits.test_size], test.labels[:limits.test_size])
    train = ImageSet(to_model_input(train.images, image_size, channels), train.labels)
    test = ImageSet(to_model_input(test.images, image_size, channels), test.labels)
    mean, std = channel_stats(train.images)
    return Dataset(name, train, test, list(classes), mean, std)
