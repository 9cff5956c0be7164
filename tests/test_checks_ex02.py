"""The Exercise02 self-checks pass on right answers and fail, in Japanese and to the point, on wrong ones."""

from __future__ import annotations

import pytest
import torch

from MyModules.checks import CheckFailed
from MyModules.checks import ex02 as check
from MyModules.models import WideNet
from MyModules.viz.tensorboard import TensorBoardLogger


def fails(fn, *args, match: str) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args)
    assert match in str(info.value), str(info.value)
    return str(info.value)


# --- log_histograms -------------------------------------------------------------------------------

def right_histograms(writer, model, step):
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), step)
    for name, buffer in model.named_buffers():
        if buffer.is_floating_point():
            writer.add_histogram(f"buffers/{name}", buffer, step)


def test_log_histograms_passes_on_named_parameters_and_buffers(capsys):
    check.log_histograms(right_histograms)
    assert "✅" in capsys.readouterr().out


def test_log_histograms_catches_the_seed_course_zip_bug():
    def zipped(writer, model, step):
        for name, param in zip(model.state_dict(), model.parameters()):
            writer.add_histogram(name, param, step)

    fails(check.log_histograms, zipped, match="zip")


@pytest.mark.parametrize("wrong, match", [
    (lambda w, m, s: [w.add_histogram(f"weights/{n}", p, s) for n, p in m.named_parameters()], "named_buffers"),
    (lambda w, m, s: None, "add_histogram"),
    (lambda w, m, s: right_histograms(w, m, 0), "step"),
    (lambda w, m, s: (_ for _ in ()).throw(NotImplementedError), "NotImplementedError"),
])
def test_log_histograms_names_the_mistake(wrong, match):
    fails(check.log_histograms, wrong, match=match)


# --- activation_hook ------------------------------------------------------------------------------

def hook_maker(transform):
    def make_hook(store, name):
        def hook(module, inputs, output):
            store[name] = transform(output)
        return hook
    return make_hook


def test_activation_hook_passes_on_a_detached_copy(capsys):
    check.activation_hook(hook_maker(lambda o: o.detach().clone()))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("transform, match", [
    (lambda o: o.detach(), ".clone()"),  # overwritten by the in-place ReLU that follows
    (lambda o: o, "detach"),
    (lambda o: o.detach().clone()[:, :1], "形"),
    (lambda o: o.detach().clone() * 2, "一致しません"),
])
def test_activation_hook_names_the_mistake(transform, match):
    fails(check.activation_hook, hook_maker(transform), match=match)


def test_activation_hook_wants_a_function_back():
    fails(check.activation_hook, lambda store, name: None, match="return hook")


# --- logger ---------------------------------------------------------------------------------------

def test_logger_check():
    model = WideNet()
    images = torch.zeros(4, 3, 32, 32)
    check.logger(TensorBoardLogger(images=images, activation_layers=["features.0.2", "features.1.2"]), model)
    fails(check.logger, None, model, match="logger")
    fails(check.logger, "logger", model, match="TensorBoardLogger")
    fails(check.logger, TensorBoardLogger(images=images, activation_layers=["features.0.2"]), model, match="2つ以上")
    fails(check.logger, TensorBoardLogger(images=images, activation_layers=["features.0.2", "conv9"]), model,
          match="conv9")
    fails(check.logger, TensorBoardLogger(images=images.to(torch.uint8), activation_layers=["features.0.2"]), model,
          match="uint8")
    fails(check.logger, TensorBoardLogger(), model, match="images")


# --- most_confused --------------------------------------------------------------------------------

def right_confused(confusion, classes, k=5):
    n = len(classes)
    cells = [(classes[i], classes[j], int(confusion[i, j])) for i in range(n) for j in range(n) if i != j]
    return sorted(cells, key=lambda c: c[2], reverse=True)[:k]


def test_most_confused_passes(capsys):
    check.most_confused(right_confused)
    assert "dog → cat" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda c, cl, k: sorted([(cl[i], cl[j], int(c[i, j])) for i in range(4) for j in range(4)],
                             key=lambda r: -r[2])[:k], "対角"),
    (lambda c, cl, k: [(p, t, n) for t, p, n in right_confused(c, cl, k)], "逆"),
    (lambda c, cl, k: right_confused(c, cl, k)[::-1], "多い順"),
    (lambda c, cl, k: None, "None"),
    (lambda c, cl, k: [1, 2, 3], "リスト"),
])
def test_most_confused_names_the_mistake(wrong, match):
    fails(check.most_confused, wrong, match=match)


# --- extension: images, PR curves, projector --------------------------------------------------------


def unnormalize(images, mean, std):
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return (images * std + mean).clamp(0, 1)


def right_images(writer, images, mean, std, step):
    writer.add_images("examples", unnormalize(images, mean, std), step)


def test_log_images_passes(capsys):
    check.log_images(right_images)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda w, x, m, s, step: w.add_images("examples", x, step), "正規化したまま"),
    (lambda w, x, m, s, step: w.add_images("examples", unnormalize(x, m, s) * 255, step), "1 を超えて"),
    (lambda w, x, m, s, step: [w.add_image(f"img/{i}", im, step) for i, im in enumerate(unnormalize(x, m, s))],
     "add_images です"),
    (lambda w, x, m, s, step: w.add_images("examples", ((x - torch.tensor(m).view(1, 3, 1, 1))
                                                        / torch.tensor(s).view(1, 3, 1, 1)).clamp(0, 1), step),
     "一致しません"),
    (lambda w, x, m, s, step: w.add_images("examples", unnormalize(x, m, s)), "step"),
])
def test_log_images_wrong_answers(wrong, match):
    fails(check.log_images, wrong, match=match)


def right_pr(writer, probs, labels, classes, step):
    for i, name in enumerate(classes):
        writer.add_pr_curve(f"pr/{name}", labels == i, probs[:, i], step)


def test_log_pr_curves_passes(capsys):
    check.log_pr_curves(right_pr)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda w, p, y, c, s: [w.add_pr_curve(f"pr/{n}", y == i, torch.log(p[:, i]), s) for i, n in enumerate(c)],
     "logits"),
    (lambda w, p, y, c, s: [w.add_pr_curve(f"pr/{n}", y, p[:, i], s) for i, n in enumerate(c)], "labels == i"),
    (lambda w, p, y, c, s: w.add_pr_curve("pr", y, p, s), "1 クラス 1 本"),
    (lambda w, p, y, c, s: [w.add_pr_curve(f"pr/{i}", y == i, p[:, i], s) for i in range(len(c))], "クラス名"),
    (lambda w, p, y, c, s: [w.add_pr_curve(f"pr/{n}", p[:, i], y == i, s) for i, n in enumerate(c)], "labels"),
])
def test_log_pr_curves_wrong_answers(wrong, match):
    fails(check.log_pr_curves, wrong, match=match)


def right_embedding(writer, features, labels, classes, images, mean, std, step):
    writer.add_embedding(torch.flatten(features, 1), metadata=[classes[i] for i in labels.tolist()],
                         label_img=unnormalize(images, mean, std), global_step=step)


def test_log_embedding_passes(capsys):
    check.log_embedding(right_embedding)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda w, f, y, c, x, m, s, step: w.add_embedding(f, metadata=[c[i] for i in y.tolist()],
                                                       label_img=unnormalize(x, m, s), global_step=step),
     "torch.flatten(features, 1)"),
    (lambda w, f, y, c, x, m, s, step: w.add_embedding(f.flatten(1), metadata=y.tolist(),
                                                       label_img=unnormalize(x, m, s), global_step=step), "クラス名"),
    (lambda w, f, y, c, x, m, s, step: w.add_embedding(f.flatten(1), metadata=c,
                                                       label_img=unnormalize(x, m, s), global_step=step), "6 個"),
    (lambda w, f, y, c, x, m, s, step: w.add_embedding(f.flatten(1), metadata=[c[i] for i in y.tolist()],
                                                       label_img=x, global_step=step), "label_img"),
    (lambda w, f, y, c, x, m, s, step: w.add_embedding(f.flatten(1), [c[i] for i in y.tolist()],
                                                       unnormalize(x, m, s)), "global_step=step"),
])
def test_log_embedding_wrong_answers(wrong, match):
    fails(check.log_embedding, wrong, match=match)


def test_extension_answers_work_with_the_real_summary_writer(tmp_path):
    """The model answers above run against torch's SummaryWriter (what the notebook uses)."""
    from torch.utils.tensorboard import SummaryWriter

    from MyModules.viz import tensorboard as tb_logging

    raw, images = check._example_batch(6)
    probs = torch.softmax(torch.randn(6, 3), dim=1)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    with SummaryWriter(tmp_path) as writer:
        right_images(writer, images, check._MEAN, check._STD, 1)
        right_pr(writer, probs, labels, ["cat", "dog", "bird"], 1)
        right_embedding(writer, torch.randn(6, 4, 2, 2), labels, ["cat", "dog", "bird"], images, check._MEAN,
                        check._STD, 1)
    assert tb_logging.has_events(tmp_path)
    assert list(tmp_path.rglob("projector_config.pbtxt")) or list(tmp_path.rglob("metadata.tsv"))


def test_activation_hook_saving_the_input_is_named():
    def make_hook(store, name):
        def hook(module, inputs, output):
            store[name] = inputs[0].detach().clone()
        return hook

    fails(check.activation_hook, make_hook, match="inputs[0]")


def test_most_confused_ignoring_k_is_named():
    fails(check.most_confused, lambda c, cl, k: right_confused(c, cl, 5), match="k 組")


# --- more wrong answers per blank (issue 24: at least three realistic ones each, named in Japanese) -----


def histograms_of_grads(writer, model, step):  # the gradient instead of the weight: None before backward
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.grad, step)


def histograms_under_one_tag(writer, model, step):
    for _, param in model.named_parameters():
        writer.add_histogram("weights", param.detach(), step)


def histograms_with_the_counter(writer, model, step):  # forgot `if buffer.is_floating_point()`
    for name, param in model.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), step)
    for name, buffer in model.named_buffers():
        writer.add_histogram(f"buffers/{name}", buffer, step)


def histograms_by_index(writer, model, step):  # enumerate(model.parameters()): numbers, not names
    for i, param in enumerate(model.parameters()):
        writer.add_histogram(f"weights/{i}", param.detach(), step)


@pytest.mark.parametrize("wrong, match", [
    (histograms_of_grads, "param.grad"),
    (histograms_under_one_tag, "1 つのタグに 1 つのテンソル"),
    (histograms_with_the_counter, "num_batches_tracked"),
    (histograms_by_index, "named_parameters() が返す名前"),
])
def test_log_histograms_more_wrong_answers(wrong, match):
    fails(check.log_histograms, wrong, match=match)


def test_activation_hook_that_returns_a_value_is_named():
    def make_hook(store, name):
        def hook(module, inputs, output):
            store[name] = output.detach().clone()
            return store[name]  # replaces the layer's output (and cuts the graph)
        return hook

    fails(check.activation_hook, make_hook, match="return しています")


def test_activation_hook_with_a_fixed_key_is_named():
    def make_hook(store, name):
        def hook(module, inputs, output):
            store["features.0.2"] = output.detach().clone()  # ignores its argument
        return hook

    fails(check.activation_hook, make_hook, match="store[name] ではなく store['features.0.2']")


def test_activation_hook_appending_to_a_list_is_named():
    def make_hook(store, name):
        def hook(module, inputs, output):
            store.setdefault(name, []).append(output.detach().clone())
        return hook

    fails(check.activation_hook, make_hook, match="append")


@pytest.mark.parametrize("layers, match", [
    ("features.0.2", "リストにしてください"),  # one string: a list of characters
    (None, "層そのもの"),  # the module objects (filled in below)
    (["features.0.1", "features.0.2"], "同じブロック"),  # both from the first block
])
def test_logger_more_wrong_answers(layers, match):
    model = WideNet()
    if layers is None:
        layers = [model.features[0][2], model.features[1][2]]
    logger = TensorBoardLogger(images=torch.zeros(4, 3, 32, 32), activation_layers=layers)
    fails(check.logger, logger, model, match=match)


def test_logger_passes_on_the_notebook_answer(capsys):
    model = WideNet()
    check.logger(TensorBoardLogger(images=torch.zeros(64, 3, 32, 32),
                                   activation_layers=["features.0.2", "features.1.2"], hparams={"model": "widenet"}),
                 model)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    # indices i, j instead of classes[i], classes[j]
    (lambda c, cl, k: [(int(cl.index(t)), int(cl.index(p)), n) for t, p, n in right_confused(c, cl, k)], "クラス名"),
    # the normalised (row fraction) matrix instead of the counts
    (lambda c, cl, k: right_confused(c / c.sum(1, keepdim=True), cl, k) and
     [(t, p, float(c[cl.index(t), cl.index(p)] / c[cl.index(t)].sum())) for t, p, _ in right_confused(c, cl, k)],
     "割合"),
    # (true, predicted) pairs without the count
    (lambda c, cl, k: [(t, p) for t, p, _ in right_confused(c, cl, k)], "(正解クラス, 予測クラス, 件数)"),
])
def test_most_confused_more_wrong_answers(wrong, match):
    fails(check.most_confused, wrong, match=match)


def test_log_images_without_clamp_passes(capsys):
    """x * std + mean without .clamp(0, 1) is the right picture up to float rounding: not a mistake."""
    def no_clamp(writer, images, mean, std, step):
        writer.add_images("examples", images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1),
                          step)

    check.log_images(no_clamp)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    # std and mean as (3,) tensors: broadcast against the width, not the channels
    (lambda w, x, m, s, step: w.add_images("examples", (x * torch.tensor(s) + torch.tensor(m)).clamp(0, 1), step),
     ".view(1, 3, 1, 1)"),
    # the tuples themselves
    (lambda w, x, m, s, step: w.add_images("examples", (x * s + m).clamp(0, 1), step), "mean と std はタプル"),
])
def test_log_images_broadcasting_mistakes(wrong, match):
    fails(check.log_images, wrong, match=match)


def test_log_pr_curves_with_hard_predictions_is_named():
    def hard(writer, probs, labels, classes, step):
        for i, name in enumerate(classes):
            writer.add_pr_curve(f"pr/{name}", labels == i, (probs.argmax(1) == i).float(), step)

    fails(check.log_pr_curves, hard, match="0 か 1 の予測")


def test_log_embedding_broadcasting_mistake_is_named():
    def no_view(writer, features, labels, classes, images, mean, std, step):
        writer.add_embedding(torch.flatten(features, 1), metadata=[classes[i] for i in labels.tolist()],
                             label_img=images * torch.tensor(std) + torch.tensor(mean), global_step=step)

    fails(check.log_embedding, no_view, match=".view(1, 3, 1, 1)")
