"""load_model and predict on real run folders: files, folders, broken images, grayscale and colour runs.

``python -m MyModules predict`` runs once as a real process, otherwise through ``main`` in this process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from MyModules.data import CIFAR10_CLASSES, MNIST_CLASSES, load_dataset
from MyModules.errors import CheckpointError, RunFolderError
from MyModules.models import Net
from MyModules.runs.inference import load_model, predict, read_image
from tests.support.runs import (
    cli,
    gray_run,
    in_process,
    native_test_images,
    trained_run,
    write_pngs,
)


def parse(stdout: str) -> dict[str, list[tuple[str, float]]]:
    """predict's lines: path, then (class, probability) pairs, tab-separated."""
    result = {}
    for line in stdout.strip().splitlines():
        path, *rest = line.split("\t")
        result[path] = [(rest[i], float(rest[i + 1])) for i in range(0, len(rest), 2)]
    return result


@pytest.mark.parametrize("dataset, classes", [("synthetic", CIFAR10_CLASSES), ("mnist", MNIST_CLASSES)])
def test_load_model_gives_eval_cpu_model_classes_and_the_test_set_preprocessing(dataset, classes):
    run = trained_run(dataset)
    loaded = load_model(run)
    assert isinstance(loaded.model, Net) and not loaded.model.training
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    assert loaded.classes == list(classes) and loaded.epoch == 2
    reference = load_dataset(dataset, None)  # what the run trained on (test mode: same generated data)
    assert loaded.preprocessing.input_shape == reference.image_shape == (3, 32, 32)
    assert loaded.preprocessing.mean == pytest.approx(reference.mean)
    assert loaded.preprocessing.std == pytest.approx(reference.std)
    # The weights are the checkpoint's: the model reproduces the run's last test accuracy.
    probabilities = loaded.probabilities(reference.test.images)
    accuracy = 100.0 * (probabilities.argmax(1) == reference.test.labels).double().mean().item()
    summary = json.loads((run / "summary.json").read_text())
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("dataset", ["synthetic", "mnist"])
def test_predict_on_image_files_matches_the_model_on_the_test_set(tmp_path, dataset):
    """PNG files of the test images, as stored on disk (28×28 gray digits, 32×32 colour), go through
    the run's test-set preprocessing: the probabilities equal the model's on the test tensors."""
    loaded = load_model(trained_run(dataset))
    native, _labels = native_test_images(dataset)
    paths = write_pngs(tmp_path / "images", native[:40])
    expected = loaded.probabilities(load_dataset(dataset, None).test.images[:40])
    results = list(predict(loaded, paths, top=3, batch_size=16))
    assert [r.path for r in results] == paths and all(r.error is None for r in results)
    for result, row in zip(results, expected):
        values, indices = row.topk(3)
        assert [name for name, _ in result.top] == [loaded.classes[i] for i in indices.tolist()]
        assert [p for _, p in result.top] == pytest.approx(values.tolist(), abs=1e-6)


def test_gray_digits_and_colour_photos_both_work_with_either_run(tmp_path):
    digit = tmp_path / "digit.png"
    Image.fromarray(native_test_images("mnist")[0][0]).save(digit)  # 28×28, mode L
    photo = tmp_path / "photo.jpg"
    Image.fromarray(native_test_images("synthetic")[0][0]).save(photo, quality=95)  # 32×32 RGB
    for dataset in ("synthetic", "mnist"):
        loaded = load_model(trained_run(dataset))
        for path in (digit, photo):
            tensor = read_image(path, loaded.preprocessing)
            assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.uint8
        results = list(predict(loaded, [digit, photo]))
        assert all(r.error is None and r.top[0][0] in loaded.classes for r in results)


def test_cli_predict_on_a_folder_prints_one_line_per_image_like_load_model(tmp_path):
    run = trained_run("synthetic")
    folder = tmp_path / "new"
    paths = write_pngs(folder / "a", native_test_images("synthetic")[0][:6])
    paths += write_pngs(folder / "b", native_test_images("synthetic")[0][6:9])
    result = cli("predict", run, folder)
    assert result.returncode == 0, result.stderr
    lines = parse(result.stdout)
    assert list(lines) == [str(p) for p in sorted(paths)]  # recursive, sorted, nothing else
    loaded = load_model(run)
    for p in predict(loaded, paths):
        (name, probability), = lines[str(p.path)]
        assert name == p.top[0][0] and probability == pytest.approx(p.top[0][1], abs=1e-4)
    assert "9 images predicted" in result.stderr


def test_cli_predict_top_k_and_files_mixed_with_folders(tmp_path):
    run = trained_run("mnist")
    native = native_test_images("mnist")[0]
    single = write_pngs(tmp_path / "one", native[:1])[0]
    more = write_pngs(tmp_path / "more", native[1:4])
    result = in_process("predict", run, single, tmp_path / "more", "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = parse(result.stdout)
    assert list(lines) == [str(single), *map(str, more)]
    for top in lines.values():
        probabilities = [p for _, p in top]
        assert len(top) == 3 and len({n for n, _ in top}) == 3 and set(n for n, _ in top) <= set(MNIST_CLASSES)
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-3


def test_cli_predict_reports_each_broken_file_once_and_goes_on(tmp_path):
    run = trained_run("synthetic")
    folder = tmp_path / "mixed"
    good = write_pngs(folder, native_test_images("synthetic")[0][:4])
    torn = folder / "torn.png"
    torn.write_bytes(good[0].read_bytes()[:200])  # a copy cut off mid-file, as by a failed transfer
    fake = folder / "fake.jpg"
    fake.write_bytes(b"this is not a JPEG\n" * 10)
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    (folder / "notes.txt").write_text("not an image suffix: skipped")
    missing = tmp_path / "missing.png"
    result = in_process("predict", run, folder, missing)
    assert result.returncode == 1  # some files failed; the rest were predicted
    assert list(parse(result.stdout)) == [str(p) for p in good]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4
    for path in (torn, fake, empty, missing):
        (line,) = [e for e in errors if e.startswith(f"error: {path}: ")]
        assert ("no such file" if path == missing else "cannot read image") in line
    assert "Traceback" not in result.stderr and "4 images predicted" in result.stderr


def test_a_one_channel_run_of_a_users_own_model(tmp_path):
    from tests.support.runs import GrayNet

    run = gray_run()
    with pytest.raises(CheckpointError, match="model="):
        load_model(run)  # GrayNet is not a course model: it cannot be rebuilt by name
    loaded = load_model(run, model=GrayNet())
    assert loaded.preprocessing.input_shape == (1, 32, 32)
    native = native_test_images("mnist")[0][:8]
    paths = write_pngs(tmp_path, native)
    colour = tmp_path / "colour.png"
    Image.fromarray(np.repeat(native[0][:, :, None], 3, axis=2)).save(colour)  # RGB file of digit 0
    results = list(predict(loaded, [*paths, colour]))
    expected = loaded.probabilities(load_dataset("mnist", None, channels=1).test.images[:8])
    got = torch.tensor([[p for _, p in r.top] for r in results[:8]])[:, 0]
    assert got == pytest.approx(expected.max(1).values.tolist(), abs=1e-6)
    assert results[-1].top[0][0] == results[0].top[0][0]  # same digit, grey or RGB


def test_wrong_model_and_missing_run_are_course_errors(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(trained_run("synthetic"), model=torch.nn.Linear(3, 3))
    result = in_process("predict", tmp_path / "nope", tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
