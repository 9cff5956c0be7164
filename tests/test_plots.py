"""Plots and their numbers: confusion matrix and per-class accuracy against an independent count."""

from __future__ import annotations

import csv

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.colors import to_hex
from PIL import Image

from MyModules.loader import make_loaders, normalize
from MyModules.models import Net, WideNet
from MyModules.train import TrainConfig, evaluate, fit
from MyModules.viz.plots import (
    RIGHT,
    WRONG,
    class_probabilities,
    most_confident_mistakes,
    most_confused_pairs,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_filters,
    plot_learning_curves,
    plot_predictions,
    save_confusion_csv,
    save_run_plots,
)

CLASSES = [f"c{i}" for i in range(5)]




@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def counts_by_loop(predictions, labels, k):
    table = [[0] * k for _ in range(k)]
    for p, t in zip(predictions.tolist(), labels.tolist()):
        table[t][p] += 1
    return table


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def random_confusion(seed=0, n=400, k=5):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    predictions = torch.where(torch.rand(n, generator=g) < 0.6, labels, torch.randint(0, k, (n,), generator=g))
    return predictions, labels


def test_confusion_csvs_match_an_independent_count(tmp_path):
    from MyModules.metrics import confusion_matrix

    predictions, labels = random_confusion()
    expected = counts_by_loop(predictions, labels, 5)
    paths = save_confusion_csv(confusion_matrix(predictions, labels, 5), CLASSES, tmp_path)
    counts = read_csv(paths["confusion_counts"])
    assert counts[0] == ["true \\ predicted", *CLASSES]
    assert [row[0] for row in counts[1:]] == CLASSES
    assert [[int(v) for v in row[1:]] for row in counts[1:]] == expected
    fractions = read_csv(paths["confusion_normalized"])
    for row, exp in zip(fractions[1:], expected):
        assert [float(v) for v in row[1:]] == pytest.approx([c / sum(exp) for c in exp], abs=1e-6)
    per_class = read_csv(paths["per_class_accuracy"])
    for i, row in enumerate(per_class[1:]):
        correct = sum(1 for p, t in zip(predictions.tolist(), labels.tolist()) if t == i and p == i)
        total = sum(1 for t in labels.tolist() if t == i)
        assert row == [CLASSES[i], str(total), str(correct), row[3]]
        assert float(row[3]) == pytest.approx(100 * correct / total, abs=1e-4)


def test_confusion_plot_shows_counts_or_row_fractions():
    from MyModules.metrics import confusion_matrix

    predictions, labels = random_confusion(1)
    confusion = confusion_matrix(predictions, labels, 5)
    expected = counts_by_loop(predictions, labels, 5)
    counts_fig = plot_confusion_matrix(confusion, CLASSES, normalize=False)
    shown = counts_fig.axes[0].images[0].get_array()
    assert shown.tolist() == expected
    texts = [t.get_text() for t in counts_fig.axes[0].texts]
    assert texts == [str(v) for row in expected for v in row]
    fractions = plot_confusion_matrix(confusion, CLASSES).axes[0].images[0].get_array()
    assert fractions.sum(1).tolist() == pytest.approx([1.0] * 5)
    assert [tick.get_text() for tick in counts_fig.axes[0].get_yticklabels()] == CLASSES


def test_save_run_plots_writes_everything_and_agrees_with_evaluate(dataset, tmp_path):
    model = WideNet(width=4)
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    fit(model, train_loader, test_loader, TrainConfig(epochs=2, max_steps_per_epoch=3), "cpu",
        run_dir=tmp_path, progress=False)
    paths = save_run_plots(tmp_path, model, dataset, "cpu")
    expected = {"learning_curves", "confusion_matrix", "confusion_counts", "confusion_normalized",
                "per_class_accuracy", "predictions", "confident_mistakes", "filters", "feature_maps"}
    assert set(paths) == expected
    for name, path in paths.items():
        assert path.parent == tmp_path and path.stat().st_size > 0, name
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert image.size[0] > 200 and image.size[1] > 100, name
    assert plt.get_fignums() == []  # nothing left open in a long CLI process
    # The counts in the CSV agree with evaluate() on the test loader and with a loop over predictions.
    result = evaluate(model, torch.device("cpu"), test_loader, num_classes=10)
    counts = [[int(v) for v in row[1:]] for row in read_csv(paths["confusion_counts"])[1:]]
    assert counts == result["confusion"].tolist()
    with torch.no_grad():
        logits = model.eval()(normalize(dataset.test.images, dataset.mean, dataset.std))
    assert counts == counts_by_loop(logits.argmax(1), dataset.test.labels, 10)


def test_class_probabilities_are_the_model_s_in_eval_mode(dataset):
    model = WideNet(width=4).train()
    images = dataset.test.images[:50]
    probs = class_probabilities(model, images, dataset.mean, dataset.std, "cpu", batch_size=16)
    assert model.training  # mode restored
    assert probs.shape == (50, 10) and probs.sum(1) == pytest.approx(torch.ones(50), abs=1e-5)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(normalize(images, dataset.mean, dataset.std)), 1)
    assert torch.allclose(probs, expected, atol=1e-5)


def test_most_confident_mistakes_by_brute_force():
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(200, 5, generator=g), 1)
    labels = torch.randint(0, 5, (200,), generator=g)
    picked = most_confident_mistakes(probs, labels, k=10).tolist()
    wrong = [i for i in range(200) if probs[i].argmax().item() != labels[i].item()]
    by_confidence = sorted(wrong, key=lambda i: -probs[i].max().item())
    assert picked == by_confidence[:10]
    assert most_confident_mistakes(probs, probs.argmax(1)).numel() == 0  # no mistakes, nothing to show


def test_most_confused_pairs_skips_the_diagonal():
    confusion = torch.tensor([[50, 3, 9], [1, 40, 0], [12, 2, 99]])
    assert most_confused_pairs(confusion, ["a", "b", "c"], k=3) == [("c", "a", 12), ("a", "c", 9), ("a", "b", 3)]
    assert most_confused_pairs(torch.eye(3, dtype=torch.int64) * 5, ["a", "b", "c"]) == []


def test_prediction_grid_colours_right_green_and_wrong_red(dataset):
    images, labels = dataset.test.images[:6], dataset.test.labels[:6]
    probs = torch.nn.functional.one_hot(labels, 10).float()
    probs[1] = torch.nn.functional.one_hot((labels[1] + 1) % 10, 10).float()  # one wrong
    fig = plot_predictions(images, labels, probs, dataset.classes, ncols=3)
    titles = [ax.title for ax in fig.axes[:6]]
    assert [to_hex(t.get_color()) for t in titles] == [RIGHT, WRONG, RIGHT, RIGHT, RIGHT, RIGHT]
    assert titles[1].get_text().endswith(f"true: {dataset.classes[labels[1]]}")
    assert titles[0].get_text().startswith(f"{dataset.classes[labels[0]]} 100%")


def test_learning_curves_plot_the_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n"
        "1,2.0,30.0,1.8,35.0,1.0\n2,1.2,60.0,1.3,55.0,1.0\n3,0.6,80.0,1.5,54.0,1.0\n")
    fig = plot_learning_curves(tmp_path)
    loss, accuracy = fig.axes[:2]
    assert list(loss.lines[0].get_ydata()) == [2.0, 1.2, 0.6]
    assert list(loss.lines[1].get_ydata()) == [1.8, 1.3, 1.5]
    assert list(accuracy.lines[1].get_ydata()) == [35.0, 55.0, 54.0]
    assert len(fig.axes) == 2  # no lr column, no lr panel
    history = [{"epoch": 1, "train_loss": 1, "train_accuracy": 1, "test_loss": 1, "test_accuracy": 1, "lr": 0.1}]
    assert len(plot_learning_curves(history).axes) == 3
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        plot_learning_curves(tmp_path / "nothing")


def test_filters_and_feature_maps_show_every_channel(dataset):
    model = Net()
    fig = plot_filters(model)
    assert len([ax for ax in fig.axes if ax.images]) == 6  # conv1 has 6 filters
    fig = plot_feature_maps(model, dataset.test.images[0], dataset.mean, dataset.std, layer="conv2")
    assert len([ax for ax in fig.axes if ax.images]) == 1 + 16  # the input and conv2's 16 channels
    with pytest.raises(ValueError, match="conv-like"):
        plot_feature_maps(model, dataset.test.images[0], dataset.mean, dataset.std, layer="fc1")


# --- Japanese text ---------------------------------------------------------------------------------


def _glyph_warnings(family=None) -> list[str]:
    """Draw a figure with Japanese title, labels and legend; the missing-glyph warnings matplotlib gave."""
    import warnings

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label="学習 (train)")
    ax.set_title("正解率と損失", family=family)
    ax.set_xlabel("エポック", family=family)
    ax.legend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_japanese_labels_render_without_missing_glyphs():
    from MyModules.viz import plots

    before = dict(plt.rcParams)
    try:
        assert plots.use_japanese_font()
        assert _glyph_warnings() == []
    finally:
        plt.rcParams.update(before)


def test_importing_plots_changes_no_matplotlib_setting_and_its_figures_still_speak_japanese():
    import subprocess
    import sys

    script = ("import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
              "before = dict(plt.rcParams); from MyModules.viz import plots; "
              "assert dict(plt.rcParams) == before, 'import changed rcParams'; "
              "fig = plots.plot_learning_curves([{'epoch': 1, 'train_loss': 1.0, 'test_loss': 1.0, "
              "'train_accuracy': 50.0, 'test_accuracy': 50.0}], title='学習曲線 (正解率)'); "
              "assert dict(plt.rcParams) == before, 'a plot changed rcParams'; "
              "import warnings; warnings.simplefilter('error'); fig.canvas.draw(); print('ok')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_the_glyph_check_sees_missing_glyphs_in_a_latin_only_font():
    from MyModules.viz import plots

    plots.use_japanese_font()  # the course font is there, but DejaVu Sans is asked for by name

    missing = _glyph_warnings(family="DejaVu Sans")
    assert missing and all("CJK UNIFIED IDEOGRAPH" in m or "KATAKANA" in m or "HIRAGANA" in m for m in missing), missing
