"""Hand a run's model to another program: ONNX (any language, onnxruntime) or TorchScript (libtorch).

    python -m MyModules export RUN                       # RUN/model.onnx, checked with onnxruntime
    python -m MyModules export RUN --format torchscript  # RUN/model.torchscript.pt

The exported graph takes what an image library gives you, not what the training loop saw: float32
``(N, C, H, W)`` in [0, 1] (pixel / 255) at the run's size and channels, any batch size N. The
run's normalisation ``(x - mean) / std`` is inside the graph, and the ONNX file's metadata names the
classes (JSON list, index = output column), the mean, std and input size, so a program needs nothing
else. The export is checked against PyTorch on the run's real test images at several batch sizes.
Needs the optional dependencies: ``pip install -e ".[export]"`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..atomic import write_bytes
from ..errors import CourseError, DatasetError
from .inference import LoadedModel, Preprocessing, load_model, read_run, test_images

FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
CHECK_BATCHES = (1, 3, 64)  # batch sizes the export is compared with PyTorch at


class ExportError(CourseError, RuntimeError):
    """The export could not be written or does not match PyTorch."""

    hint_ja = "エクスポートに必要なパッケージ (pip install -e \".[export]\") と run フォルダを確認してください。"


class NormalizedModel(nn.Module):
    """``model((x - mean) / std)`` for ``x`` float32 ``(N, C, H, W)`` in [0, 1]: normalisation in the graph."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std)  # (N, num_classes) logits


def metadata(loaded: LoadedModel) -> dict[str, str]:
    """What a program needs besides the graph; ONNX metadata values are strings (JSON here)."""
    p: Preprocessing = loaded.preprocessing
    return {"classes": json.dumps(loaded.classes, ensure_ascii=False),
            "input": "float32 NCHW in [0, 1] (pixel / 255); normalisation is inside the graph",
            "image_size": str(p.image_size), "channels": str(p.channels),
            "mean": json.dumps(list(p.mean)), "std": json.dumps(list(p.std)),
            "run": loaded.run_dir.name, "epoch": str(loaded.epoch)}


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(f"exporting needs the package {module!r}, which is not installed: "
                          'run pip install -e ".[export]" (onnx, onnxscript, onnxruntime)') from e


def export_onnx(loaded: LoadedModel, path: str | Path) -> Path:
    """Write ``loaded``'s model as ONNX (dynamic batch axis, metadata); returns the path."""
    onnx = _require("onnx")
    _require("onnxscript")  # torch's exporter (dynamo=True) translates through it
    wrapper = NormalizedModel(loaded.model, loaded.preprocessing.mean, loaded.preprocessing.std).eval()
    example = torch.rand(2, *loaded.preprocessing.input_shape)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about its own internals
        program = torch.onnx.export(wrapper, (example,), None, input_names=["images"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), dynamo=True, verbose=False)
    proto = program.model_proto
    for key, value in metadata(loaded).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"{type(loaded.model).__name__} from run {loaded.run_dir.name}"
    onnx.checker.check_model(proto)
    return write_bytes(path, proto.SerializeToString())


def export_torchscript(loaded: LoadedModel, path: str | Path) -> Path:
    """Write a traced TorchScript module (``torch.jit.load(path)``; C++: ``torch::jit::load``).

    TorchScript is deprecated in recent PyTorch in favour of ``torch.export``; it stays here because
    libtorch (C++) programs load it directly.
    """
    wrapper = NormalizedModel(loaded.model, loaded.preprocessing.mean, loaded.preprocessing.std).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation warning, said once in the docstring above
        traced = torch.jit.trace(wrapper, torch.rand(2, *loaded.preprocessing.input_shape))
        extra = {"metadata.json": json.dumps(metadata(loaded), ensure_ascii=False)}
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files=extra)
    return write_bytes(path, buffer.getvalue())


def run_exported(path: str | Path, images: torch.Tensor, fmt: str = "onnx") -> torch.Tensor:
    """Logits of the exported file for float32 images in [0, 1], computed by onnxruntime or TorchScript."""
    if fmt == "onnx":
        ort = _require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            return module(images)


@dataclass
class ExportCheck:
    """How the exported file compares with PyTorch on the same images."""

    path: Path
    format: str
    max_abs_diff: dict[int, float]  # batch size -> largest |logit difference|
    same_predictions: bool  # argmax agrees on every image checked
    images: str  # what was checked: "test set" or "random" (when the dataset is not here)

    @property
    def largest(self) -> float:
        return max(self.max_abs_diff.values())


def check_export(loaded: LoadedModel, path: str | Path, fmt: str = "onnx", images: torch.Tensor | None = None,
                 batches: Sequence[int] = CHECK_BATCHES) -> ExportCheck:
    """Compare the exported file with the PyTorch model on ``images`` (uint8 at the model's size)."""
    source = "given images"
    if images is None:
        try:
            images, _ = test_images(read_run(loaded.run_dir), max(batches))
            source = "test set"
        except DatasetError:
            generator = torch.Generator().manual_seed(0)
            shape = (max(batches), *loaded.preprocessing.input_shape)
            images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            source = "random (the run's dataset is not in its data folder)"
    diffs, same = {}, True
    for n in batches:
        batch = images[:n]
        with torch.inference_mode():
            expected = loaded.model(loaded.prepare(batch)).float()
        got = run_exported(path, batch.float() / 255, fmt).float()
        if got.shape != expected.shape:
            raise ExportError(f"{path} returned shape {tuple(got.shape)} for a batch of {len(batch)}, "
                              f"PyTorch {tuple(expected.shape)}")
        diffs[len(batch)] = (got - expected).abs().max().item()
        same = same and bool((got.argmax(1) == expected.argmax(1)).all())
    return ExportCheck(Path(path), fmt, diffs, same, source)


def export_run(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None,
               check: bool = True) -> tuple[Path, ExportCheck | None]:
    """Export ``run_dir``'s model to ``out`` (default ``RUN/model.onnx`` or ``RUN/model.torchscript.pt``)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    loaded = load_model(run_dir)
    path = Path(out) if out is not None else loaded.run_dir / FILE_NAMES[fmt]
    (export_onnx if fmt == "onnx" else export_torchscript)(loaded, path)
    return path, (check_export(loaded, path, fmt) if check else None)
