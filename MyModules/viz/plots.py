"""The plots students look at after training (matplotlib), and ``save_run_plots`` for the command line.

* :func:`plot_learning_curves`     loss and accuracy per epoch, train vs test (from ``metrics.csv``)
* :func:`plot_confusion_matrix`    which true class is predicted as which (counts or row fractions)
* :func:`plot_predictions`         test images with predicted class, probability and true class
* :func:`most_confident_mistakes`  the wrong predictions the model was surest about
* :func:`plot_filters`             the first conv layer's filters as small RGB images
* :func:`plot_feature_maps`        one layer's output channels for one image

Images are the datasets' uint8 ``(N, 3, H, W)`` tensors, shown as they are; the model gets them
normalised (:func:`class_probabilities` does it). The labels this module writes are English; class names and
students' own titles may be Japanese, so importing this module calls :func:`use_japanese_font`
(IPAexGothic from the ``matplotlib-fontja`` package, the same wheel in Colab and locally).
Every ``plot_*`` returns the ``Figure``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib import font_manager
from torch import nn

from ..loader import normalize
from ..metrics import confusion_matrix, normalize_rows, per_class_accuracy
from .hooks import activations_for, find_module, first_conv_name

RIGHT, WRONG = "#1a9850", "#d73027"  # title colours of correct and wrong predictions
JAPANESE_FONT = "IPAexGothic"  # shipped by matplotlib-fontja (IPA Font License)


def _japanese_rc() -> dict | None:
    """rcParams under which Japanese text renders: the default sans-serif fonts first, IPAexGothic after.

    The font file comes with the ``matplotlib-fontja`` wheel (a dependency of the course), so Colab and
    a local install get the same glyphs without system fonts. None when the package is missing (then
    Japanese labels show as boxes: ``pip install matplotlib-fontja``).
    """
    try:
        with plt.rc_context():  # importing matplotlib_fontja sets font.family: undo that
            from matplotlib_fontja import get_font_ttf_path
    except ImportError:
        return None
    if JAPANESE_FONT not in {f.name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(get_font_ttf_path())  # registers the file; changes no setting
    # Last in the list: Latin text keeps the default font (figures stay as committed), and only the
    # glyphs the default font lacks (Japanese) come from IPAexGothic (matplotlib's per-glyph fallback).
    # The families are named (not "sans-serif"), so the figure keeps them when it is drawn later.
    latin = [f for f in plt.rcParamsDefault["font.sans-serif"] if f != JAPANESE_FONT]
    return {"font.sans-serif": [*latin, JAPANESE_FONT], "font.family": [*latin[:1], JAPANESE_FONT]}


def use_japanese_font() -> bool:
    """Let every later matplotlib figure draw Japanese text (for your own plots; the course's plot
    functions do it for their figures only, without changing your settings). False if the font is missing."""
    rc = _japanese_rc()
    if rc is None:
        return False
    plt.rcParams.update(rc)
    return True


def with_japanese_font(plot):
    """Decorator: the figure ``plot`` makes can hold Japanese text; matplotlib's settings are left as they were."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(_japanese_rc() or {}):
            return plot(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def class_probabilities(model: nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                        device: torch.device | str = "cpu", batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities ``(N, K)`` (CPU, float32) of ``model`` on uint8 ``images`` (N, C, H, W)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        probs = [torch.softmax(model(normalize(images[i:i + batch_size].to(device), mean, std)).float(), 1).cpu()
                 for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(probs)


def most_confident_mistakes(probs: torch.Tensor, labels: torch.Tensor, k: int = 16) -> torch.Tensor:
    """Indices of up to ``k`` wrong predictions, the most confident (highest top probability) first."""
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels.to(predicted.device)).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True, stable=True)
    return wrong[order][:k]


def most_confused_pairs(confusion: torch.Tensor, classes: Sequence[str], k: int = 5) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells as ``(true class, predicted class, count)``."""
    off = confusion.clone().to(torch.int64)
    off.fill_diagonal_(-1)  # below any count, so a correct cell is never listed
    values, index = off.flatten().sort(descending=True, stable=True)
    n = confusion.shape[0]
    return [(classes[i // n], classes[i % n], int(v)) for v, i in zip(values[:k].tolist(), index[:k].tolist())
            if v > 0]


# ----------------------------------------------------------------------------------------------
# Learning curves
# ----------------------------------------------------------------------------------------------

def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a run's ``metrics.csv`` (or the CSV in a run folder) as dicts of floats."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: a run folder gets metrics.csv after its first epoch")
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


@with_japanese_font
def plot_learning_curves(history: str | Path | Sequence[dict], title: str | None = None) -> plt.Figure:
    """Loss and accuracy per epoch, train vs test; ``history`` is ``fit(...).history`` or a
    ``metrics.csv`` / run folder path. Adds a learning-rate panel when the rows have ``lr``."""
    rows = read_metrics(history) if isinstance(history, (str, Path)) else list(history)
    if not rows:
        raise ValueError("no epochs to plot yet")
    epochs = [r["epoch"] for r in rows]
    has_lr = all("lr" in r for r in rows)
    fig, axes = plt.subplots(1, 3 if has_lr else 2, figsize=(13 if has_lr else 9.5, 3.6), layout="constrained")
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy (%)")):
        ax.plot(epochs, [r[f"train_{key}"] for r in rows], "o-", color="tab:blue", label="train")
        ax.plot(epochs, [r[f"test_{key}"] for r in rows], "s-", color="tab:orange", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    best = max(rows, key=lambda r: r["test_accuracy"])
    axes[1].plot([best["epoch"]], [best["test_accuracy"]], "*", color="tab:red", markersize=13, zorder=3,
                 label=f"best test {best['test_accuracy']:.1f}% (epoch {best['epoch']:.0f})")
    axes[0].legend()
    losses = [r[k] for r in rows for k in ("train_loss", "test_loss")]
    if min(losses) > 0 and max(losses) / min(losses) > 100:
        axes[0].set_yscale("log")  # a loss spike or a loss near 0 would flatten the rest
    axes[1].legend(loc="lower right")
    if has_lr:
        axes[2].plot(epochs, [r["lr"] for r in rows], "o-", color="tab:green")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate (end of epoch)")
        axes[2].grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------
# Confusion matrix
# ----------------------------------------------------------------------------------------------

@with_japanese_font
def plot_confusion_matrix(confusion: torch.Tensor, classes: Sequence[str], normalize: bool = True,
                          title: str | None = None) -> plt.Figure:
    """Rows = true class, columns = predicted class; ``normalize`` shows each row as fractions
    (the diagonal is then each class's accuracy), else the counts."""
    counts = confusion.to(torch.int64).cpu()
    values = normalize_rows(counts).numpy() if normalize else counts.numpy()
    k = len(classes)
    size = min(max(4.0, 0.55 * k + 2.0), 14.0)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(values.max(), 1))
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class" if normalize else "images")
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=45, ha="right")
        ax.set_yticks(range(k), classes)
    if k <= 20:  # numbers in the cells stay readable up to about 20 classes
        threshold = 0.5 * (1 if normalize else values.max())
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(values[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > threshold else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = 100.0 * counts.diagonal().sum().item() / max(counts.sum().item(), 1)
    ax.set_title(title or f"confusion matrix ({'row-normalised' if normalize else 'counts'}), "
                          f"accuracy {accuracy:.1f}%")
    return fig


def save_confusion_csv(confusion: torch.Tensor, classes: Sequence[str], folder: str | Path) -> dict[str, Path]:
    """Write ``confusion_counts.csv``, ``confusion_normalized.csv`` (rows sum to 1) and
    ``per_class_accuracy.csv`` (%) into ``folder``; rows are true classes, columns predictions."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = confusion.to(torch.int64).cpu()
    paths = {"confusion_counts": folder / "confusion_counts.csv",
             "confusion_normalized": folder / "confusion_normalized.csv",
             "per_class_accuracy": folder / "per_class_accuracy.csv"}
    for key, table, fmt in (("confusion_counts", counts, "{:d}"),
                            ("confusion_normalized", normalize_rows(counts), "{:.6f}")):
        with open(paths[key], "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true \\ predicted", *classes])
            for name, row in zip(classes, table.tolist()):
                writer.writerow([name, *(fmt.format(v) for v in row)])
    with open(paths["per_class_accuracy"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "images", "correct", "accuracy_percent"])
        for name, n, c, acc in zip(classes, counts.sum(1).tolist(), counts.diagonal().tolist(),
                                   per_class_accuracy(counts).tolist()):
            writer.writerow([name, n, c, f"{acc:.4f}"])
    return paths


# ----------------------------------------------------------------------------------------------
# Images with predictions
# ----------------------------------------------------------------------------------------------

def _show(ax, image: torch.Tensor) -> None:
    """Draw a uint8 (C, H, W) image (1 or 3 channels) without axes."""
    array = image.cpu().permute(1, 2, 0).numpy()
    ax.imshow(array[..., 0] if array.shape[2] == 1 else array, cmap="gray" if array.shape[2] == 1 else None,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


@with_japanese_font
def plot_predictions(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, classes: Sequence[str],
                     indices: Sequence[int] | torch.Tensor | None = None, n: int = 16, ncols: int = 8,
                     title: str | None = None) -> plt.Figure:
    """A grid of uint8 ``images`` with "predicted (probability)" and the true class as titles,
    green when right and red when wrong. ``indices`` picks the images (default the first ``n``)."""
    indices = list(range(min(n, len(images)))) if indices is None else [int(i) for i in indices]
    if not indices:
        raise ValueError("no images to show")
    ncols = min(ncols, len(indices))
    nrows = -(-len(indices) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(1.75 * ncols, 4.0), 2.05 * nrows + 0.3), squeeze=False,
                             layout="constrained")
    confidence, predicted = probs.max(1)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        ax.axis("on")
        _show(ax, images[i])
        p, t = int(predicted[i]), int(labels[i])
        ax.set_title(f"{classes[p]} {100 * confidence[i].item():.0f}%\ntrue: {classes[t]}", fontsize=8,
                     color=RIGHT if p == t else WRONG)
        for spine in ax.spines.values():
            spine.set_edgecolor(RIGHT if p == t else WRONG)
            spine.set_linewidth(2)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------
# Inside the network: filters and feature maps
# ----------------------------------------------------------------------------------------------

@with_japanese_font
def plot_filters(model: nn.Module, layer: str | None = None, max_filters: int = 64) -> plt.Figure:
    """The filters of ``layer`` (default: the first conv) as RGB images, each scaled to its own
    min..max (so mid-grey is 0 only when the filter is symmetric). Colour edges and blobs after
    training; noise means the layer has not learned (yet)."""
    layer = layer or first_conv_name(model)
    module = find_module(model, layer)
    weight = module.weight.detach().float().cpu()  # (C_out, C_in, kh, kw)
    if weight.shape[1] not in (1, 3):
        weight = weight.mean(1, keepdim=True)  # deeper layers: average over input channels
    weight = weight[:max_filters]
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    high = weight.amax(dim=(1, 2, 3), keepdim=True)
    scaled = (weight - low) / (high - low).clamp_min(1e-12)  # (F, C, kh, kw) in [0, 1]
    n = len(scaled)
    ncols = min(16, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.75 * ncols + 0.4, 0.75 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, f in zip(axes.flat, scaled):
        array = f.permute(1, 2, 0).numpy()
        ax.imshow(array[..., 0] if array.shape[2] == 1 else array, cmap="gray", interpolation="nearest")
    fig.suptitle(f"{layer}: {n} filters {tuple(weight.shape[1:])}", fontsize=10)
    return fig


@with_japanese_font
def plot_feature_maps(model: nn.Module, image: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                      layer: str | None = None, device: torch.device | str = "cpu",
                      max_maps: int = 32) -> plt.Figure:
    """The input ``image`` (uint8, (C, H, W)) and the output channels of ``layer`` (default: the
    first conv) for it, each channel with its own colour scale. A channel that is 0 everywhere
    after a ReLU is "dead" for this image."""
    layer = layer or first_conv_name(model)
    batch = normalize(image[None].to(torch.device(device)), mean, std)
    maps = activations_for(model, batch, [layer])[layer][0]  # (C, H', W')
    if maps.dim() != 3:
        raise ValueError(f"layer {layer!r} gives shape {tuple(maps.shape)}; choose a conv-like layer (C, H, W)")
    n = min(max_maps, maps.shape[0])
    ncols = min(8, n + 1)
    nrows = -(-(n + 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.45 * ncols, 1.55 * nrows + 0.4), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    _show(axes.flat[0], image)
    axes.flat[0].set_title("input", fontsize=8)
    for c, ax in enumerate(list(axes.flat)[1:n + 1]):
        ax.imshow(maps[c].numpy(), cmap="viridis", interpolation="nearest")
        ax.set_title(f"ch {c}" + (" (0)" if maps[c].abs().max() == 0 else ""), fontsize=8)
    fig.suptitle(f"{layer}: {n} of {maps.shape[0]} channels, {maps.shape[1]}x{maps.shape[2]}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------------------------
# Everything for one run folder (the command line calls this after training)
# ----------------------------------------------------------------------------------------------

def save_run_plots(run_dir: str | Path, model: nn.Module, dataset, device: torch.device | str = "cpu", *,
                   feature_layer: str | None = None, n_images: int = 16) -> dict[str, Path]:
    """Write the plots (PNG) and confusion CSVs of a trained ``model`` into ``run_dir``.

    ``dataset`` is a :class:`~MyModules.data.Dataset`; its test split is predicted once. Returns
    the paths by name: learning_curves, confusion_matrix, confusion_counts, confusion_normalized,
    per_class_accuracy, predictions, confident_mistakes, filters, feature_maps.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    test = dataset.test
    probs = class_probabilities(model, test.images, dataset.mean, dataset.std, device)
    confusion = confusion_matrix(probs.argmax(1), test.labels, dataset.num_classes)
    paths = save_confusion_csv(confusion, dataset.classes, run_dir)
    figures = {"confusion_matrix": plot_confusion_matrix(confusion, dataset.classes),
               "predictions": plot_predictions(test.images, test.labels, probs, dataset.classes, n=n_images,
                                               title="test images: predicted (probability), true class"),
               "filters": plot_filters(model),
               "feature_maps": plot_feature_maps(model, test.images[0], dataset.mean, dataset.std,
                                                 layer=feature_layer, device=device)}
    if (run_dir / "metrics.csv").exists():
        figures["learning_curves"] = plot_learning_curves(run_dir / "metrics.csv", title=run_dir.name)
    mistakes = most_confident_mistakes(probs, test.labels, n_images)
    if len(mistakes):
        figures["confident_mistakes"] = plot_predictions(test.images, test.labels, probs, dataset.classes,
                                                         indices=mistakes, title="most confident mistakes")
    for name, fig in figures.items():
        paths[name] = run_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=120)
        plt.close(fig)
    return paths
