"""Draw the figures of session 1 (docs/01_preparation.md) into fig/.

    python tools/make_fig01.py                 # all three figures
    python tools/make_fig01.py --data-dir DIR  # use real CIFAR-10 from DIR/cifar-10-batches-py

* ``fig/01_data_grid.png``      eight images of each class, real CIFAR-10 if found, else the
                                generated test data (the figure then says so)
* ``fig/01_network.png``        the tutorial ``Net`` as blocks, shapes measured by running it
* ``fig/01_learning_curve.png`` loss and accuracy of a short CPU run of ``Net`` and ``WideNet``
                                on the generated data (a few minutes on 2 cores)

Text in the figures is English: Colab and CI machines have no Japanese font by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MyModules import data, env, loader, models, train  # noqa: E402

FIG = ROOT / "fig"


def load_data(data_dir: Path | None, scratch: Path) -> tuple[data.Dataset, bool]:
    """Real CIFAR-10 when its files are in ``data_dir`` (or the course folder), else generated data."""
    candidates = [data_dir] if data_dir else [env.course_dir(mount=False) / "data"]
    for folder in candidates:
        if (folder / "cifar-10-batches-py" / "batches.meta").exists():
            return data.load_dataset("cifar10", folder, download=False, test_mode=False), True
    return data.load_dataset("synthetic", scratch, test_mode=False), False


def data_grid(dataset: data.Dataset, real: bool, path: Path, per_class: int = 8) -> None:
    """``per_class`` training images of each class, one row per class, class names on the left."""
    labels = dataset.train.labels
    fig, axes = plt.subplots(dataset.num_classes, per_class, figsize=(per_class * 0.9 + 1.6, dataset.num_classes * 0.9))
    for k, name in enumerate(dataset.classes):
        index = torch.nonzero(labels == k).flatten()[:per_class]
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j < len(index):
                ax.imshow(dataset.train.images[index[j]].permute(1, 2, 0).numpy())  # uint8 (H, W, C)
        axes[k, 0].set_ylabel(f"{k}: {name}", rotation=0, ha="right", va="center", fontsize=10)
    source = "CIFAR-10 training images" if real else "generated test data (COURSE_TEST_MODE), CIFAR-10 class names"
    fig.suptitle(f"{source}: label = row", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def layer_shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, output shape without batch) of each leaf layer, in the order forward uses them."""
    shapes: list[tuple[str, tuple[int, ...]]] = [("input", (3, 32, 32))]
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        shapes.append((names[module], tuple(output.shape[1:])))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return shapes


def network(path: Path) -> None:
    """The tutorial Net: feature maps as boxes (height ~ spatial size), vectors as bars, shapes measured."""
    shapes = layer_shapes(models.Net())
    # Net.forward flattens between pool and fc1 with torch.flatten (not a module): insert it by hand.
    at = next(i for i, (name, _) in enumerate(shapes) if name == "fc1")
    shapes.insert(at, ("flatten", (shapes[at - 1][1][0] * shapes[at - 1][1][1] * shapes[at - 1][1][2],)))
    what = {"input": "image", "conv1": "Conv2d(3, 6, 5)\n+ ReLU", "conv2": "Conv2d(6, 16, 5)\n+ ReLU",
            "pool": "MaxPool2d(2, 2)", "flatten": "flatten", "fc1": "Linear(400, 120)\n+ ReLU",
            "fc2": "Linear(120, 84)\n+ ReLU", "fc3": "Linear(84, 10)"}
    colors = {"input": "#9ecae1", "conv1": "#fdae6b", "conv2": "#fdae6b", "pool": "#a1d99b",
              "flatten": "#d9d9d9", "fc1": "#bcbddc", "fc2": "#bcbddc", "fc3": "#bcbddc"}
    fig, ax = plt.subplots(figsize=(13, 4.2))
    x, gap, previous = 0.0, 0.55, None
    for name, shape in shapes:
        if len(shape) == 3:
            c, h, _ = shape
            height = 0.6 + 2.4 * h / 32  # box height follows the spatial size
            width = 0.35 + 0.06 * c  # box width follows the channels
            label = f"{c}×{h}×{shape[2]}"
        else:
            height = 0.6 + 2.4 * min(shape[0], 400) / 400
            width = 0.35
            label = f"{shape[0]}"
        ax.add_patch(Rectangle((x, -height / 2), width, height, facecolor=colors[name], edgecolor="#333333"))
        ax.text(x + width / 2, height / 2 + 0.12, label, ha="center", va="bottom", fontsize=9, fontweight="bold")
        ax.text(x + width / 2, -1.75, what[name], ha="center", va="top", fontsize=8.5)
        if previous is not None:
            ax.add_patch(FancyArrowPatch((previous, 0), (x, 0), arrowstyle="-|>", mutation_scale=12, color="#555555"))
        previous = x + width
        x += width + gap
    ax.text(0, 2.0, "Tutorial Net (62,006 parameters): shapes are (channels × height × width) for one image",
            fontsize=11, ha="left")
    ax.text(x - gap, -2.55, "10 scores, one per class", ha="right", fontsize=9, style="italic")
    ax.set_xlim(-0.3, x)
    ax.set_ylim(-2.8, 2.4)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curve(dataset: data.Dataset, real: bool, path: Path, epochs: int = 8) -> None:
    """Train Net and WideNet (BatchNorm) with the same settings on CPU and plot their curves."""
    config = train.TrainConfig(epochs=epochs, batch_size=128, lr=0.02)
    train_loader, test_loader = loader.make_loaders(dataset, config.batch_size, "cpu")
    histories = {}
    for name in ("net", "widenet"):
        torch.manual_seed(config.seed)
        result = train.fit(models.build_model(name), train_loader, test_loader, config, "cpu", progress=False)
        histories[name] = result.history
        print(f"{name}: test accuracy {result.history[-1]['test_accuracy']:.1f} %")
    labels = {"net": "Net (tutorial)", "widenet": "WideNet (wider + padding + BatchNorm)"}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, history in histories.items():
        epoch = [r["epoch"] for r in history]
        line, = ax_loss.plot(epoch, [r["train_loss"] for r in history], "o-", label=f"{labels[name]}, train")
        ax_loss.plot(epoch, [r["test_loss"] for r in history], "s--", color=line.get_color(),
                     label=f"{labels[name]}, test")
        ax_acc.plot(epoch, [r["test_accuracy"] for r in history], "o-", color=line.get_color(), label=labels[name])
    ax_loss.set(xlabel="epoch", ylabel="loss (cross-entropy)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    source = "CIFAR-10" if real else "generated data (2,500 train / 500 test images)"
    fig.suptitle(f"Learning curves on {source}, batch 128, SGD one-cycle lr 0.02, CPU", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder that holds cifar-10-batches-py/")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the learning-curve run")
    parser.add_argument("--only", choices=("grid", "network", "curve"), help="draw one figure only")
    args = parser.parse_args(argv)
    os.environ.pop(env.TEST_MODE_VAR, None)  # the figures show full runs, not test-mode caps
    FIG.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.only in (None, "network"):
            network(FIG / "01_network.png")
        if args.only in (None, "grid", "curve"):
            dataset, real = load_data(args.data_dir, Path(scratch))
            if args.only in (None, "grid"):
                data_grid(dataset, real, FIG / "01_data_grid.png")
            if args.only in (None, "curve"):
                learning_curve(dataset, real, FIG / "01_learning_curve.png", args.epochs)
    for name in ("01_data_grid.png", "01_network.png", "01_learning_curve.png"):
        print("wrote" if (FIG / name).exists() else "missing", FIG / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
