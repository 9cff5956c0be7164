"""``python -m MyModules export``: ONNX run by onnxruntime (and TorchScript) against PyTorch on test images.

The ONNX export runs as a real process, the others through ``main`` in this process."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx  # the export extra, part of .[dev]
import onnxruntime as ort
import pytest
import torch

from MyModules.data import load_dataset
from MyModules.runs.export import check_export, export_onnx
from MyModules.runs.inference import load_model
from tests.support.runs import GrayNet, cli, gray_run, in_process, trained_run


def pytorch_logits(loaded, uint8_images: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return loaded.model(loaded.prepare(uint8_images)).numpy()


def test_cli_export_writes_onnx_that_onnxruntime_runs_like_pytorch():
    run = trained_run("synthetic")
    result = cli("export", run)
    assert result.returncode == 0, result.stderr
    reported = float(re.search(r"largest \|logit difference\| vs PyTorch on test set: (\S+)", result.stdout)[1])
    assert reported <= 1e-4
    model = onnx.load(run / "model.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    loaded = load_model(run)
    assert json.loads(meta["classes"]) == loaded.classes
    assert json.loads(meta["mean"]) == pytest.approx(loaded.preprocessing.mean)
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.type == "tensor(float)" and inp.shape[1:] == [3, 32, 32] and not isinstance(inp.shape[0], int)
    # Real test images, as another program would feed them: pixels / 255, no normalisation.
    images = load_dataset("synthetic", None).test.images
    for n in (1, 3, 17):
        got = session.run([out.name], {inp.name: images[:n].numpy().astype(np.float32) / 255})[0]
        expected = pytorch_logits(loaded, images[:n])
        assert got.shape == (n, 10)
        assert np.abs(got - expected).max() <= 1e-4


def test_onnx_of_a_one_channel_run_takes_one_channel_and_matches_at_batch_1_and_3(tmp_path):
    loaded = load_model(gray_run(), model=GrayNet())
    path = export_onnx(loaded, tmp_path / "gray.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [1, 32, 32]
    images = load_dataset("mnist", None, channels=1).test.images
    for n in (1, 3):
        got = session.run(None, {session.get_inputs()[0].name: images[:n].numpy().astype(np.float32) / 255})[0]
        assert np.abs(got - pytorch_logits(loaded, images[:n])).max() <= 1e-4
    check = check_export(loaded, path)
    assert check.images == "test set" and set(check.max_abs_diff) == {1, 3, 64} and check.same_predictions
    assert check.largest <= 1e-4


def test_cli_export_torchscript_loads_with_torch_jit(tmp_path):
    run = trained_run("mnist")
    out = tmp_path / "model.pt"
    result = in_process("export", run, "--format", "torchscript", "--output", out)
    assert result.returncode == 0, result.stderr
    extra = {"metadata.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(json.loads(extra["metadata.json"])["classes"]) == load_model(run).classes
    images = load_dataset("mnist", None).test.images[:3]  # digits at the model's 3×32×32
    with torch.inference_mode():
        got = module(images.float() / 255).numpy()
    assert np.abs(got - pytorch_logits(load_model(run), images)).max() <= 1e-4


def test_export_of_a_missing_run_is_one_line(tmp_path):
    result = in_process("export", tmp_path / "absent")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
