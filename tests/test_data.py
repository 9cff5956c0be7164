"""Datasets: the readers of the real on-disk formats, generated data, conversion, errors."""

import numpy as np
import pytest
import torch

from MyModules import data


def test_cifar10_roundtrip_through_real_format(tmp_path):
    train = data.make_synthetic(50, seed=1)
    test = data.make_synthetic(20, seed=2)
    folder = data.write_cifar(tmp_path / "cifar-10-batches-py", train, test, data.CIFAR10_CLASSES)
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    tr, te, classes = data.read_cifar(folder)
    assert classes == list(data.CIFAR10_CLASSES)
    assert torch.equal(tr.images, torch.from_numpy(train[0])) and torch.equal(tr.labels, torch.from_numpy(train[1]))
    assert torch.equal(te.images, torch.from_numpy(test[0]))


def test_generated_cifar10_is_readable_by_torchvision(tmp_path, monkeypatch):
    # The same files torchvision reads (minus its MD5 checks, which only the real files pass).
    import torchvision
    import torchvision.datasets.cifar

    data.generate_test_data("cifar10", tmp_path, train_size=100, test_size=50)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    ds = torchvision.datasets.CIFAR10(str(tmp_path), train=True, download=False)
    ours = data.load_dataset("cifar10", tmp_path, test_mode=True)
    assert len(ds) == 100 and ds.classes == ours.classes
    image, label = ds[7]
    assert np.array_equal(np.asarray(image).transpose(2, 0, 1), ours.train.images[7].numpy())
    assert label == ours.train.labels[7].item()


@pytest.mark.parametrize("name", ["cifar100", "mnist", "fashionmnist", "imagefolder"])
def test_every_dataset_loads_as_3x32x32_with_class_names(tmp_path, name):
    ds = data.load_dataset(name, tmp_path, test_mode=True)
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape[1:] == (3, 32, 32)
    assert ds.test.images.shape[1:] == (3, 32, 32)
    assert ds.train.labels.dtype == torch.int64
    assert ds.num_classes == (100 if name == "cifar100" else 10) == len(ds.classes)
    assert int(ds.train.labels.max()) < ds.num_classes
    assert len(ds.mean) == len(ds.std) == 3


def test_mnist_idx_roundtrip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30, dtype=np.int64) % 10
    raw = data.write_idx(tmp_path / "MNIST" / "raw", (images, labels), (images[:5], labels[:5]))
    train, test = data.read_mnist(raw)
    assert train.images.shape == (30, 1, 28, 28) and torch.equal(train.images[:, 0], torch.from_numpy(images))
    assert torch.equal(test.labels, torch.from_numpy(labels[:5]))


def test_image_folder_any_size_and_mode_becomes_rgb_32(tmp_path):
    from PIL import Image

    for part in ("train", "test"):
        for cls, mode, size in (("cats", "L", (50, 40)), ("dogs", "RGBA", (17, 64))):
            folder = tmp_path / part / cls
            folder.mkdir(parents=True)
            Image.new(mode, size, color=200 if mode == "L" else (10, 20, 30, 255)).save(folder / "a.png")
    ds = data.load_dataset("imagefolder", tmp_path, test_mode=False)
    assert ds.classes == ["cats", "dogs"]
    assert ds.train.images.shape == (2, 3, 32, 32)
    assert ds.train.images[0].unique().tolist() == [200]  # grey replicated to 3 channels
    assert ds.train.images[1, :, 5, 5].tolist() == [10, 20, 30]
    # Second load comes from the cache and gives the same tensors.
    again = data.load_dataset("imagefolder", tmp_path, test_mode=False)
    assert torch.equal(again.train.images, ds.train.images)


def test_synthetic_classes_differ_visibly():
    images, labels = data.make_synthetic(400, seed=0)
    means = np.stack([images[labels == k].reshape(-1, 3, 32 * 32).astype(float).mean((0, 2)) for k in range(10)])
    # Mean colours of any two classes are apart: a nearest-mean classifier on colour alone does well.
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(10) * 1e9
    assert distances.min() > 3.0


def test_missing_offline_data_gives_one_clear_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    import torchvision.datasets.utils as tvu

    monkeypatch.setattr(tvu, "urlopen", no_network, raising=False)
    monkeypatch.setattr(tvu, "download_url", no_network)
    with pytest.raises(data.DatasetError) as info:
        data.load_dataset("cifar10", tmp_path, test_mode=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path) in message


def test_corrupt_file_is_reported_not_crashed(tmp_path):
    folder = data.generate_test_data("cifar10", tmp_path, train_size=50, test_size=10)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(data.DatasetError, match="data_batch_3.*download the dataset again"):
        data.load_dataset("cifar10", tmp_path, test_mode=False)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(data.DatasetError, match="cifar10"):
        data.load_dataset("imagenet", "/nonexistent")
