"""The Exercise01 self-checks pass on right answers and fail, in Japanese and to the point, on wrong ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from MyModules.checks import CheckFailed
from MyModules.checks import ex01 as check
from MyModules.models import VGG_CONFIGS


def fails(fn, *args, match: str) -> str:
    """Run a check that must fail; return its message after checking it mentions ``match``."""
    with pytest.raises(CheckFailed) as info:
        fn(*args)
    message = str(info.value)
    assert match in message, message
    return message


# --- conv_output_size ---------------------------------------------------------------------------


def right_size(size, kernel_size, padding=0, stride=1):
    return (size + 2 * padding - kernel_size) // stride + 1


def test_conv_output_size_passes_on_the_formula(capsys):
    check.conv_output_size(right_size)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda s, k, padding=0, stride=1: (s + 2 * padding - k) // stride, "+ 1"),
    (lambda s, k, padding=0, stride=1: (s - k) // stride + 1, "2 * padding"),
    (lambda s, k, padding=0, stride=1: (s + 2 * padding - k) / stride + 1, "28.0 (float)"),  # the first case
    (lambda s, k, padding=0, stride=1: s + 2 * padding - k + 1, "stride"),
])
def test_conv_output_size_names_the_mistake(wrong, match):
    fails(check.conv_output_size, wrong, match=match)


def test_conv_output_size_blank():
    def blank(size, kernel_size, padding=0, stride=1):
        raise NotImplementedError("TODO")

    fails(check.conv_output_size, blank, match="まだ書かれていません")
    fails(check.conv_output_size, None, match="まだ設定されていません")


# --- the wider net ------------------------------------------------------------------------------


class WideAttr(nn.Module):
    """The model answer, written with attributes and F.relu."""

    def __init__(self, num_classes=10, padding=2, channels=(32, 64), batch_norm=False, bias=None,
                 classes_out=None):
        super().__init__()
        c1, c2 = channels
        bias = not batch_norm if bias is None else bias
        self.conv1 = nn.Conv2d(3, c1, 5, padding=padding, bias=bias)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=padding, bias=bias)
        self.bn1 = nn.BatchNorm2d(c1) if batch_norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c2) if batch_norm else nn.Identity()
        self.pool = nn.MaxPool2d(2, 2)
        side = 8 if padding == 2 else 5
        self.fc1 = nn.Linear(c2 * side * side, 256)
        self.fc2 = nn.Linear(256, classes_out or num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def variant(**kwargs):
    """A WideAttr subclass with fixed keyword arguments (the checks call ``cls(num_classes=...)``)."""
    return type("Variant", (WideAttr,), {"__init__": lambda self, num_classes=10: WideAttr.__init__(
        self, num_classes, **kwargs)})


class WideSequential(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@pytest.mark.parametrize("answer", [WideAttr, WideSequential])
def test_wide_net_passes_on_either_style(answer, capsys):
    check.wide_net(answer)
    out = capsys.readouterr().out
    assert "✅" in out and "1,105,098" in out


def test_wide_net_forgot_padding_says_padding():
    message = fails(check.wide_net, variant(padding=0), match="padding")
    assert "32×32 → 28×28" in message


def test_wide_net_tutorial_widths_say_channels():
    fails(check.wide_net, variant(channels=(6, 16)), match="出力チャンネル数が 6")


def test_wide_net_hard_coded_classes():
    fails(check.wide_net, variant(classes_out=10), match="num_classes")


def test_wide_net_rejects_batchnorm_here():
    fails(check.wide_net, variant(batch_norm=True), match="BatchNorm")


def test_wide_net_three_convs_is_counted():
    class ThreeConvs(WideSequential):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.features.insert(0, nn.Conv2d(3, 3, 3, padding=1))

    fails(check.wide_net, ThreeConvs, match="3 個です")


def test_wide_net_wrong_hidden_width_reports_parameter_difference():
    class Hidden128(WideSequential):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4096, 128), nn.ReLU(), nn.Linear(128, num_classes))

    expected = (4096 * 256 + 256 + 256 * 10 + 10) - (4096 * 128 + 128 + 128 * 10 + 10)
    fails(check.wide_net, Hidden128, match=f"{expected:,} 個足りません")


def test_wide_net_no_flatten_says_flatten():
    class NoFlatten(WideSequential):
        def forward(self, x):
            return self.classifier[1:](self.features(x))  # skips nn.Flatten

    fails(check.wide_net, NoFlatten, match="flatten")


def test_wide_net_blank_and_instance():
    class Blank(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            raise NotImplementedError("TODO")

    fails(check.wide_net, Blank, match="NotImplementedError")
    fails(check.wide_net, WideSequential(), match="クラス")
    fails(check.wide_net, None, match="まだ設定されていません")


def test_wide_net_without_num_classes_argument():
    class NoArg(nn.Module):
        def __init__(self):
            super().__init__()

    fails(check.wide_net, NoArg, match="num_classes")


# --- BatchNorm ----------------------------------------------------------------------------------


def test_bn_net_passes_with_and_without_conv_bias(capsys):
    check.bn_net(variant(batch_norm=True))
    assert "1,105,194" in capsys.readouterr().out
    check.bn_net(variant(batch_norm=True, bias=True))
    out = capsys.readouterr().out
    assert "✅" in out and "bias=False" in out


def test_bn_net_forgot_batchnorm():
    fails(check.bn_net, WideAttr, match="BatchNorm を忘れています")


def test_bn_net_defined_but_unused():
    class Unused(WideSequential):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.bn = nn.BatchNorm2d(32)

    fails(check.bn_net, Unused, match="forward で使っていません")


def test_bn_net_batchnorm1d_is_named():
    class OneD(WideSequential):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.classifier.insert(2, nn.BatchNorm1d(256))

    fails(check.bn_net, OneD, match="BatchNorm2d")


def test_bn_net_batchnorm_after_relu_is_reported():
    class AfterRelu(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 32, 5, padding=2, bias=False), nn.ReLU(), nn.BatchNorm2d(32), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 5, padding=2, bias=False), nn.ReLU(), nn.BatchNorm2d(64), nn.MaxPool2d(2))
            self.classifier = WideSequential(num_classes).classifier

        def forward(self, x):
            return self.classifier(self.features(x))

    fails(check.bn_net, AfterRelu, match="直後が BatchNorm2d ではなく ReLU")


# --- VGG11 --------------------------------------------------------------------------------------


def test_vgg11_config_passes(capsys):
    check.vgg11_config(list(VGG_CONFIGS["vgg11"]))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("config, match", [
    (None, "まだ設定されていません"),
    ("64,M", "リスト"),
    (VGG_CONFIGS["vgg13"], "畳み込みが 10 個"),
    ([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512], "5 個のはず"),
    ([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 256, "M"], "11 番目"),
    ([64, "m", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], "\"M\""),
])
def test_vgg11_config_names_the_mistake(config, match):
    fails(check.vgg11_config, config, match=match)


def make_vgg(conv=lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1, bias=False),
             norm=nn.BatchNorm2d, classifier=lambda c, k: nn.Linear(c, k)):
    """A VGG11(config, num_classes) student class with one part swapped out."""

    class StudentVGG(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            layers, cin = [], 3
            for item in config:
                if item == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                    continue
                layers.append(conv(cin, item))
                if norm is not None:
                    layers.append(norm(item))
                layers.append(nn.ReLU(inplace=True))
                cin = item
            self.features = nn.Sequential(*layers)
            self.classifier = classifier(cin, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return StudentVGG


def test_vgg11_passes_on_the_model_answer(capsys):
    check.vgg11(make_vgg())
    out = capsys.readouterr().out
    assert "✅" in out and "9,228,362" in out


def test_vgg11_conv_bias_before_bn_is_accepted_with_a_note(capsys):
    check.vgg11(make_vgg(conv=lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1)))
    assert "bias=False" in capsys.readouterr().out


def test_vgg11_without_batchnorm():
    fails(check.vgg11, make_vgg(norm=None), match="BatchNorm を忘れています")


def test_vgg11_without_padding():
    fails(check.vgg11, make_vgg(conv=lambda cin, cout: nn.Conv2d(cin, cout, 3, bias=False)), match="padding")


def test_vgg11_imagenet_classifier_gets_the_32x32_hint():
    fails(check.vgg11, make_vgg(classifier=lambda c, k: nn.Sequential(
        nn.Linear(c * 7 * 7, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, k))),
        match="Linear(512, num_classes)")


def test_vgg11_5x5_kernels():
    fails(check.vgg11, make_vgg(conv=lambda cin, cout: nn.Conv2d(cin, cout, 5, padding=2, bias=False)),
          match="3×3")


def test_vgg11_hard_coded_layers_ignore_config():
    reference = make_vgg()

    class HardCoded(reference):
        def __init__(self, config, num_classes=10):
            super().__init__(VGG_CONFIGS["vgg11"], num_classes)

    fails(check.vgg11, HardCoded, match="config を使わずに")


def test_vgg11_wrong_layer_count():
    reference = make_vgg()

    class Twelve(reference):
        def __init__(self, config, num_classes=10):
            super().__init__([64, 64, *config[1:]], num_classes)

    fails(check.vgg11, Twelve, match="9 個です")


def test_vgg11_hard_coded_ten_classes():
    fails(check.vgg11, make_vgg(classifier=lambda c, k: nn.Linear(c, 10)), match="num_classes=100")


def test_vgg11_blank_template():
    class Blank(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            raise NotImplementedError("TODO")

    fails(check.vgg11, Blank, match="まだ書かれていません")


def test_probe_leaves_the_students_model_unchanged():
    model = make_vgg()(list(VGG_CONFIGS["vgg11"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    layers, output, error = check._trace(model, "VGG11")
    assert error is None and tuple(output.shape) == (check.BATCH, 10)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(check._of(layers, nn.Conv2d)) == 8


# --- wrong answers that used to pass, or that reached the student as an English library error -------


class WideForward(WideAttr):
    """WideAttr with a different forward (F.relu, so the hooks see no ReLU module)."""

    def __init__(self, num_classes=10, **kwargs):
        super().__init__(num_classes, batch_norm=True, **kwargs)


def with_forward(forward, base=WideForward, **init):
    return type("Student", (base,), {"forward": forward,
                                     "__init__": lambda self, num_classes=10: base.__init__(self, num_classes, **init)})


def test_bn_net_batchnorm_after_functional_relu_is_rejected():
    def forward(self, x):  # conv -> F.relu -> bn: the hooks see conv, bn (no ReLU module)
        x = self.pool(self.bn1(F.relu(self.conv1(x))))
        x = self.pool(self.bn2(F.relu(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    message = fails(check.bn_net, with_forward(forward), match="ReLU が先に計算されています")
    assert "F.relu(self.bn1(self.conv1(x)))" in message


def test_bn_net_pool_before_batchnorm_is_rejected():
    def forward(self, x):
        x = F.relu(self.bn1(self.pool(self.conv1(x))))
        x = F.relu(self.bn2(self.pool(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    fails(check.bn_net, with_forward(forward), match="直後が BatchNorm2d ではなく MaxPool2d")


def test_bn_net_batchnorm1d_after_a_conv_gets_a_japanese_hint():
    class OneDAfterConv(WideForward):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.bn1 = nn.BatchNorm1d(32)

    message = fails(check.bn_net, OneDAfterConv, match="nn.BatchNorm2d を使います")
    assert "BatchNorm1d(32)" in message


def test_bn_net_wrong_num_features_gets_a_japanese_hint():
    class Wrong(WideForward):
        def __init__(self, num_classes=10):
            super().__init__(num_classes)
            self.bn2 = nn.BatchNorm2d(32)  # copied from bn1: conv2 gives 64 channels

    message = fails(check.bn_net, Wrong, match="num_features=32) に 64 チャンネルの入力")
    assert "ヒント" in message


@pytest.mark.parametrize("checker, batch_norm", [(check.wide_net, False), (check.bn_net, True)])
def test_forgotten_functional_relu_is_rejected(checker, batch_norm):
    def forward(self, x):  # no F.relu after the first block
        x = self.pool(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    student = type("NoRelu", (WideAttr,), {"forward": forward, "__init__": lambda self, num_classes=10:
                                           WideAttr.__init__(self, num_classes, batch_norm=batch_norm)})
    fails(checker, student, match="2 番目の畳み込みに負の値")


def test_wide_net_forgotten_relu_between_linears():
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(self.fc1(torch.flatten(x, 1)))

    student = type("NoFcRelu", (WideAttr,), {"forward": forward})
    fails(check.wide_net, student, match="2 番目の全結合層に負の値")


def test_vgg11_in_channels_not_updated_gets_a_japanese_hint():
    class StaleChannels(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            layers = []
            for item in config:
                if item == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:  # in_channels stays 3: the classic loop mistake
                    layers += [nn.Conv2d(3, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(512, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    message = fails(check.vgg11, StaleChannels, match="in_channels = c と更新する")
    assert "64 チャンネルの入力" in message


def test_vgg11_batchnorm1d_gets_a_japanese_hint():
    fails(check.vgg11, make_vgg(norm=nn.BatchNorm1d), match="nn.BatchNorm2d を使います")


def test_vgg11_relu_before_batchnorm_functional():
    class ReluFirst(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            self.convs, self.norms, self.pool_after = nn.ModuleList(), nn.ModuleList(), []
            cin = 3
            for item in config:
                if item == "M":
                    self.pool_after[-1] = True
                    continue
                self.convs.append(nn.Conv2d(cin, item, 3, padding=1, bias=False))
                self.norms.append(nn.BatchNorm2d(item))
                self.pool_after.append(False)
                cin = item
            self.classifier = nn.Linear(512, num_classes)
            self.pool = nn.MaxPool2d(2, 2)

        def forward(self, x):
            for conv, norm, pool in zip(self.convs, self.norms, self.pool_after):
                x = norm(F.relu(conv(x)))
                if pool:
                    x = self.pool(x)
            return self.classifier(torch.flatten(x, 1))

    fails(check.vgg11, ReluFirst, match="ReLU が先に計算されています")


def test_vgg11_without_relu():
    class NoRelu(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            layers, cin = [], 3
            for item in config:
                if item == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(cin, item, 3, padding=1, bias=False), nn.BatchNorm2d(item)]
                    cin = item
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(512, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    fails(check.vgg11, NoRelu, match="ReLU を忘れていませんか")


def test_functional_max_pool_is_a_right_answer(capsys):
    def forward(self, x):  # F.max_pool2d instead of an nn.MaxPool2d module
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    check.bn_net(with_forward(forward))

    class FunctionalVGG(nn.Module):
        def __init__(self, config, num_classes=10):
            super().__init__()
            self.config = config
            layers, cin = [], 3
            for item in config:
                if item != "M":
                    layers += [nn.Conv2d(cin, item, 3, padding=1, bias=False), nn.BatchNorm2d(item)]
                    cin = item
            self.layers = nn.ModuleList(layers)
            self.classifier = nn.Linear(512, num_classes)

        def forward(self, x):
            convs = iter(self.layers)
            for item in self.config:
                if item == "M":
                    x = F.max_pool2d(x, 2)
                else:
                    conv, norm = next(convs), next(convs)
                    x = F.relu(norm(conv(x)))
            return self.classifier(torch.flatten(x, 1))

    check.vgg11(FunctionalVGG)
    assert capsys.readouterr().out.count("✅") == 2


def test_missing_pool_is_still_rejected():
    def forward(self, x):  # one pool only: Linear(4096) then gets 16*16*64 numbers
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    fails(check.bn_net, with_forward(forward), match="Linear(in_features=4096)")


# --- logits, not probabilities; super().__init__; rounding (wrong answers that passed or got a generic hint) ---


def test_forward_returning_softmax_probabilities_is_rejected():
    def forward(self, x):
        return F.softmax(WideAttr.forward(self, x), dim=1)

    for checker, base in ((check.wide_net, WideAttr), (check.bn_net, variant(batch_norm=True))):
        student = type("Softmax", (base,), {"forward": forward})
        message = fails(checker, student, match="softmax の確率を返しています")
        assert "ロジット" in message
    reference = make_vgg()
    vgg = type("SoftmaxVGG", (reference,), {"forward": lambda self, x: reference.forward(self, x).softmax(1)})
    fails(check.vgg11, vgg, match="softmax の確率")


def test_forward_with_relu_after_the_last_linear_is_rejected():
    def forward(self, x):
        return F.relu(WideAttr.forward(self, x))

    fails(check.wide_net, type("ReluOut", (WideAttr,), {"forward": forward}), match="最後の全結合層の後に ReLU")
    reference = make_vgg()
    vgg = type("ReluVGG", (reference,), {"forward": lambda self, x: F.relu(reference.forward(self, x))})
    fails(check.vgg11, vgg, match="最後の全結合層の後に ReLU")


def test_forward_returning_log_softmax_is_accepted(capsys):
    def forward(self, x):  # CrossEntropyLoss gives log-probabilities the same loss as logits
        return F.log_softmax(WideAttr.forward(self, x), dim=1)

    check.wide_net(type("LogSoftmax", (WideAttr,), {"forward": forward}))
    assert "✅" in capsys.readouterr().out


def test_layers_registered_before_super_init_get_the_super_hint():
    class NoSuper(nn.Module):
        def __init__(self, num_classes=10):
            self.conv1 = nn.Conv2d(3, 32, 5, padding=2)  # noqa: F841 - before super().__init__()
            super().__init__()

    message = fails(check.wide_net, NoSuper, match="super().__init__()")
    assert "最初の行" in message


@pytest.mark.parametrize("wrong, match", [
    (lambda s, k, padding=0, stride=1: (s + padding - k) // stride + 1, "片側だけでなく両側"),
    (lambda s, k, padding=0, stride=1: -(-(s + 2 * padding - k) // stride) + 1, "切り上げではなく切り捨て"),
    (lambda s, k, padding=0, stride=1: round((s + 2 * padding - k) / stride) + 1, "切り上げではなく切り捨て"),
    (lambda s, k, padding=0, stride=1: s, "(size + 2 * padding - kernel_size) // stride + 1"),
])
def test_conv_output_size_more_wrong_answers(wrong, match):
    fails(check.conv_output_size, wrong, match=match)


# --- 01_01: train_step ---------------------------------------------------------------------------


def right_step(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    outputs = model(images)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    return loss


def step_zero_grad_last(model, images, labels, criterion, optimizer):  # another right order
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss


def step_model_zero_grad(model, images, labels, criterion, optimizer):  # model.zero_grad() is as good
    model.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("answer", [right_step, step_zero_grad_last, step_model_zero_grad])
def test_train_step_passes_on_right_answers(answer, capsys):
    check.train_step(answer)
    assert "✅" in capsys.readouterr().out


def step_without_zero_grad(model, images, labels, criterion, optimizer):
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def step_without_step(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    return loss


def step_without_backward(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    optimizer.step()
    return loss


def step_before_backward(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss


def zero_grad_between(model, images, labels, criterion, optimizer):
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss


def step_on_softmax(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(F.softmax(model(images), dim=1), labels)
    loss.backward()
    optimizer.step()
    return loss


def step_swapped_arguments(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(labels, model(images))
    loss.backward()
    optimizer.step()
    return loss


def step_returns_nothing(model, images, labels, criterion, optimizer):
    right_step(model, images, labels, criterion, optimizer)


def step_returns_item(model, images, labels, criterion, optimizer):
    return right_step(model, images, labels, criterion, optimizer).item()


def step_returns_outputs(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    outputs = model(images)
    criterion(outputs, labels).backward()
    optimizer.step()
    return outputs


def step_under_no_grad(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    with torch.no_grad():
        loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def step_backward_twice(model, images, labels, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    loss.backward()
    optimizer.step()
    return loss


def step_with_another_model(model, images, labels, criterion, optimizer):  # ignores its argument
    other = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    optimizer.zero_grad()
    loss = criterion(other(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def step_with_another_optimizer(model, images, labels, criterion, optimizer):  # ignores its argument
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    other.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    other.step()
    return loss


def step_returning_the_loss_after_the_update(model, images, labels, criterion, optimizer):
    right_step(model, images, labels, criterion, optimizer)
    return criterion(model(images), labels)


@pytest.mark.parametrize("wrong, match", [
    (step_without_zero_grad, "zero_grad() を忘れていませんか"),
    (step_without_step, "optimizer.step() を呼んでいません"),
    (step_without_backward, "loss.backward() を呼んでいません"),
    (step_before_backward, "optimizer.step() を loss.backward() より前"),
    (zero_grad_between, "loss.backward() と optimizer.step() の間で zero_grad()"),
    (step_on_softmax, "softmax した確率を渡しています"),
    (step_swapped_arguments, "引数の順番が逆"),
    (step_returns_nothing, "return loss"),
    (step_returns_item, "数 ("),
    (step_returns_outputs, "0 次元のテンソル"),
    (step_under_no_grad, "torch.no_grad()"),
    (step_backward_twice, "2 回呼んでいませんか"),
    (step_with_another_model, "渡された model で順伝播"),
    (step_with_another_optimizer, "optimizer.step() を呼んでいません"),
    (step_returning_the_loss_after_the_update, "更新の前に計算した"),
])
def test_train_step_names_the_mistake(wrong, match):
    fails(check.train_step, wrong, match=match)


def test_train_step_blank_and_placeholder():
    def blank(model, images, labels, criterion, optimizer):
        raise NotImplementedError("TODO")

    fails(check.train_step, blank, match="まだ書かれていません")
    fails(check.train_step, None, match="まだ設定されていません")


def test_train_step_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check.train_step(right_step)
    assert torch.equal(torch.rand(3), expected)


# --- 01_02: train_on_device ----------------------------------------------------------------------


def device_loop(move_model=True, move=lambda images, labels, device: (images.to(device), labels.to(device))):
    """The notebook's train_on_device with its two blanks replaced: the model move and the batch move."""

    def train_on_device(model, train_loader, device, epochs, lr=0.01):
        if move_model:
            move_model(model, device) if callable(move_model) else model.to(device)
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        for epoch in range(1, epochs + 1):
            model.train()
            running_loss = 0.0
            for images, labels in train_loader:
                images, labels = move(images, labels, device)
                optimizer.zero_grad()
                loss = criterion(model(images), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            print(f"epoch {epoch}/{epochs}: mean training loss {running_loss / len(train_loader):.3f}")

    return train_on_device


def move_in_place_without_assigning(images, labels, device):
    images.to(device)
    labels.to(device)
    return images, labels


def move_images_as_tuple(images, labels, device):
    images = images.to(device), labels.to(device)
    return images, labels


@pytest.mark.parametrize("answer", [
    device_loop(),
    device_loop(move_model=lambda model, device: setattr(model, "_", None) or model.to(device=device)),
    device_loop(move=lambda images, labels, device: (images.to(device, non_blocking=True),
                                                     labels.to(device=device))),
])
def test_train_on_device_passes_on_right_answers(answer, capsys):
    check.train_on_device(answer)
    out = capsys.readouterr().out
    assert "✅" in out and "mean training loss" not in out  # the student's prints are kept out of the check's


@pytest.mark.parametrize("wrong, match", [
    (device_loop(move=lambda images, labels, device: (images.to(device), labels)), "labels が CPU のまま損失"),
    (device_loop(move=lambda images, labels, device: (images, labels.to(device))), "images が CPU のままモデル"),
    (device_loop(move=move_in_place_without_assigning), "返ってきたコピーを使わずに"),
    (device_loop(move_model=False), "model.to(device) がありません"),
    (device_loop(move=lambda images, labels, device: (images.to("cuda"), labels.to("cuda"))),
     "装置を直接書いています"),
    (device_loop(move=lambda images, labels, device: (images.cuda(), labels.cuda())), "images.cuda()"),
    (device_loop(move_model=lambda model, device: model.to("cuda")), "model.to('cuda')"),
    (device_loop(move=move_images_as_tuple), "タプル"),
    (device_loop(move=lambda images, labels, device: (images.to(device), images.to(device))),
     "labels に images を入れていませんか"),
])
def test_train_on_device_names_the_mistake(wrong, match):
    fails(check.train_on_device, wrong, match=match)


def test_train_on_device_loader_moved_instead_of_the_batches():
    def train_on_device(model, train_loader, device, epochs, lr=0.01):
        model.to(device)
        train_loader = train_loader.to(device)

    fails(check.train_on_device, train_on_device, match="ローダーに .to(device)")


def test_train_on_device_moving_only_the_first_batch():
    def train_on_device(model, train_loader, device, epochs, lr=0.01):
        model.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        first = True
        for images, labels in train_loader:
            if first:
                images, labels = images.to(device), labels.to(device)
                first = False
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()

    fails(check.train_on_device, train_on_device, match="images が CPU のまま")


def test_train_on_device_blank_and_placeholder():
    def blank(model, train_loader, device, epochs, lr=0.01):
        for _images, _labels in train_loader:
            raise NotImplementedError("TODO")

    fails(check.train_on_device, blank, match="まだ書かれていません")
    fails(check.train_on_device, None, match="まだ設定されていません")


def test_train_on_device_that_does_not_train():
    def no_training(model, train_loader, device, epochs, lr=0.01):
        model.to(device)
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            model(images)

    fails(check.train_on_device, no_training, match="重みが変わっていません")


# --- 01_04: amp_step and to_channels_last -------------------------------------------------------


def make_amp_step(autocast=True, dtype_from_argument=True, device_type=None, use_scaler=True, update=True,
                  scaler_step=True, plain_step_too=False, scaled_backward=True, inside=()):
    """The notebook's amp_step, with one part changed the way students get it wrong.

    ``inside`` names what is (wrongly) written inside the autocast block as well: "backward", "step"."""

    def amp_step(model, images, labels, criterion, optimizer, amp_dtype, scaler=None):
        optimizer.zero_grad()
        kind = device_type or images.device.type
        options = {"dtype": amp_dtype} if dtype_from_argument else {}
        with torch.autocast(kind, enabled=autocast, **options):
            outputs = model(images)
            loss = criterion(outputs, labels)
            if inside:
                (scaler.scale(loss) if scaler is not None else loss).backward()
                if "step" in inside:
                    scaler.step(optimizer) if scaler is not None else optimizer.step()
        if inside:
            if "step" not in inside:
                scaler.step(optimizer) if scaler is not None else optimizer.step()
            if scaler is not None:
                scaler.update()
        elif use_scaler == "always" or (use_scaler and scaler is not None):
            scaled = scaler.scale(loss)
            (scaled if scaled_backward else loss).backward()
            if scaler_step:
                scaler.step(optimizer)
            if plain_step_too or not scaler_step:
                optimizer.step()
            if update:
                scaler.update()
        else:
            loss.backward()
            optimizer.step()
        return loss

    return amp_step


def test_amp_step_passes_on_the_right_answer(capsys):
    check.amp_step(make_amp_step())
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (make_amp_step(autocast=False), "fp32 のまま"),
    (make_amp_step(dtype_from_argument=False), "引数の amp_dtype を渡して"),
    (make_amp_step(device_type="cuda"), "device_type"),
    (make_amp_step(use_scaler=False), "scaler を使っていません"),
    (make_amp_step(use_scaler="always"), "scaler が None のとき"),
    (make_amp_step(update=False), "scaler.update() を呼んでいません"),
    (make_amp_step(plain_step_too=True), "両方を呼んでいませんか"),
    (make_amp_step(scaler_step=False), "scaler.step(optimizer) ではなく optimizer.step()"),
    (make_amp_step(scaled_backward=False), "1/倍率"),
    # the whole step indented into the with block: backward and step run under autocast
    (make_amp_step(inside=("backward", "step")), "backward と step は autocast の外で"),
    (make_amp_step(inside=("backward",)), "loss.backward() を torch.autocast の中で"),
])
def test_amp_step_names_the_mistake(wrong, match):
    fails(check.amp_step, wrong, match=match)


def test_amp_step_blank():
    def blank(model, images, labels, criterion, optimizer, amp_dtype, scaler=None):
        raise NotImplementedError("TODO")

    fails(check.amp_step, blank, match="まだ書かれていません")


def right_channels_last(model, images):
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    return model, images


def test_channels_last_passes_on_right_answers(capsys):
    check.channels_last(right_channels_last)
    check.channels_last(lambda model, images: (model.to(memory_format=torch.channels_last),
                                               images.to(memory_format=torch.channels_last)))
    assert capsys.readouterr().out.count("✅") == 2


def channels_last_not_assigned(model, images):
    model.to(memory_format=torch.channels_last)
    images.contiguous(memory_format=torch.channels_last)
    return model, images


@pytest.mark.parametrize("wrong, match", [
    (lambda model, images: (model.to(memory_format=torch.channels_last), images.permute(0, 2, 3, 1)), "permute"),
    (lambda model, images: (model, images.contiguous(memory_format=torch.channels_last)), "images だけ変えて"),
    (lambda model, images: (model.to(memory_format=torch.channels_last), images), "channels_last になっていません"),
    (channels_last_not_assigned, "代入"),
    (lambda model, images: (model, images.to(torch.channels_last)), "キーワードで渡します"),
    (lambda model, images: (images.contiguous(memory_format=torch.channels_last), model), "テンソルではありません"),
    (lambda model, images: images.contiguous(memory_format=torch.channels_last), "2 つではありません"),
])
def test_channels_last_names_the_mistake(wrong, match):
    fails(check.channels_last, wrong, match=match)


@pytest.mark.parametrize("checker, name", [(check.train_step, "train_step"), (check.train_on_device, "train_on_device"),
                                           (check.amp_step, "amp_step"), (check.channels_last, "to_channels_last")])
def test_new_checks_want_the_function_itself(checker, name):
    message = fails(checker, torch.tensor(2.3), match=f"関数 {name} そのもの")  # e.g. check.train_step(loss)
    assert "Tensor" in message
