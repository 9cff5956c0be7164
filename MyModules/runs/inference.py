"""Use a finished (or interrupted) run: its model in eval mode on the CPU, its classes, its preprocessing.

    loaded = load_model("~/pytorch-course/runs/net-cifar10-20260101-120000")
    for p in predict(loaded, ["cat.jpg", "new_images/"], top=3):
        print(p.path, p.top)                  # [("cat", 0.91), ("dog", 0.05), ...]

A run folder (written by ``train.fit`` and ``python -m MyModules train``) holds its checkpoints
(weights, epoch, config, info; see ``checkpoint.py``), ``run.json`` (the run's settings, read with
``run_folder.read_settings``, which also reads v0.1 folders and a checkpoint alone) and, once the run has
finished, ``summary.json``. What a new image must go through is the run's *test-set*
preprocessing: convert to the run's channels and size the way ``data`` did it, then
``(x / 255 - mean) / std`` with the training split's mean and std. It is read from the run when the
run recorded it (``preprocessing`` in ``fit(info=...)``) and otherwise reconstructed from the dataset
named in the run (``data.load_dataset`` on the same data folder), so older runs work.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import env, run_folder
from ..checkpoint import has_checkpoint, load_checkpoint
from ..data import Dataset, load_dataset, to_model_input
from ..errors import CheckpointError, DatasetError, RunFolderError
from ..formats import IMAGE_SUFFIXES, decode_image
from ..loader import normalize
from ..models import MODELS, build_model


@dataclass(frozen=True)
class Preprocessing:
    """What an image goes through before the model: the run's test-set pipeline."""

    image_size: int = 32  # height = width, pixels
    channels: int = 3  # 3 (RGB) or 1 (grayscale)
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # per channel, in [0, 1] units (training split)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    # How images were resized: "tensor" (data.to_model_input: antialiased bilinear on uint8 tensors;
    # CIFAR, MNIST) or "pil" (PIL bilinear, as data.read_image_folder does for image folders).
    resize: str = "tensor"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(image_size=int(d["image_size"]), channels=int(d["channels"]),
                   mean=tuple(float(m) for m in d["mean"]), std=tuple(float(s) for s in d["std"]),
                   resize=str(d.get("resize", "tensor")))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)  # (C, H, W)


@dataclass
class RunFiles:
    """What a run folder holds, read once (files that are absent are empty dicts)."""

    run_dir: Path
    settings: run_folder.RunSettings  # run.json (run_folder.read_settings)
    summary: dict[str, Any]  # summary.json (written when the run finished): the outcome
    checkpoint: dict[str, Any] = field(repr=False)  # the newest whole checkpoint (weights_only)

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.settings.command_line or {})  # python -m MyModules train's arguments

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.settings.config)  # the TrainConfig as fit resolved it

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.settings.info)  # fit(info=...): model, dataset, ...

    @property
    def dataset_name(self) -> str | None:
        return self.recorded("dataset")

    @property
    def model_name(self) -> str | None:
        for source in (self.info, self.args, self.summary):
            name = source.get("model")
            if isinstance(name, str) and name.lower() in MODELS:
                return name.lower()
        return None

    def recorded(self, key: str) -> Any:
        """``key`` from what fit was told (``info``), else the outcome (summary.json), else the arguments."""
        for source in (self.info, self.summary, self.args):
            if source.get(key) is not None:
                return source[key]
        return None


def read_run(run_dir: str | Path) -> RunFiles:
    """Read ``run_dir``'s files; raises :class:`RunFolderError` when it holds no checkpoint."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir() or not has_checkpoint(run_dir):
        where = "does not exist" if not run_dir.exists() else "holds no checkpoint (no epoch has finished there)"
        raise RunFolderError(f"{run_dir} {where}: pass the folder of a run, e.g. <course folder>/runs/<run>")
    checkpoint = load_checkpoint(run_dir, map_location="cpu")  # the newest slot that reads back whole
    return RunFiles(run_dir, run_folder.read_settings(run_dir, checkpoint), run_folder.read_summary(run_dir),
                    checkpoint)


def _course_dir(run: RunFiles) -> Path:
    if run.args.get("course_dir"):
        return Path(run.args["course_dir"]).expanduser()
    if run.run_dir.resolve().parent.name == "runs":  # <course folder>/runs/<run>
        return run.run_dir.resolve().parent.parent
    return env.course_dir()


@functools.lru_cache(maxsize=4)
def _cached_dataset(name: str, data_dir: str, image_size: int, channels: int, test_mode: bool,
                    cache_dir: str) -> Dataset:
    return load_dataset(name, data_dir, image_size=image_size, channels=channels, download=False,
                        test_mode=test_mode, cache_dir=cache_dir)


def run_dataset(run: RunFiles) -> Dataset:
    """The dataset the run trained on, loaded from the same data folder (no download)."""
    name = run.dataset_name
    if name is None:
        raise DatasetError(f"{run.run_dir} does not name its dataset (no 'dataset' in its "
                           f"{run_folder.SETTINGS_FILE}); pass fit(..., info={{'dataset': ...}}) when training")
    test_mode = run.summary.get("test_mode")
    test_mode = env.test_mode() if test_mode is None else bool(test_mode)
    data_dir = run.args.get("data_root") or env.data_folder(_course_dir(run), test_mode)
    recorded = run.recorded("preprocessing") or {}
    image_size = int(recorded.get("image_size") or run.recorded("image_size") or 32)
    channels = int(recorded.get("channels") or run.recorded("channels") or _input_channels(run.checkpoint) or 3)
    return _cached_dataset(name, str(Path(data_dir).expanduser()), image_size, channels, test_mode,
                           str(_course_dir(run) / "cache"))


def _input_channels(checkpoint: dict[str, Any]) -> int | None:
    """In-channels of the first convolution in the checkpoint's weights (state dicts keep layer order)."""
    for value in (checkpoint.get("model") or {}).values():
        if isinstance(value, torch.Tensor) and value.ndim == 4:
            return int(value.shape[1])  # conv weight (out, in, kH, kW)
    return None


def run_preprocessing(run: RunFiles) -> Preprocessing:
    """The run's recorded preprocessing, else the one reconstructed from its dataset."""
    recorded = run.recorded("preprocessing")
    if recorded:
        return Preprocessing.from_dict(recorded)
    dataset = run_dataset(run)
    c, h, _w = dataset.image_shape
    return Preprocessing(image_size=h, channels=c, mean=tuple(dataset.mean), std=tuple(dataset.std),
                         resize="pil" if dataset.name == "imagefolder" else "tensor")


def run_classes(run: RunFiles) -> list[str]:
    """Class names, index = label: recorded, else the per-class table's order, else the dataset's."""
    classes = run.recorded("classes")
    if classes:
        return [str(c) for c in classes]
    if run.summary.get("per_class_accuracy"):
        return list(run.summary["per_class_accuracy"])  # JSON keeps the order fit wrote
    return list(run_dataset(run).classes)


def _clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # torch.compile wraps weights as "_orig_mod.", DistributedDataParallel as "module.".
    for prefix in ("_orig_mod.", "module."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


@dataclass
class LoadedModel:
    """A run's model ready to predict: eval mode, float32, on ``device`` (the CPU by default)."""

    model: nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    run_dir: Path
    epoch: int  # the checkpoint's last complete epoch
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` at the model's size -> normalised float32 on the model's device."""
        p = self.preprocessing
        return normalize(images.to(self.device), p.mean, p.std, torch.float32)

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax ``(N, num_classes)`` for uint8 ``(N, C, H, W)`` images already at the model's size."""
        return torch.softmax(self.model(self.prepare(images)).float(), dim=1).cpu()


def load_model(run_dir: str | Path | RunFiles, *, model: nn.Module | None = None,
               device: torch.device | str = "cpu") -> LoadedModel:
    """The model of ``run_dir``'s checkpoint in eval mode on ``device``, with its classes and preprocessing.

    The course models are rebuilt by name; a model of your own (a class defined in a notebook) is
    passed as ``model=`` and gets the checkpoint's weights.
    """
    run = run_dir if isinstance(run_dir, RunFiles) else read_run(run_dir)
    classes = run_classes(run)
    preprocessing = run_preprocessing(run)
    if model is None:
        name = run.model_name
        if name is None:
            raise CheckpointError(f"{run.run_dir} was trained with a model that is not one of {', '.join(MODELS)} "
                                  f"(summary says {run.summary.get('model')!r}); build it yourself and pass "
                                  "load_model(run, model=YourNet())")
        model = build_model(name, len(classes))
    try:
        model.load_state_dict(_clean_state_dict(dict(run.checkpoint["model"])))
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"the weights in the checkpoint of {run.run_dir} do not fit "
                              f"{type(model).__name__} ({str(e).splitlines()[0]})") from e
    device = torch.device(device)
    model = model.to(device=device, dtype=torch.float32, memory_format=torch.contiguous_format).eval()
    return LoadedModel(model, classes, preprocessing, run.run_dir, int(run.checkpoint.get("epoch", 0)), device)


# --------------------------------------------------------------------------------------------
# Image files -> uint8 tensors at the model's size
# --------------------------------------------------------------------------------------------

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def read_image(path: str | Path, preprocessing: Preprocessing) -> torch.Tensor:
    """One image file as uint8 ``(C, H, W)`` at the model's channels and size, as the test set was made.

    Raises OSError, ValueError or DatasetError when the file is not a readable image.
    """
    from PIL import Image

    size, channels = preprocessing.image_size, preprocessing.channels
    if preprocessing.resize == "pil":  # image folders: the very function that read the training images
        return torch.from_numpy(decode_image(Path(path), size, channels).copy()).permute(2, 0, 1)
    with Image.open(path) as img:
        img.load()  # decode now: a torn file fails here, not later
        # The way CIFAR and MNIST reach the model: native channels, then data.to_model_input.
        native = img.convert("L" if img.mode in _GRAY_MODES else "RGB")
        array = np.asarray(native, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy())
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)  # (C, H, W)
    return to_model_input(tensor[None], size, channels)[0]


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and every image file (by suffix) under each folder, sorted; missing paths kept."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)  # read_image reports it when it is missing or not an image
    return found


@dataclass
class Prediction:
    """One image's result: ``top`` is [(class name, probability), ...] best first, or ``error``."""

    path: Path
    top: list[tuple[str, float]] | None = None
    error: str | None = None


def predict(loaded: LoadedModel, paths: Iterable[str | Path], *, top: int = 1,
            batch_size: int = 256) -> Iterator[Prediction]:
    """Predict every image in ``paths`` (files and folders), in order, ``batch_size`` at a time.

    A file that cannot be read yields a :class:`Prediction` with ``error`` set; the others go on.
    """
    from PIL import Image

    top = max(1, min(top, len(loaded.classes)))
    pending: list[tuple[Path, torch.Tensor | None, str | None]] = []

    def flush() -> Iterator[Prediction]:
        good = [image for _, image, _ in pending if image is not None]
        probabilities = loaded.probabilities(torch.stack(good)) if good else None
        i = 0
        for path, image, error in pending:
            if image is None:
                yield Prediction(path, error=error)
                continue
            values, indices = probabilities[i].topk(top)
            i += 1
            yield Prediction(path, [(loaded.classes[k], float(v)) for v, k in zip(values.tolist(), indices.tolist())])
        pending.clear()

    for path in collect_images(paths):
        try:
            pending.append((path, read_image(path, loaded.preprocessing), None))
        except (OSError, ValueError, DatasetError, Image.DecompressionBombError) as e:
            reason = "no such file" if isinstance(e, FileNotFoundError) else f"cannot read image ({type(e).__name__}: {e})"
            pending.append((path, None, reason))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


def test_images(run: RunFiles | str | Path, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test images (uint8, at the model's size) and labels of the run's dataset."""
    run = run if isinstance(run, RunFiles) else read_run(run)
    test = run_dataset(run).test
    return (test.images[:n], test.labels[:n]) if n else (test.images, test.labels)


test_images.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def format_prediction(p: Prediction) -> str:
    """``path<TAB>class<TAB>probability`` (more pairs with top > 1); the line ``predict`` prints."""
    return "\t".join([str(p.path), *(f"{name}\t{prob:.4f}" for name, prob in p.top or [])])


__all__: Sequence[str] = ("Preprocessing", "RunFiles", "LoadedModel", "Prediction", "read_run", "load_model",
                          "read_image", "collect_images", "predict", "run_preprocessing", "run_classes",
                          "run_dataset", "test_images", "format_prediction")
