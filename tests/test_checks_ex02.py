"""The Exercise02 self-checks pass on right answers and fail, in Japanese and to the point, on wrong ones."""

from __future__ import annotations

import pytest
import torch

from MyModules.checks import CheckFailed
from MyModules.checks import ex02 as check
from MyModules.models import WideNet
from MyModules.tb_logging import TensorBoardLogger


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
