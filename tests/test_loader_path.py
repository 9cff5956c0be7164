"""The loaders' own augmentation path (DeviceLoader and the standard DataLoader path via make_loaders).

``tests/test_loader.py`` checks the stand-alone ``random_crop``/``random_flip`` helpers; the loader
picks image, mirror and crop in its own single gather, so here its *outputs* are taken apart: each
training image must be exactly a zero-padded crop (or the mirror of one) of its own source image,
and the crops' offsets and mirrors must have RandomCrop(32, padding)'s and RandomHorizontalFlip's
distribution: offsets uniform over 0..2p on each axis, independent of each other and of the mirror.

The source images make every crop readable: channel 0 holds 1 + row, channel 1 holds 1 + column
(rows and columns differ, so a crop that mixes up the axes is visible) and channel 2 names the image.
"""

from __future__ import annotations

import math

import pytest
import torch

from MyModules import data
from MyModules.loader import DeviceLoader, make_loaders

PADDING = 4
SIZE = 32
# Upper 0.1 % points of the chi-square distribution (scipy.stats.chi2.ppf(0.999, df)).
CHI2_999 = {8: 26.12, 161: 222.19}
PIXELS = ((0.0,) * 3, (1 / 255,) * 3)  # mean 0, std 1/255: normalisation gives back the pixel values


def readable_images(n: int) -> torch.Tensor:
    """(n, 3, 32, 32) uint8: channel 0 = 1 + y, channel 1 = 1 + x, channel 2 = 50 + (i mod 200)."""
    ys = torch.arange(SIZE).view(SIZE, 1).expand(SIZE, SIZE) + 1
    xs = torch.arange(SIZE).view(1, SIZE).expand(SIZE, SIZE) + 1
    images = torch.stack([ys, xs, torch.zeros(SIZE, SIZE, dtype=torch.int64)]).expand(n, 3, SIZE, SIZE).clone()
    images[:, 2] = (50 + torch.arange(n) % 200).view(n, 1, 1)
    return images.to(torch.uint8)


def read_crops(batches, sources: torch.Tensor, padding: int = PADDING) -> torch.Tensor:
    """``(dy, dx, mirrored)`` of every yielded image, after checking it is exactly that crop.

    The reference is built directly: zero-pad the source image, slice the window at (dy, dx), and
    mirror it left-right when the image is mirrored. (dy, dx) are read off the centre pixel.
    """
    padded = torch.nn.functional.pad(sources.long(), (padding,) * 4)  # zeros, (N, 3, H+2p, W+2p)
    found = []
    for images, labels in batches:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, SIZE, SIZE)
        pixels = images.round().long()
        assert torch.allclose(images, pixels.float(), atol=1e-3), "not the source's pixel values"
        for out, label in zip(pixels, labels.tolist()):
            row, col = out[0, 16, 16].item(), out[1, 16, 16].item()
            mirrored = out[1, 16, 17].item() < col  # columns run backwards in a mirrored image
            dy = row - 1 - 16 + padding  # row 16 of the crop is row 16 + dy - p of the image
            dx = col - 1 - (15 if mirrored else 16) + padding  # mirrored: column 16 shows crop column 15
            assert 0 <= dy <= 2 * padding and 0 <= dx <= 2 * padding, (dy, dx)
            window = padded[label, :, dy:dy + SIZE, dx:dx + SIZE]
            expected = window.flip(2) if mirrored else window
            assert torch.equal(out, expected), f"image {label}: not its padded crop at ({dy}, {dx})"
            found.append((dy, dx, int(mirrored)))
    return torch.tensor(found)


def chi2_uniform(values: torch.Tensor, bins: int) -> float:
    counts = torch.bincount(values, minlength=bins).double()
    assert counts.numel() == bins, "values outside the expected range"
    expected = len(values) / bins
    return ((counts - expected) ** 2 / expected).sum().item()


def assert_randomcrop_distribution(crops: torch.Tensor, padding: int = PADDING, flip: bool = True) -> None:
    n, side = len(crops), 2 * padding + 1
    dy, dx, mirrored = crops.unbind(1)
    assert chi2_uniform(dy, side) < CHI2_999[side - 1], torch.bincount(dy, minlength=side)
    assert chi2_uniform(dx, side) < CHI2_999[side - 1], torch.bincount(dx, minlength=side)
    if flip:
        rate = mirrored.double().mean().item()
        assert abs(rate - 0.5) < 4 * math.sqrt(0.25 / n), rate
        # Jointly uniform over (dy, dx, mirrored): the axes and the mirror are drawn independently.
        cell = (dy * side + dx) * 2 + mirrored
        assert chi2_uniform(cell, side * side * 2) < CHI2_999[side * side * 2 - 1]
    else:
        assert not mirrored.any()


def test_device_loader_training_batches_are_randomcrop_and_flip_of_their_own_images():
    n = 9000
    images = readable_images(n)
    loader = DeviceLoader(data.ImageSet(images, torch.arange(n)), 500, *PIXELS, shuffle=True,
                          augment="crop-flip", seed=11)
    loader.set_epoch(1)
    crops = read_crops(loader, images)
    assert len(crops) == n  # every image once per epoch
    assert_randomcrop_distribution(crops)


def test_device_loader_crop_without_flip_never_mirrors():
    n = 4000
    images = readable_images(n)
    loader = DeviceLoader(data.ImageSet(images, torch.arange(n)), 1000, *PIXELS, shuffle=True,
                          augment="crop", seed=2)
    assert_randomcrop_distribution(read_crops(loader, images), flip=False)


def test_device_loader_without_augmentation_yields_the_images_themselves():
    n = 600
    images = readable_images(n)
    loader = DeviceLoader(data.ImageSet(images, torch.arange(n)), 250, *PIXELS, shuffle=True,
                          augment="none", seed=5)
    crops = read_crops(loader, images)
    assert len(crops) == n and (crops[:, :2] == PADDING).all() and not crops[:, 2].any()


def test_each_epoch_draws_new_crops_and_the_same_epoch_repeats_them():
    n = 500
    images = readable_images(n)
    loader = DeviceLoader(data.ImageSet(images, torch.arange(n)), 100, *PIXELS, shuffle=True,
                          augment="crop-flip", seed=1)

    def by_image(epoch):
        loader.set_epoch(epoch)
        batches = [(x, y) for x, y in loader]
        labels = torch.cat([y for _, y in batches])
        return read_crops(batches, images)[labels.argsort()]

    first, second = by_image(1), by_image(2)
    assert torch.equal(first, by_image(1))
    assert (first != second).any(1).float().mean() > 0.9  # 1/162 of the images keep their crop by chance


def test_make_loaders_train_is_augmented_and_test_is_the_plain_images_in_order():
    n_train, n_test = 3000, 700
    train = data.ImageSet(readable_images(n_train), torch.arange(n_train))
    test = data.ImageSet(readable_images(n_test).flip(2), torch.arange(n_test))  # rows reversed: not a crop
    dataset = data.Dataset("readable", train, test, list(data.CIFAR10_CLASSES), *PIXELS)
    train_loader, test_loader = make_loaders(dataset, 250, "cpu", augment="crop-flip",
                                             test_batch_size=300)
    assert_randomcrop_distribution(read_crops(train_loader, train.images))
    batches = list(test_loader)
    assert [len(y) for _, y in batches] == [300, 300, 100]
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(n_test))
    assert torch.equal(torch.cat([x for x, _ in batches]).round().to(torch.uint8), test.images)


@pytest.mark.parametrize("augment", ["crop-flip", "none"])
def test_standard_dataloader_path_has_the_same_augmentation(augment):
    n = 2000 if augment != "none" else 300  # one image at a time through torchvision: keep it small
    train = data.ImageSet(readable_images(n), torch.arange(n))
    dataset = data.Dataset("readable", train, train, list(data.CIFAR10_CLASSES), *PIXELS)
    train_loader, _ = make_loaders(dataset, 100, "cpu", fast=False, augment=augment, num_workers=0)
    torch.manual_seed(3)  # the torchvision transforms draw from the global generator
    crops = read_crops(train_loader, train.images)
    assert len(crops) == n
    if augment != "none":
        assert_randomcrop_distribution(crops)
    else:
        assert (crops[:, :2] == PADDING).all() and not crops[:, 2].any()  # offset p: the image itself
