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
    (lambda s, k, padding=0, stride=1: (s + 2 * padding - k) / stride + 1, "//"),
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
