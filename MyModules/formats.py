"""The on-disk formats of the course's datasets: readers (checked) and writers (for generated data).

* CIFAR-10 / CIFAR-100 "python version": pickled batches (``cifar-10-batches-py/``, ``cifar-100-python/``);
* MNIST / FashionMNIST: IDX files (``train-images-idx3-ubyte`` ...), plain or gzipped;
* ImageFolder trees ``root/train/<class>/*`` and ``root/test/<class>/*`` (any size, any mode).

Readers check what they read and raise :class:`~MyModules.errors.DatasetError` naming the file and
what is wrong (a missing batch, a truncated IDX file, label and image counts that differ, an empty
class folder, a file that is not an image). They never write into the data folder: the decoded
ImageFolder cache goes to a ``cache_dir`` of the caller's (the course folder), never into the tree.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import atomic
from .errors import DatasetError

CIFAR_IMAGE_BYTES = 3 * 32 * 32
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_IMAGE_PIXELS = 64_000_000  # larger images are refused as likely decompression bombs (8000 x 8000)


@dataclass
class ImageSet:
    """One split: uint8 images ``(N, C, H, W)``, int64 labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------

def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    # Files pickled by Python 2 have str keys after latin1 decoding; be lenient about bytes keys.
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in entry.items()}


def cifar_files(folder: Path, variant: str = "cifar10") -> tuple[list[Path], list[Path], Path, str, str]:
    """(train batches, test batches, meta file, label key, class-name key) of a CIFAR folder."""
    folder = Path(folder)
    if variant == "cifar10":
        return ([folder / f"data_batch_{i}" for i in range(1, 6)], [folder / "test_batch"],
                folder / "batches.meta", "labels", "label_names")
    return [folder / "train"], [folder / "test"], folder / "meta", "fine_labels", "fine_label_names"


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, list[int]]:
    try:
        entry = _unpickle(path)
        data, labels = np.asarray(entry["data"], dtype=np.uint8), list(entry[label_key])
    except (OSError, KeyError, pickle.UnpicklingError, ValueError, EOFError, TypeError) as e:
        raise DatasetError(f"cannot read {path} ({type(e).__name__}: {e}); delete {path.parent} and "
                           "download the dataset again") from e
    if data.size != len(labels) * CIFAR_IMAGE_BYTES:
        raise DatasetError(f"{path} holds {data.size} bytes of images for {len(labels)} labels "
                           f"({CIFAR_IMAGE_BYTES} bytes each expected); delete {path.parent} and download it again")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(folder: Path, variant: str = "cifar10") -> tuple[ImageSet, ImageSet, list[str]]:
    """Read ``cifar-10-batches-py`` (variant ``cifar10``) or ``cifar-100-python`` (``cifar100``)."""
    train_files, test_files, meta, label_key, names_key = cifar_files(folder, variant)
    missing = [p.name for p in (*train_files, *test_files, meta) if not p.is_file()]
    if missing:
        raise DatasetError(f"{folder} is incomplete: {', '.join(missing)} missing; delete the folder and download "
                           "the dataset again (or put the whole archive there)")

    def split(files: list[Path]) -> ImageSet:
        batches = [_cifar_batch(path, label_key) for path in files]
        images = np.concatenate([b[0] for b in batches])
        labels = torch.tensor([x for b in batches for x in b[1]], dtype=torch.int64)
        return ImageSet(torch.from_numpy(images), labels)

    try:
        classes = [str(c) for c in _unpickle(meta)[names_key]]
    except (OSError, KeyError, pickle.UnpicklingError, ValueError, EOFError) as e:
        raise DatasetError(f"cannot read {meta} ({type(e).__name__}); delete {folder} and download it again") from e
    return split(train_files), split(test_files), classes


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
        atomic.write_bytes(path, pickle.dumps(entry, protocol=2))

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
    atomic.write_bytes(meta_path, pickle.dumps(meta, protocol=2))
    return folder


# --------------------------------------------------------------------------------------------
# MNIST IDX
# --------------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes (plain or ``.gz``), checked against the size its header gives."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read {path} ({type(e).__name__}: {e}); download it again") from e
    if len(raw) < 4:
        raise DatasetError(f"{path} is truncated ({len(raw)} bytes): download it again")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if len(raw) != expected:
        raise DatasetError(f"{path} has {len(raw)} bytes but its header promises {expected} ({'x'.join(map(str, shape))}); "
                           "it is truncated or damaged: download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_file(raw: Path, stem: str) -> Path:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetError(f"{raw / stem} (or {stem}.gz) is missing: put the four MNIST files in {raw}")


def read_mnist(raw: Path) -> tuple[ImageSet, ImageSet]:
    """Read the four IDX files of MNIST or FashionMNIST from ``raw`` (plain or ``.gz``)."""
    raw = Path(raw)

    def split(prefix: str) -> ImageSet:
        images_path = _idx_file(raw, f"{prefix}-images-idx3-ubyte")
        labels_path = _idx_file(raw, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetError(f"{images_path} / {labels_path}: expected (N, H, W) images and (N,) labels, "
                               f"got {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise DatasetError(f"{images_path.name} holds {len(images)} images but {labels_path.name} "
                               f"{len(labels)} labels; download both again")
        return ImageSet(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))

    return split("train"), split("t10k")


def write_idx(raw: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write grayscale images ``(N, H, W)`` and labels in the four MNIST IDX files (uncompressed)."""
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, array: np.ndarray) -> None:
        header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        atomic.write_bytes(path, header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())

    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        dump(raw / f"{prefix}-images-idx3-ubyte", images)
        dump(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


# --------------------------------------------------------------------------------------------
# ImageFolder
# --------------------------------------------------------------------------------------------

def decode_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One image file as uint8 ``(size, size, channels)``; 16-bit images are scaled, not clipped."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise DatasetError(f"{path} is {img.width}x{img.height} pixels, too large to be a training "
                                       "image (a decompression bomb?); remove it or make it smaller")
                img = _to_8bit(img)
                img = img.convert("RGB" if channels == 3 else "L").resize((image_size, image_size), Image.BILINEAR)
                return np.asarray(img, dtype=np.uint8).reshape(image_size, image_size, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DatasetError(f"{path} is too large to decode safely (a decompression bomb?): {e}; remove it") from e
    except (OSError, ValueError, SyntaxError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise DatasetError(f"{path} is not a readable image ({type(e).__name__}: {e}); remove it or replace it") from e


def _to_8bit(img):
    """16- and 32-bit grayscale images scaled into 0..255 (PIL's convert would clip at 255)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(img, dtype=np.uint16).astype(np.float32) / 257.0
        return Image.fromarray(np.round(array).astype(np.uint8), mode="L")
    if img.mode == "I":
        array = np.asarray(img, dtype=np.int64)
        top = 65535 if array.max(initial=0) > 255 else 255
        return Image.fromarray(np.round(np.clip(array, 0, top) * (255 / top)).astype(np.uint8), mode="L")
    return img


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def image_folder_classes(root: Path) -> list[str]:
    """The class names of an ImageFolder tree: sub-folders of ``root/train`` that hold images."""
    root = Path(root)
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DatasetError(f"{root / part} does not exist: an image folder needs "
                               f"{root}/train/<class>/*.png and {root}/test/<class>/*.png")
    folders = sorted(p for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    empty = [p.name for p in folders if not _image_files(p)]
    if empty:
        raise DatasetError(f"class folder(s) {', '.join(empty)} in {root / 'train'} hold no images; put images in "
                           "them or remove them (an empty folder is not a class)")
    if len(folders) < 2:
        raise DatasetError(f"{root / 'train'} has {len(folders)} class folder(s); classification needs at least 2 "
                           f"(one sub-folder per class: {root}/train/<class>/*.png)")
    return [p.name for p in folders]


def _cache_path(root: Path, cache_dir: Path, image_size: int, channels: int) -> Path:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"imagefolder-{root.name}-{key}-{channels}x{image_size}.pt"


def read_image_folder(root: Path, image_size: int = 32, channels: int = 3, *,
                      cache_dir: Path | None = None) -> tuple[ImageSet, ImageSet, list[str]]:
    """Read ``root/train/<class>/*`` and ``root/test/<class>/*`` as ``channels``×``image_size``² uint8.

    With ``cache_dir`` (the course folder's ``cache/``), the decoded tensors are kept there and reused
    while no image file changes; nothing is ever written into ``root``.
    """
    root = Path(root)
    classes = image_folder_classes(root)
    files = {part: _image_files(root / part) for part in ("train", "test")}
    stamp = [[str(p.relative_to(root)), p.stat().st_mtime_ns] for part in files.values() for p in part]
    cache = _cache_path(root, cache_dir, image_size, channels) if cache_dir is not None else None
    if cache is not None and cache.exists():
        try:
            cached = torch.load(cache, weights_only=True)
            if cached["stamp"] == stamp:
                return (ImageSet(cached["train_images"], cached["train_labels"]),
                        ImageSet(cached["test_images"], cached["test_labels"]), list(cached["classes"]))
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            pass
    index = {name: i for i, name in enumerate(classes)}

    def split(part: str) -> ImageSet:
        images, labels = [], []
        for path in files[part]:
            name = path.relative_to(root / part).parts[0]
            if name not in index:
                raise DatasetError(f"{path}: class folder {name!r} is not in {root / 'train'}")
            images.append(torch.from_numpy(decode_image(path, image_size, channels).copy()).permute(2, 0, 1))
            labels.append(index[name])
        if not images:
            raise DatasetError(f"no images found under {root / part}")
        return ImageSet(torch.stack(images), torch.tensor(labels, dtype=torch.int64))

    train, test = split("train"), split("test")
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_open(cache, "wb") as f:
                torch.save({"stamp": stamp, "classes": classes, "train_images": train.images,
                            "train_labels": train.labels, "test_images": test.images, "test_labels": test.labels}, f)
        except OSError as e:  # a cache that cannot be written only costs time next run
            warnings.warn(f"could not cache the decoded images in {cache.parent}: {e}", stacklevel=2)
    return train, test, classes


def write_image_folder(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                       classes: Sequence[str]) -> Path:
    """Write uint8 ``(N, C, H, W)`` images as PNG files in ``root/{train,test}/<class>/``."""
    from PIL import Image

    root = Path(root)
    for part, (images, labels) in (("train", train), ("test", test)):
        for i, (img, k) in enumerate(zip(images, labels)):
            folder = root / part / classes[int(k)]
            folder.mkdir(parents=True, exist_ok=True)
            array = np.ascontiguousarray(img.transpose(1, 2, 0))
            # Plain writes: generate_test_data writes into a temporary folder and moves it into place whole.
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{i:05d}.png")
    return root
