"""Batches for training: the fast device-resident loader (default) and the standard DataLoader path.

The seed course used torchvision's per-image PIL transforms in a ``DataLoader`` with 2 workers; on
Colab's 2 vCPUs that caps training near 6k images/s whatever the GPU. :class:`DeviceLoader` instead
keeps the whole dataset as uint8 on the device (CIFAR-10 is 150 MB) and does shuffling, random crop
with zero padding, horizontal flip and normalisation on whole batches with tensor ops, the idea of
KellerJordan/cifar10-airbench. Its augmentation has the same distribution as
``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` + ``Normalize(mean, std)``.

Both paths yield ``(images, labels)`` already on the device: float ``(B, C, H, W)`` and int64 ``(B,)``.

Augmentation is decided here and only here, when the loaders are built (``make_loaders(augment=...)``):
the training loader's ``augment`` attribute says what it does, and nothing changes it afterwards
(``train.fit`` records it in the run and refuses a ``TrainConfig.augment`` that says otherwise).
``"auto"`` fits the data (:func:`resolve_augment`): ``"crop-flip"`` for natural photos (CIFAR), and
``"none"`` for digits (MNIST) and for image folders whose content is unknown. Measured on real
handwritten digits (benchmarks/RESULTS.md, ``bench_augment.py``, 10 epochs, 3 seeds): none 94.7 %,
crop 92.9 %, crop-flip 79.5 % (a mirrored 2 or 7 is another shape; a 4-pixel shift is an eighth of a
small digit). FashionMNIST gets ``"crop"`` (clothes survive a shift; not measured here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from .data import Dataset, ImageSet
from .env import prefers_channels_last
from .errors import ConfigError
from .seeding import epoch_seed

#: Training-set augmentations: what each name does to every training image.
AUGMENTS = {
    "none": (0, False),  # (zero padding of the random crop, random horizontal flip)
    "crop": (4, False),  # random shift by up to 4 pixels (zero padding, as RandomCrop(32, padding=4))
    "crop-flip": (4, True),  # the shift, then a left-right mirror with probability 0.5
}
#: What ``"auto"`` picks per dataset (see the module docstring); anything else gets ``AUTO_FALLBACK``.
AUTO_AUGMENT = {"cifar10": "crop-flip", "cifar100": "crop-flip", "synthetic": "crop-flip",
                "mnist": "none", "fashionmnist": "crop", "imagefolder": "none"}
AUTO_FALLBACK = "none"  # unknown content: change nothing the images show


def resolve_augment(augment: str | bool, dataset_name: str | None = None) -> str:
    """The augmentation to use: one of :data:`AUGMENTS`, ``"auto"`` chosen by ``dataset_name``.

    ``True`` / ``False`` are the older spellings of ``"crop-flip"`` / ``"none"``.
    """
    if augment is True:
        augment = "crop-flip"
    elif augment is False or augment is None:
        augment = "none"
    if augment == "auto":
        return AUTO_AUGMENT.get(dataset_name or "", AUTO_FALLBACK)
    if augment not in AUGMENTS:
        raise ConfigError(f"augment must be one of auto, {', '.join(AUGMENTS)}; got {augment!r}")
    return augment


def random_crop(batch: torch.Tensor, padding: int, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``batch`` (B, C, H, W) by ``padding`` and crop each image back at a random offset.

    Returns the crops and the offsets ``(B, 2)`` as (dy, dx), each uniform in ``0 .. 2*padding``
    (as ``torchvision.transforms.RandomCrop(size, padding)``: offset ``padding`` is the identity).
    """
    b, c, h, w = batch.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), device=batch.device, generator=generator)
    padded = torch.nn.functional.pad(batch, (padding, padding, padding, padding))  # zeros, (B, C, H+2p, W+2p)
    # Every (H, W) window of the padded images, as a view: (B, C, 2p+1, 2p+1, H, W). Picking one window
    # per image is a single gather, about twice as fast as gathering rows and then columns.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    index_b = torch.arange(b, device=batch.device)
    return windows[index_b, :, offsets[:, 0], offsets[:, 1]], offsets  # (B, C, H, W)


def random_flip(batch: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror each image left-right with probability ``p``; returns the batch and the flip mask (B,)."""
    mask = torch.rand(batch.shape[0], device=batch.device, generator=generator) < p
    return torch.where(mask[:, None, None, None], batch.flip(3), batch), mask


def normalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images to ``(x / 255 - mean) / std`` in ``dtype``; mean and std in [0, 1] units."""
    scale = torch.tensor([1 / (255 * s) for s in std], device=batch.device, dtype=dtype).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], device=batch.device, dtype=dtype).view(1, -1, 1, 1)
    return batch.to(dtype).mul_(scale).add_(shift)  # one pass over a fresh tensor, in place


class DeviceLoader:
    """Iterate over a uint8 :class:`~MyModules.data.ImageSet` kept on ``device``, batch by batch.

    Deterministic: the order and augmentation of epoch ``e`` depend only on ``(seed, e)``. ``fit``
    calls :meth:`set_epoch` before each epoch, which makes resumed runs repeat exactly; a hand-written
    loop that does not call it still gets a new order each pass (the epoch counts up by itself).
    """

    def __init__(self, images: ImageSet, batch_size: int, mean: Sequence[float], std: Sequence[float], *,
                 device: torch.device | str = "cpu", shuffle: bool = False, augment: str | bool = "none",
                 dataset_name: str | None = None, drop_last: bool = False, seed: int = 0,
                 channels_last: bool = False, dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dataset = images
        self.dataset_name = dataset_name
        self.images = images.images.to(self.device)  # uint8 (N, C, H, W)
        self.labels = images.labels.to(self.device)  # int64 (N,)
        self.batch_size, self.mean, self.std = batch_size, tuple(mean), tuple(std)
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, seed, 0
        self._epoch_was_set = False
        self.channels_last, self.dtype = channels_last, dtype
        self.shard = (0, 1)  # (rank, world_size): this process keeps rows rank::world_size of each batch
        self.augment = resolve_augment(augment, dataset_name)  # decided once: see the module docstring
        self._prepare_augment()

    def _prepare_augment(self) -> None:
        self.padding, self.flip = AUGMENTS[self.augment]
        self.windows = None
        if self.padding or self.flip:
            # Pre-pad once and keep a mirrored copy next to the originals, then view every (H, W) window:
            # (2N, C, 2p+1, 2p+1, H, W). One gather per batch then picks image, mirror and crop together
            # (zero padding as RandomCrop's; flipping before or after the crop gives the same distribution).
            # Costs (H+2p)(W+2p)/(HW) x 2 the memory of the training images: 3.1x for CIFAR (470 MB).
            p = self.padding
            padded = torch.nn.functional.pad(self.images, (p, p, p, p))  # (N, C, H+2p, W+2p)
            if self.flip:
                padded = torch.cat([padded, padded.flip(3)])  # (2N, ...): image i mirrored at N + i
            h, w = self.images.shape[-2:]
            self.windows = padded.unfold(2, h, 1).unfold(3, w, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._epoch_was_set = True

    def set_shard(self, rank: int, world_size: int) -> None:
        """Yield only rows ``rank::world_size`` of every batch (one process of several; distributed.py
        calls it on a copy, so the loader a caller built stays whole).

        Order and augmentation are drawn for the whole batch, as with one process, so the processes
        together see exactly the batches a single process would.
        """
        if self.batch_size < world_size:
            raise ConfigError(f"batch size {self.batch_size} is smaller than the {world_size} processes; "
                              f"use --batch-size {world_size} or more (it is the batch of all processes together)")
        self.shard = (rank, world_size)

    def __len__(self) -> int:
        n = len(self.labels)
        full, rest = divmod(n, self.batch_size)
        # A last batch with fewer images than processes would leave some of them none: drop it.
        return full if self.drop_last or rest < self.shard[1] else full + 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self._epoch_was_set and self.shuffle:
            self.epoch += 1  # no set_epoch since the last pass: move on, never repeat an order
        self._epoch_was_set = False
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.labels)
        order = (torch.randperm(n, device=self.device, generator=generator) if self.shuffle
                 else torch.arange(n, device=self.device))
        rank, world = self.shard
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            if self.windows is None:
                images = self.images[index[rank::world]]  # (B, C, H, W); B / world_size of them when sharded
            else:
                source = index
                if self.flip:
                    mirrored = torch.rand(len(index), device=self.device, generator=generator) < 0.5
                    source = index + n * mirrored
                offsets = torch.randint(0, 2 * self.padding + 1, (len(index), 2), device=self.device,
                                        generator=generator)
                source, offsets = source[rank::world], offsets[rank::world]
                images = self.windows[source, :, offsets[:, 0], offsets[:, 1]]  # (B, C, H, W)
            images = normalize(images, self.mean, self.std, self.dtype)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels[index[rank::world]]


class TransformDataset(TorchDataset):
    """The standard path: one uint8 image at a time through torchvision transforms (CPU workers)."""

    def __init__(self, images: ImageSet, transform=None):
        self.images, self.labels, self.transform = images.images, images.labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[i]


def standard_transforms(mean: Sequence[float], std: Sequence[float], augment: str | bool = "none",
                        size: tuple[int, int] = (32, 32)):
    """torchvision transforms equivalent to the DeviceLoader's augmentation ``augment``, for uint8 tensors."""
    from torchvision.transforms import v2

    padding, flip = AUGMENTS[resolve_augment(augment)]
    steps = [v2.RandomCrop(list(size), padding=padding)] if padding else []
    steps += [v2.RandomHorizontalFlip()] if flip else []
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class _DeviceIterable:
    """Wrap a DataLoader so it yields batches on ``device`` and forwards ``set_epoch`` to its seed."""

    def __init__(self, loader: DataLoader, device: torch.device, seed: int, channels_last: bool,
                 augment: str = "none", dataset_name: str | None = None, mean=(), std=()):
        self.loader, self.device, self.seed, self.channels_last = loader, device, seed, channels_last
        self.dataset = loader.dataset
        self.augment, self.dataset_name, self.mean, self.std = augment, dataset_name, mean, std

    def set_epoch(self, epoch: int) -> None:
        self.loader.generator.manual_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            images = images.to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels.to(self.device, non_blocking=True)


def fits_on_device(dataset: Dataset, device: torch.device, fraction: float = 0.5, padding: int = 4) -> bool:
    """True when the DeviceLoaders' tensors take at most ``fraction`` of the device's free memory."""
    if device.type != "cuda":
        return True  # host memory: the uint8 tensors are already there
    _, h, w = dataset.image_shape
    augmented = 2 * (h + 2 * padding) * (w + 2 * padding) / (h * w)  # padded + mirrored copy
    need = dataset.train.images.numel() * (1 + augmented) + dataset.test.images.numel()
    free, _total = torch.cuda.mem_get_info(device)
    return need <= fraction * free


def make_loaders(dataset: Dataset, batch_size: int = 128, device: torch.device | str = "cpu", *,
                 fast: bool = True, augment: str | bool = "auto", seed: int = 0, num_workers: int = 2,
                 channels_last: bool | None = None, test_batch_size: int | None = None):
    """``(train_loader, test_loader)`` for ``dataset``, yielding batches on ``device``.

    ``augment`` (training set only): ``"auto"`` (by dataset, see :func:`resolve_augment`), ``"none"``,
    ``"crop"`` or ``"crop-flip"``; the loader's ``augment`` attribute says what was chosen.
    ``fast=True`` (the default) uses :class:`DeviceLoader`; when the data does not fit on the device
    it says so and falls back to the standard ``DataLoader`` path (``fast=False``). Batches come in
    channels_last layout where that is faster (``env.prefers_channels_last``) unless told otherwise.
    """
    device = torch.device(device)
    if channels_last is None:
        channels_last = prefers_channels_last(device)
    test_batch_size = test_batch_size or max(batch_size, 500)
    augment = resolve_augment(augment, dataset.name)
    if fast and not fits_on_device(dataset, device):
        print(f"{dataset.name} does not fit in {device} memory next to the model: "
              "using the standard DataLoader path (slower)")
        fast = False
    if fast:
        train = DeviceLoader(dataset.train, batch_size, dataset.mean, dataset.std, device=device,
                             shuffle=True, augment=augment, dataset_name=dataset.name, seed=seed,
                             channels_last=channels_last)
        test = DeviceLoader(dataset.test, test_batch_size, dataset.mean, dataset.std, device=device,
                            dataset_name=dataset.name, channels_last=channels_last)
        return train, test
    generator = torch.Generator()
    generator.manual_seed(epoch_seed(seed, 0))
    pin = device.type == "cuda"
    size = tuple(dataset.image_shape[1:])
    train = DataLoader(TransformDataset(dataset.train, standard_transforms(dataset.mean, dataset.std, augment, size)),
                       batch_size=batch_size, shuffle=True, num_workers=num_workers, pin_memory=pin,
                       generator=generator, persistent_workers=num_workers > 0)
    test = DataLoader(TransformDataset(dataset.test, standard_transforms(dataset.mean, dataset.std, "none", size)),
                      batch_size=test_batch_size, num_workers=num_workers, pin_memory=pin)
    return (_DeviceIterable(train, device, seed, channels_last, augment, dataset.name, dataset.mean, dataset.std),
            _DeviceIterable(test, device, seed, channels_last, "none", dataset.name, dataset.mean, dataset.std))
