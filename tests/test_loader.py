"""The device-resident loader: same augmentation distribution as the torchvision transforms it replaces."""

import math

import torch

from MyModules import data
from MyModules.loader import (
    DeviceLoader,
    make_loaders,
    normalize,
    random_crop,
    random_flip,
    standard_transforms,
)


def coordinate_images(n: int) -> torch.Tensor:
    """Images whose pixel (y, x) holds 1 + y (channel 0) and 1 + x (channel 1): crops reveal their offsets."""
    ys = torch.arange(32).view(32, 1).expand(32, 32) + 1
    xs = torch.arange(32).view(1, 32).expand(32, 32) + 1
    one = torch.stack([ys, xs, torch.full((32, 32), 7)]).to(torch.uint8)
    return one.expand(n, 3, 32, 32).clone()


def test_random_crop_offsets_are_uniform_and_match_content():
    g = torch.Generator().manual_seed(0)
    images = coordinate_images(20000)
    crops, offsets = random_crop(images, 4, g)
    assert crops.shape == images.shape
    # Offsets uniform over 0..8 in both axes (chi-square against 9 equal bins).
    for axis in (0, 1):
        counts = torch.bincount(offsets[:, axis], minlength=9).float()
        assert counts.numel() == 9
        expected = len(images) / 9
        chi2 = ((counts - expected) ** 2 / expected).sum().item()
        assert chi2 < 26.1  # p = 0.001 for 8 degrees of freedom
    # The content agrees with the offsets; padding is zero (black), as RandomCrop(padding=4).
    for i in range(50):
        dy, dx = offsets[i].tolist()
        y, x = 10, 10
        assert crops[i, 0, y, x] == 1 + y + dy - 4 and crops[i, 1, y, x] == 1 + x + dx - 4
        if dy < 4:
            assert crops[i, :, 0, :].sum() == 0  # first row comes from the zero padding


def test_random_flip_rate_is_one_half_and_mirrors():
    g = torch.Generator().manual_seed(1)
    images = coordinate_images(20000)
    flipped, mask = random_flip(images, g)
    rate = mask.float().mean().item()
    assert abs(rate - 0.5) < 4 * math.sqrt(0.25 / len(mask))
    assert torch.equal(flipped[mask], images[mask].flip(3))
    assert torch.equal(flipped[~mask], images[~mask])


def test_normalize_matches_torchvision_normalize():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    expected = torch.stack([standard_transforms(mean, std, augment=False)(img) for img in images])
    assert torch.allclose(normalize(images, mean, std), expected, atol=1e-6)


def test_normalised_training_batches_have_zero_mean_unit_std():
    images, labels = data.make_synthetic(2000, seed=3)
    imageset = data.ImageSet(torch.from_numpy(images), torch.from_numpy(labels))
    mean, std = data.channel_stats(imageset.images)
    loader = DeviceLoader(imageset, 2000, mean, std, shuffle=True, augment=False)
    batch, _ = next(iter(loader))
    assert torch.allclose(batch.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(batch.std((0, 2, 3)), torch.ones(3), atol=1e-3)


def test_augmented_statistics_agree_with_torchvision_pipeline():
    images, labels = data.make_synthetic(3000, seed=4)
    imageset = data.ImageSet(torch.from_numpy(images), torch.from_numpy(labels))
    mean, std = data.channel_stats(imageset.images)
    fast = torch.cat([b for b, _ in DeviceLoader(imageset, 500, mean, std, shuffle=True, augment=True)])
    torch.manual_seed(0)
    transform = standard_transforms(mean, std, augment=True)
    slow = torch.stack([transform(img) for img in imageset.images])
    # Per-pixel mean images agree (crop padding darkens the border equally in both).
    assert (fast.mean(0) - slow.mean(0)).abs().mean() < 0.05
    assert abs(fast.std().item() - slow.std().item()) < 0.02


def test_epoch_order_is_a_permutation_and_reproducible():
    images, labels = data.make_synthetic(300, seed=5)
    imageset = data.ImageSet(torch.from_numpy(images), torch.arange(300))
    loader = DeviceLoader(imageset, 64, (0.5,) * 3, (0.25,) * 3, shuffle=True, augment=True, seed=7)
    loader.set_epoch(3)
    first = [(x.clone(), y.clone()) for x, y in loader]
    assert len(first) == len(loader) == 5
    assert sorted(torch.cat([y for _, y in first]).tolist()) == list(range(300))
    loader.set_epoch(4)
    other = torch.cat([y for _, y in loader])
    loader.set_epoch(3)
    again = list(loader)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(other, torch.cat([y for _, y in first]))


def test_standard_path_yields_the_same_shapes_and_labels():
    ds = data.Dataset("gen", data.ImageSet(*map(torch.from_numpy, data.make_synthetic(256, seed=6))),
                      data.ImageSet(*map(torch.from_numpy, data.make_synthetic(100, seed=7))),
                      list(data.CIFAR10_CLASSES), (0.3,) * 3, (0.2,) * 3)
    fast_train, fast_test = make_loaders(ds, 64, "cpu", fast=True)
    slow_train, slow_test = make_loaders(ds, 64, "cpu", fast=False, num_workers=0)
    fx, fy = next(iter(fast_train))
    sx, sy = next(iter(slow_train))
    assert fx.shape == sx.shape == (64, 3, 32, 32) and fx.dtype == sx.dtype == torch.float32
    assert len(fast_train) == len(slow_train) == 4
    # The test loaders are not shuffled or augmented: identical batches.
    (ftx, fty), (stx, sty) = next(iter(fast_test)), next(iter(slow_test))
    assert torch.equal(fty, sty) and torch.allclose(ftx, stx, atol=1e-6)


def test_hand_written_loop_without_set_epoch_gets_a_new_order_each_pass():
    images, _ = data.make_synthetic(200, seed=8)
    imageset = data.ImageSet(torch.from_numpy(images), torch.arange(200))
    loader = DeviceLoader(imageset, 50, (0.5,) * 3, (0.25,) * 3, shuffle=True)
    first = torch.cat([y for _, y in loader])
    second = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(200))
    assert not torch.equal(first, second)


def test_device_loader_batches_are_crops_and_mirrors_of_their_own_images():
    images = coordinate_images(64)
    images[:, 2] = torch.arange(64, dtype=torch.uint8).view(64, 1, 1) + 100  # channel 2 names the image
    imageset = data.ImageSet(images, torch.arange(64))
    loader = DeviceLoader(imageset, 64, (0.0,) * 3, (1 / 255,) * 3, shuffle=True, augment=True, seed=3)
    batch, labels = next(iter(loader))
    batch = batch.round().to(torch.int64)  # back to pixel values (mean 0, std 1/255)
    mirrored = 0
    padded = torch.nn.functional.pad(images.long(), (4, 4, 4, 4))
    for out, label in zip(batch, labels.tolist()):
        ident = out[2][out[2] > 0].unique().tolist()
        assert ident == [100 + label]  # the image's own pixels (zeros are padding)
        matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                   if torch.equal(out, (padded[label, :, dy:dy + 32, dx:dx + 32].flip(2) if flip
                                        else padded[label, :, dy:dy + 32, dx:dx + 32]))]
        assert matches, "not a padded crop (or its mirror) of the source image"
        mirrored += matches[0][2]
    assert 10 < mirrored < 54  # about half mirrored
