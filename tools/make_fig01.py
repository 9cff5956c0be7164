"""Draw the figures of session 1 (docs/01_preparation.md) into fig/.

    python tools/make_fig01.py                 # all figures
    python tools/make_fig01.py --data-dir DIR  # use real CIFAR-10 from DIR/cifar-10-batches-py
    python tools/make_fig01.py --only colab    # the four Colab pictures (seconds, no training)

* ``fig/01_data_grid.png``      eight images of each class, real CIFAR-10 if found, else the
                                generated test data (the figure then says so)
* ``fig/01_network.png``        the tutorial ``Net`` as blocks, shapes measured by running it
* ``fig/01_learning_curve.png`` loss and accuracy of a short CPU run of ``Net`` and ``WideNet``
                                on the generated data (a few minutes on 2 cores)
* ``fig/01_colab_*.png``        the Colab steps of docs/01 section 1, drawn as schematics (not screenshots):
                                open from GitHub, save a copy to Drive, change the runtime to a T4 GPU,
                                allow the Drive mount. Labels follow Colab's English menus; the guide gives
                                the Japanese ones next to each picture.

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
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

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


# ------------------------------------------------------------------------------------------------
# The Colab steps (docs/01 section 1): schematic drawings of the screens, numbered in the order of the clicks
# ------------------------------------------------------------------------------------------------

ACCENT = "#e8710a"  # the colour of what to click (Colab's own orange)
PANEL, EDGE, MUTED = "#f8f9fa", "#5f6368", "#80868b"


def _canvas(width: float, height: float):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def _window(ax, x: float, y: float, w: float, h: float, title: str) -> None:
    """A browser or dialog window: a frame with a title bar (y is the bottom edge)."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", facecolor="white",
                                edgecolor=EDGE, linewidth=1.2))
    ax.add_patch(Rectangle((x, y + h - 0.35), w, 0.35, facecolor="#e8eaed", edgecolor=EDGE, linewidth=1.2))
    ax.text(x + 0.15, y + h - 0.175, title, va="center", fontsize=9, color="#202124")


def _box(ax, x: float, y: float, w: float, h: float, text: str, *, clicked: bool = False, fontsize: float = 9,
         face: str = PANEL, ha: str = "left") -> None:
    """A menu item, button or field; ``clicked`` draws it in the accent colour."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor="#fde7d4" if clicked else face,
                           edgecolor=ACCENT if clicked else "#dadce0", linewidth=2 if clicked else 1))
    ax.text(x + (0.12 if ha == "left" else w / 2), y + h / 2, text, va="center", ha=ha, fontsize=fontsize,
            color="#202124", fontweight="bold" if clicked else "normal")


def _step(ax, x: float, y: float, number: int) -> None:
    """The number of a click, in a circle next to what to click."""
    ax.add_patch(Circle((x, y), 0.17, facecolor=ACCENT, edgecolor="white", linewidth=1.5, zorder=5))
    ax.text(x, y, str(number), ha="center", va="center", fontsize=9, color="white", fontweight="bold", zorder=6)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, color=ACCENT, linewidth=2))


def _menu_bar(ax, x: float, y: float, open_item: str) -> dict[str, float]:
    """Colab's menu bar; returns the x position of each menu."""
    positions, cursor = {}, x
    for name in ("File", "Edit", "View", "Insert", "Runtime", "Tools", "Help"):
        positions[name] = cursor
        ax.text(cursor, y, name, fontsize=9, va="center", color="#202124",
                fontweight="bold" if name == open_item else "normal")
        cursor += 0.25 + 0.09 * len(name)
    return positions


def _footer(fig, text: str) -> None:
    fig.text(0.01, 0.015, text, fontsize=7.5, color=MUTED, style="italic")


def colab_open(path: Path) -> None:
    """From the README's table on GitHub to the notebook in Colab."""
    fig, ax = _canvas(10, 3.6)
    _window(ax, 0.2, 0.45, 4.6, 2.9, "github.com/<course repository>  (README.md)")
    ax.text(0.4, 2.7, "Notebook", fontsize=8.5, color=MUTED)
    ax.text(2.6, 2.7, "Colab", fontsize=8.5, color=MUTED)
    for row, name in enumerate(("Exercise01/01_01_tutorial.ipynb", "Exercise01/01_02_tutorial_gpu.ipynb",
                                "Exercise01/01_03_vgg.ipynb")):
        y = 2.25 - 0.5 * row
        ax.text(0.4, y + 0.15, name, fontsize=7.5, color="#1a73e8")
        ax.add_patch(Rectangle((3.1, y), 0.55, 0.3, facecolor="#5f6368", edgecolor="none"))
        ax.add_patch(Rectangle((3.65, y), 0.95, 0.3, facecolor="#f9ab00" if row else ACCENT, edgecolor="none"))
        ax.text(3.375, y + 0.15, "Open in", fontsize=6, color="white", ha="center", va="center")
        ax.text(4.125, y + 0.15, "Colab", fontsize=7, color="white", ha="center", va="center", fontweight="bold")
    _step(ax, 4.85, 2.4, 1)
    _arrow(ax, (5.0, 2.4), (5.6, 2.4))
    _window(ax, 5.7, 0.45, 4.1, 2.9, "colab.research.google.com/github/...")
    ax.text(5.9, 2.7, "01_01_tutorial.ipynb", fontsize=9, fontweight="bold")
    _menu_bar(ax, 5.9, 2.35, "")
    ax.add_patch(Rectangle((5.9, 1.55), 3.7, 0.55, facecolor=PANEL, edgecolor="#dadce0"))
    ax.text(6.0, 1.82, "# 01_01 ...  (the notebook from GitHub)", fontsize=8, color=MUTED)
    ax.add_patch(Rectangle((5.9, 0.75), 3.7, 0.6, facecolor="#f1f3f4", edgecolor="#dadce0"))
    ax.text(6.0, 1.05, "\u25b6  setup cell", fontsize=8, color="#202124")
    ax.text(7.75, 0.2, "not saved yet: make your own copy next", fontsize=8, color=ACCENT, ha="center")
    _footer(fig, "Schematic drawing (not a screenshot). Button and menu names as in Colab's English menus.")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def colab_save_copy(path: Path) -> None:
    """File -> Save a copy in Drive; the copy opens in a new tab, in My Drive/Colab Notebooks."""
    fig, ax = _canvas(10, 4.0)
    _window(ax, 0.2, 0.3, 5.6, 3.5, "01_01_tutorial.ipynb - Colab")
    menus = _menu_bar(ax, 0.75, 3.2, "File")
    _step(ax, menus["File"] - 0.25, 3.2, 1)
    items = ["New notebook", "Open notebook", "Upload notebook", "Rename", "Save a copy in Drive",
             "Save a copy as a GitHub Gist", "Download"]
    for i, item in enumerate(items):
        _box(ax, 0.75, 2.75 - 0.34 * (i + 1), 2.9, 0.32, item, clicked=item == "Save a copy in Drive")
    _step(ax, 3.85, 2.75 - 0.34 * 5 + 0.16, 2)
    _arrow(ax, (4.05, 1.2), (6.1, 1.9))
    _window(ax, 6.2, 1.2, 3.6, 2.0, "Copy of 01_01_tutorial.ipynb")
    ax.text(6.4, 2.45, "a new tab: your own notebook", fontsize=8.5, color="#202124")
    ax.text(6.4, 2.05, "saved in  My Drive / Colab Notebooks", fontsize=8.5, color="#202124")
    ax.text(6.4, 1.65, "work here (changes are saved)", fontsize=8.5, color=ACCENT, fontweight="bold")
    _footer(fig, "Schematic drawing (not a screenshot). Menu names as in Colab's English menus.")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def colab_runtime(path: Path) -> None:
    """Runtime -> Change runtime type -> T4 GPU -> Save."""
    fig, ax = _canvas(10, 4.0)
    _window(ax, 0.2, 0.3, 5.4, 3.5, "Copy of 01_02_tutorial_gpu.ipynb - Colab")
    menus = _menu_bar(ax, 0.4, 3.2, "Runtime")
    _step(ax, menus["Runtime"] - 0.14, 3.2, 1)
    items = ["Run all", "Run before", "Interrupt execution", "Restart session", "Change runtime type",
             "Disconnect and delete runtime"]
    x = menus["Runtime"] - 0.05
    for i, item in enumerate(items):
        _box(ax, x, 2.75 - 0.34 * (i + 1), 2.55, 0.32, item, clicked=item == "Change runtime type", fontsize=8.5)
    _step(ax, x + 2.7, 2.75 - 0.34 * 5 + 0.16, 2)
    _arrow(ax, (x + 2.87, 1.22), (5.85, 1.22))
    _window(ax, 5.9, 0.3, 3.9, 3.5, "Change runtime type")
    ax.text(6.1, 3.0, "Runtime type:  Python 3", fontsize=8.5)
    ax.text(6.1, 2.6, "Hardware accelerator", fontsize=8.5, fontweight="bold")
    for i, option in enumerate(("CPU", "T4 GPU", "(other GPUs, TPUs)")):
        y = 2.2 - 0.42 * i
        chosen = option == "T4 GPU"
        ax.add_patch(Circle((6.25, y), 0.09, facecolor=ACCENT if chosen else "white", edgecolor=EDGE))
        ax.text(6.45, y, option, va="center", fontsize=8.5, fontweight="bold" if chosen else "normal")
    _step(ax, 7.5, 2.2 - 0.42, 3)
    _box(ax, 7.6, 0.5, 0.9, 0.38, "Cancel", ha="center")
    _box(ax, 8.65, 0.5, 0.9, 0.38, "Save", clicked=True, ha="center")
    _step(ax, 9.7, 0.69, 4)
    _footer(fig, "Schematic drawing (not a screenshot). Then run the setup cell again: the new runtime starts empty.")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def colab_mount(path: Path) -> None:
    """The Drive mount: connect, choose the same account, allow everything."""
    fig, ax = _canvas(10, 3.6)
    _window(ax, 0.2, 0.45, 3.5, 2.9, "Colab")
    ax.text(0.4, 2.6, "Permit this notebook to access", fontsize=8.5, fontweight="bold")
    ax.text(0.4, 2.3, "your Google Drive files?", fontsize=8.5, fontweight="bold")
    _box(ax, 0.4, 0.8, 1.2, 0.4, "No thanks", ha="center")
    _box(ax, 1.7, 0.8, 1.85, 0.4, "Connect to Google Drive", clicked=True, ha="center", fontsize=7.5)
    _step(ax, 2.62, 1.4, 1)
    _arrow(ax, (3.75, 1.9), (4.05, 1.9))
    _window(ax, 4.1, 0.45, 2.8, 2.9, "Choose an account")
    _box(ax, 4.3, 2.15, 2.4, 0.45, "you@... (the notebook's)", clicked=True, fontsize=7.5)
    _box(ax, 4.3, 1.55, 2.4, 0.45, "another account", fontsize=7.5)
    _step(ax, 6.85, 2.38, 2)
    _arrow(ax, (6.95, 1.9), (7.25, 1.9))
    _window(ax, 7.3, 0.45, 2.5, 2.9, "Allow access (Google)")
    for i in range(3):
        y = 2.45 - 0.38 * i
        ax.add_patch(Rectangle((7.5, y - 0.1), 0.2, 0.2, facecolor=ACCENT, edgecolor=EDGE))
        ax.text(7.8, y, "allow ...", va="center", fontsize=8)
    ax.text(7.5, 1.2, "select all", fontsize=8, color=ACCENT, fontweight="bold")
    _box(ax, 8.55, 0.6, 1.1, 0.38, "Continue", clicked=True, ha="center")
    _step(ax, 9.72, 1.15, 3)
    _footer(fig, "Schematic drawing (not a screenshot). Success: the setup cell prints "
                 "'course folder: /content/drive/MyDrive/pytorch-course (Google Drive)'.")
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLAB_FIGURES = {"01_colab_open.png": colab_open, "01_colab_save_copy.png": colab_save_copy,
                 "01_colab_runtime.png": colab_runtime, "01_colab_mount.png": colab_mount}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder that holds cifar-10-batches-py/")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the learning-curve run")
    parser.add_argument("--only", choices=("grid", "network", "curve", "colab"), help="draw one figure (or the Colab set) only")
    args = parser.parse_args(argv)
    os.environ.pop(env.TEST_MODE_VAR, None)  # the figures show full runs, not test-mode caps
    FIG.mkdir(exist_ok=True)
    if args.only in (None, "colab"):
        for name, draw in COLAB_FIGURES.items():
            draw(FIG / name)
    with tempfile.TemporaryDirectory() as scratch:
        if args.only in (None, "network"):
            network(FIG / "01_network.png")
        if args.only in (None, "grid", "curve"):
            dataset, real = load_data(args.data_dir, Path(scratch))
            if args.only in (None, "grid"):
                data_grid(dataset, real, FIG / "01_data_grid.png")
            if args.only in (None, "curve"):
                learning_curve(dataset, real, FIG / "01_learning_curve.png", args.epochs)
    for name in ("01_data_grid.png", "01_network.png", "01_learning_curve.png", *COLAB_FIGURES):
        print("wrote" if (FIG / name).exists() else "missing", FIG / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
