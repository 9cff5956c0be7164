"""Regenerate the figures of docs/02_visualizer.md (fig/02_*.png) from generated data.

    python tools/make_fig02.py            # about a minute on a laptop CPU

Trains the course's WideNet on the generated "synthetic" dataset (CIFAR-10 class names, classes told
apart by colour and shape; classes k and k+5 share a shape) with TensorBoard logging, then writes:

* the plots of ``plots.save_run_plots`` for a short run (so some classes are still confused);
* learning curves of a deliberately overfitting run (300 training images, half of them mislabelled);
* histograms of that run read back from its TensorBoard event files (what the HISTOGRAMS tab draws).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from MyModules import data, loader, models, train  # noqa: E402
from MyModules.viz import plots, tensorboard  # noqa: E402


def rebin(h, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """TensorBoard stores counts in exponentially spaced buckets (tiny near 0, wide far from it);
    spread each bucket's count over uniform bins between min and max in proportion to their overlap,
    as the HISTOGRAMS tab does. Returns (edges, fractions)."""
    if h.max <= h.min:
        return np.array([h.min - 0.5, h.max + 0.5]), np.array([1.0])
    edges = np.linspace(h.min, h.max, bins + 1)
    counts = np.zeros(bins)
    limits = np.clip(np.array(h.bucket_limit), h.min, h.max)
    lefts = np.concatenate([[h.min], limits[:-1]])
    for left, right, count in zip(lefts, limits, h.bucket):
        if count == 0:
            continue
        if right <= left:  # a zero-width bucket: all of it in the bin that holds it
            counts[min(np.searchsorted(edges, left, side="right") - 1, bins - 1)] += count
            continue
        overlap = np.clip(np.minimum(edges[1:], right) - np.maximum(edges[:-1], left), 0, None)
        counts += count * overlap / (right - left)
    return edges, counts / max(counts.sum(), 1)


def histogram_figure(log_dir: Path, tags: list[str]) -> plt.Figure:
    """One panel per tag: the histogram of each logged epoch, later epochs darker (as TensorBoard)."""
    acc = tensorboard.load_events(log_dir)
    fig, axes = plt.subplots(1, len(tags), figsize=(4.6 * len(tags), 3.4), layout="constrained")
    for ax, tag in zip(np.atleast_1d(axes), tags):
        events = acc.Histograms(tag)
        colours = plt.cm.Oranges(np.linspace(0.3, 1.0, len(events)))
        for event, colour in zip(events, colours):
            edges, fractions = rebin(event.histogram_value)
            ax.stairs(fractions, edges, color=colour, label=f"step {event.step}")
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("value")
        ax.set_ylabel("fraction")
        if not tag.startswith("weights/"):
            ax.set_yscale("log")  # a spike at 0 (ReLU, vanishing gradients) would flatten everything else
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "fig")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fig02-"))
    try:
        dataset = data.load_dataset("synthetic", work / "data")
        device = torch.device("cpu")

        # A short run (12 steps): far from perfect, so some classes are still confused.
        config = train.TrainConfig(epochs=3, batch_size=64, lr=0.02, max_steps_per_epoch=4)
        train_loader, test_loader = loader.make_loaders(dataset, config.batch_size, device, seed=config.seed)
        torch.manual_seed(config.seed)
        model = models.build_model("widenet", dataset.num_classes)
        run = work / "runs" / "widenet-short"
        train.fit(model, train_loader, test_loader, config, device, run_dir=run, classes=dataset.classes,
                  progress=False)
        for name, path in plots.save_run_plots(run, model, dataset, device).items():
            if path.suffix == ".png" and name != "learning_curves":
                shutil.copy(path, args.out / f"02_{name}.png")

        # Overfitting on purpose: 300 training images, half of them with a random label, no augmentation,
        # a constant learning rate. The model memorises the wrong labels: train accuracy goes to 100 %
        # while the test loss rises. Logged to TensorBoard to draw the histograms too.
        g = torch.Generator().manual_seed(0)
        labels = dataset.train.labels[:300].clone()
        noisy = torch.rand(300, generator=g) < 0.5
        labels[noisy] = torch.randint(0, dataset.num_classes, (int(noisy.sum()),), generator=g)
        small = data.Dataset(dataset.name, data.ImageSet(dataset.train.images[:300], labels), dataset.test,
                             dataset.classes, dataset.mean, dataset.std)
        config = train.TrainConfig(epochs=40, batch_size=50, lr=0.02, schedule="constant", augment=False,
                                   weight_decay=0.0)
        train_loader, test_loader = loader.make_loaders(small, config.batch_size, device, augment=False)
        images, _ = next(iter(test_loader))
        torch.manual_seed(config.seed)
        run = work / "runs" / "widenet-overfit"
        logger = tensorboard.TensorBoardLogger(images=images[:64], activation_layers=["features.1.2"],
                                              histograms_every=10, graph=False)
        train.fit(models.build_model("widenet", dataset.num_classes), train_loader, test_loader, config, device,
                  run_dir=run, callbacks=[logger], progress=False)
        fig = plots.plot_learning_curves(run, title="overfitting: 300 training images (half mislabelled), "
                                                    "no augmentation")
        fig.savefig(args.out / "02_learning_curves.png", dpi=120)
        fig = histogram_figure(run / "tensorboard", ["weights/features.1.0.weight", "gradients/features.1.0.weight",
                                                     "activations/features.1.2"])
        fig.savefig(args.out / "02_histograms.png", dpi=120)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for path in sorted(args.out.glob("02_*.png")):
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
