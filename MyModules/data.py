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

import gzip
import pickle
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import env
from .errors import DatasetError

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

# Sizes of the generated data in test mode and for --dataset synthetic.
TEST_TRAIN_SIZE = env.TEST_MODE_LIMITS.train_size
TEST_TEST_SIZE = env.TEST_MODE_LIMITS.test_size


@dataclass
class ImageSet:
    """One split: uint8 images ``(N, C, H, W)``, int64 labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


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
# Readers of the real on-disk formats
# --------------------------------------------------------------------------------------------

def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    # Files pickled by Python 2 have str keys after latin1 decoding; be lenient about bytes keys.
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in entry.items()}


def read_cifar(folder: Path, variant: str = "cifar10") -> tuple[ImageSet, ImageSet, list[str]]:
    """Read ``cifar-10-batches-py`` (variant ``cifar10``) or ``cifar-100-python`` (``cifar100``)."""
    folder = Path(folder)
    if variant == "cifar10":
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_files = [folder / "test_batch"]
        meta, label_key, names_key = folder / "batches.meta", "labels", "label_names"
    else:
        train_files, test_files = [folder / "train"], [folder / "test"]
        meta, label_key, names_key = folder / "meta", "fine_labels", "fine_label_names"

    def split(files: list[Path]) -> ImageSet:
        data, labels = [], []
        for path in files:
            entry = _unpickle(path)
            data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry[label_key])
        return ImageSet(torch.from_numpy(np.concatenate(data)), torch.tensor(labels, dtype=torch.int64))

    classes = [str(c) for c in _unpickle(meta)[names_key]]
    return split(train_files), split(test_files), classes


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_file(raw: Path, stem: str) -> Path:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(raw / stem)


def read_mnist(raw: Path) -> tuple[ImageSet, ImageSet]:
    """Read the four IDX files of MNIST or FashionMNIST from ``raw`` (plain or ``.gz``)."""
    raw = Path(raw)

    def split(prefix: str) -> ImageSet:
        images = _read_idx(_idx_file(raw, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_idx_file(raw, f"{prefix}-labels-idx1-ubyte"))
        return ImageSet(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))

    return split("train"), split("t10k")


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_image_folder(root: Path, image_size: int = 32, channels: int = 3) -> tuple[ImageSet, ImageSet, list[str]]:
    """Read ``root/train/<class>/*`` and ``root/test/<class>/*``; images are converted to
    ``channels``×``image_size``×``image_size`` uint8. Decoded tensors are cached in ``root``."""
    from PIL import Image

    root = Path(root)
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DatasetError(f"{root / part} does not exist: an image folder needs "
                               f"{root}/train/<class>/*.png and {root}/test/<class>/*.png")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"no class folders in {root / 'train'}: put images in {root}/train/<class>/")
    files = {part: sorted(p for p in (root / part).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
             for part in ("train", "test")}
    stamp = [(str(p.relative_to(root)), p.stat().st_mtime_ns) for part in files.values() for p in part]
    cache = root / f".mymodules-cache-{channels}x{image_size}.pt"
    if cache.exists():
        cached = torch.load(cache, weights_only=True)
        if cached["stamp"] == [list(s) for s in stamp]:
            return (ImageSet(cached["train_images"], cached["train_labels"]),
                    ImageSet(cached["test_images"], cached["test_labels"]), list(cached["classes"]))
    mode = "RGB" if channels == 3 else "L"
    index = {name: i for i, name in enumerate(classes)}

    def split(part: str) -> ImageSet:
        images, labels = [], []
        for path in files[part]:
            name = path.relative_to(root / part).parts[0]
            if name not in index:
                raise DatasetError(f"{path}: class folder {name!r} is not in {root / 'train'}")
            try:
                with Image.open(path) as img:
                    img = img.convert(mode).resize((image_size, image_size), Image.BILINEAR)
                    array = np.asarray(img, dtype=np.uint8).reshape(image_size, image_size, channels)
            except OSError as e:
                raise DatasetError(f"cannot read image {path}: {e}") from e
            images.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
            labels.append(index[name])
        if not images:
            raise DatasetError(f"no images found under {root / part}")
        return ImageSet(torch.stack(images), torch.tensor(labels, dtype=torch.int64))

    train, test = split("train"), split("test")
    tmp = cache.with_suffix(".tmp")
    torch.save({"stamp": stamp, "classes": classes, "train_images": train.images, "train_labels": train.labels,
                "test_images": test.images, "test_labels": test.labels}, tmp)
    tmp.replace(cache)
    return train, test, classes


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


def write_cifar(folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                classes: Sequence[str], variant: str = "cifar10") -> Path:
    """Write images in the CIFAR "python version" layout that :func:`read_cifar` (and torchvision) read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if variant == "cifar10" else "fine_labels"

    def dump(path: Path, images: np.ndarray, labels: np.ndarray, name: str) -> None:
        entry = {"batch_label": name, label_key: [int(x) for x in labels],
                 "data": images.reshape(len(images), -1), "filenames": [f"gen_{i:05d}.png" for i in range(len(images))]}
        if variant == "cifar100":
            entry["coarse_labels"] = [0] * len(labels)
        with open(path, "wb") as f:
            pickle.dump(entry, f, protocol=2)

    if variant == "cifar10":
        chunks = np.array_split(np.arange(len(train[1])), 5)
        for i, idx in enumerate(chunks, start=1):
            dump(folder / f"data_batch_{i}", train[0][idx], train[1][idx], f"training batch {i} of 5")
        dump(folder / "test_batch", *test, "testing batch 1 of 1")
        meta = {"label_names": list(classes), "num_cases_per_batch": len(chunks[0]), "num_vis": 3072}
        meta_path = folder / "batches.meta"
    else:
        dump(folder / "train", *train, "training batch 1 of 1")
        dump(folder / "test", *test, "testing batch 1 of 1")
        meta = {"fine_label_names": list(classes), "coarse_label_names": ["all"]}
        meta_path = folder / "meta"
    with open(meta_path, "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def write_idx(raw: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write grayscale images ``(N, H, W)`` and labels in the four MNIST IDX files (uncompressed)."""
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, array: np.ndarray) -> None:
        header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())

    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        dump(raw / f"{prefix}-images-idx3-ubyte", images)
        dump(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_image_folder(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                       classes: Sequence[str]) -> Path:
    """Write uint8 ``(N, 3, H, W)`` images as PNG files in ``root/{train,test}/<class>/``."""
    from PIL import Image

    root = Path(root)
    for part, (images, labels) in (("train", train), ("test", test)):
        for i, (img, k) in enumerate(zip(images, labels)):
            folder = root / part / classes[int(k)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0))).save(folder / f"{i:05d}.png")
    return root


def generate_test_data(name: str, root: Path, seed: int = 0,
                       train_size: int = TEST_TRAIN_SIZE, test_size: int = TEST_TEST_SIZE) -> Path:
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
    try:
        print(f"downloading {name} into {root} (once; later runs reuse it)")
        cls(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        raise DatasetError(
            f"could not download {name} ({type(e).__name__}: {e}). Download {ARCHIVES[name]} yourself "
            f"and put it in {root} (it is unpacked on the next run), or point --data-root / data_dir "
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


def load_dataset(
    name: str = "cifar10",
    data_dir: str | Path | None = None,
    *,
    image_size: int = 32,
    channels: int = 3,
    download: bool = True,
    test_mode: bool | None = None,
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from ``data_dir`` as a :class:`Dataset`.

    ``data_dir`` is the folder that holds the datasets (``env.setup().data_dir``; on Colab that is on
    Drive, so a download happens once). For ``imagefolder`` it is the tree's root. In test mode (the
    default follows ``COURSE_TEST_MODE``) and for ``synthetic``, generated data is written there in
    the dataset's own format first, then read back by the same code as real data.
    """
    name = name.lower().replace("-", "").replace("_", "")
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if test_mode is None:
        test_mode = env.test_mode()
    if data_dir is None:
        if name == "imagefolder":
            raise DatasetError("imagefolder needs data_dir (--data-root): the folder with train/ and test/")
        data_dir = env.data_folder(env.course_dir(), test_mode)
    root = Path(data_dir).expanduser()
    generated = test_mode or name == "synthetic"
    if name == "synthetic":
        root = root / "synthetic"

    if name in ("cifar10", "synthetic", "cifar100"):
        folder = root / ("cifar-100-python" if name == "cifar100" else "cifar-10-batches-py")
        marker = folder / ("meta" if name == "cifar100" else "batches.meta")
        if not marker.exists():
            if generated:
                generate_test_data(name, root)
            elif download:
                _download(name, root)
        if not marker.exists():
            raise DatasetError(f"{name} not found in {folder}; download it (download=True) or put "
                               f"{ARCHIVES[name]} in {root}")
        try:
            train, test, classes = read_cifar(folder, "cifar100" if name == "cifar100" else "cifar10")
        except (OSError, KeyError, pickle.UnpicklingError, ValueError, EOFError) as e:
            raise DatasetError(f"cannot read {folder} ({type(e).__name__}: {e}); delete the folder and "
                               "download it again") from e
    elif name in _MNIST_FOLDERS:
        raw = root / _MNIST_FOLDERS[name] / "raw"
        if not (raw / "t10k-labels-idx1-ubyte").exists() and not (raw / "t10k-labels-idx1-ubyte.gz").exists():
            if generated:
                generate_test_data(name, root)
            elif download:
                _download(name, root)
        try:
            train, test = read_mnist(raw)
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read {name} from {raw} ({e}); download it again or put "
                               f"{ARCHIVES[name]} in {raw}") from e
        classes = list(MNIST_CLASSES if name == "mnist" else FASHION_CLASSES)
    else:  # imagefolder
        if generated and not (root / "train").is_dir():
            generate_test_data(name, root)
        train, test, classes = read_image_folder(root, image_size, channels)

    if test_mode:  # real data found in test mode: keep test mode small anyway
        train = ImageSet(train.images[:TEST_TRAIN_SIZE], train.labels[:TEST_TRAIN_SIZE])
        test = ImageSet(test.images[:TEST_TEST_SIZE], test.labels[:TEST_TEST_SIZE])
    train = ImageSet(to_model_input(train.images, image_size, channels), train.labels)
    test = ImageSet(to_model_input(test.images, image_size, channels), test.labels)
    mean, std = channel_stats(train.images)
    return Dataset(name, train, test, list(classes), mean, std)
