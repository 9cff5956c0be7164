"""Session 4: the quantisers of MyModules.quant, the quantised layers and network, the self-checks,
and the figures of docs/04.

Forward values are pinned on edge inputs (ties at .5, ±127.5, ±128, ±0, ±inf, NaN); each backward is
compared with its intended derivative written out independently here (gradcheck cannot test round
or sign: their true derivative is 0 almost everywhere); the smooth warm-up uses gradcheck in float64.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from MyModules import quant
from MyModules.checks import CheckFailed
from MyModules.checks import ex04 as check
from MyModules.quant.networks import QuantNet, QuantNetConfig, int8_weights, quant_block

ROOT = Path(__file__).resolve().parents[1]
INF, NAN = math.inf, math.nan


def grad_of(fn, x: torch.Tensor, grad_output: torch.Tensor | None = None) -> torch.Tensor:
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y) if grad_output is None else grad_output)
    return g


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN equal to NaN, and the same sign of zero."""
    nan = torch.isnan(a) & torch.isnan(b)
    return bool(((a == b) & (torch.signbit(a) == torch.signbit(b)) | nan).all()) and a.shape == b.shape


# --- warm-up ------------------------------------------------------------------------------------


def test_swish_gradcheck_float64():
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(quant.SwishFunction.apply, (x, beta))
    # beta with one value per column: the gradient is summed to beta's shape
    beta_cols = torch.rand(1, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(quant.SwishFunction.apply, (x, beta_cols))


def test_swish_matches_silu_at_beta_one_and_module_learns_beta():
    x = torch.randn(100)
    assert torch.allclose(quant.SwishFunction.apply(x, torch.tensor(1.0)), F.silu(x), atol=1e-6)
    layer = quant.Swish(beta=2.0)
    layer(torch.randn(10)).pow(2).sum().backward()
    assert layer.beta.grad is not None and layer.beta.grad.shape == ()


# --- int8 ----------------------------------------------------------------------------------------


def test_int8_forward_edge_values():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.4, 0.4, 126.5, 127.0, 127.4, 127.5, 128.0,
                      -127.5, -128.0, -128.5, -129.0, INF, -INF, NAN, -0.0])
    want = torch.tensor([0.0, 2.0, 2.0, -0.0, -2.0, -2.0, -0.0, 0.0, 126.0, 127.0, 127.0, 127.0, 127.0,
                         -128.0, -128.0, -128.0, -128.0, 127.0, -128.0, NAN, -0.0])
    got = quant.Int8InFloatFunction.apply(x)
    assert got.dtype == torch.float32
    assert same(got, want)


def test_int8_forward_every_tie_goes_to_even():
    ties = torch.arange(-200, 200) + 0.5
    got = quant.Int8InFloatFunction.apply(ties)
    inside = (got > -128) & (got < 127)
    assert bool((got[inside] % 2 == 0).all())
    assert bool(((got - ties).abs()[inside] == 0.5).all())


def test_int8_backward_is_the_indicator_of_the_range():
    x = torch.tensor([-INF, -300.0, -128.01, -128.0, -127.5, 0.0, 0.5, 127.0, 127.01, 127.5, 500.0, INF, NAN])
    grad_output = torch.arange(1.0, 14.0)
    want = torch.tensor([0.0, 0, 0, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0])  # ends inclusive, NaN -> 0
    assert torch.equal(grad_of(quant.Int8InFloatFunction.apply, x, grad_output), want)


def test_int8_module_scales_by_powers_of_two():
    x = torch.linspace(-3, 3, 1001)
    for frac in range(8):
        layer = quant.Int8InFloat(frac)
        y = layer(x)
        codes = y * 2**frac
        assert torch.equal(codes, torch.round(codes))  # multiples of 2**-frac
        assert codes.min() >= -128 and codes.max() <= 127
        assert torch.equal(y, torch.clamp(torch.round(x * 2**frac), -128, 127) / 2**frac)
    assert float(quant.Int8InFloat(6)(torch.tensor(0.05))) == 3 / 64  # the ×64 picture of docs/04
    assert torch.equal(grad_of(quant.Int8InFloat(6), torch.tensor([-2.0, -2.01, 1.98, 127 / 64, 1.99])),
                       torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("bad", [-1, 8, 2.0, True, "3", None])
def test_int8_module_rejects_bad_frac(bad):
    with pytest.raises((ValueError, TypeError)):
        quant.Int8InFloat(bad)


def test_int8_extra_repr_is_informative():
    text = repr(quant.Int8InFloat(6))
    assert text == "Int8InFloat(frac=6, step=0.015625, range=[-2, 1.98438])"
    assert "frac=7" in repr(quant.QuantizedConv2d(3, 4, 3))  # shows up in print(model)


def test_fixed_point_generalises_int8():
    x = torch.randn(2000) * 3
    for frac in range(8):
        assert torch.equal(quant.FixedPoint(8, frac)(x), quant.Int8InFloat(frac)(x))
    four = quant.FixedPoint(bits=4, frac=1)  # codes -8..7, steps of 0.5: [-4, 3.5]
    got = four(torch.tensor([-10.0, -4.0, -0.25, 0.25, 0.75, 3.5, 3.75, 9.0, NAN]))
    assert same(got, torch.tensor([-4.0, -4.0, -0.0, 0.0, 1.0, 3.5, 3.5, 3.5, NAN]))
    assert torch.equal(grad_of(four, torch.tensor([-4.01, -4.0, 3.5, 3.51])), torch.tensor([0.0, 1, 1, 0]))
    with pytest.raises(ValueError):
        quant.FixedPoint(bits=4, frac=4)
    with pytest.raises(ValueError):
        quant.FixedPoint(bits=32)


# --- sign, ternary, power of two -----------------------------------------------------------------


def test_sign_forward_edge_values():
    x = torch.tensor([-INF, -2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0, INF, NAN])
    want = torch.tensor([-1.0, -1, -1, 1, 1, 1, 1, 1, NAN])  # 0 and -0 -> +1; NaN stays NaN
    assert same(quant.BinarySignFunction.apply(x), want)
    assert quant.BinarySignFunction.apply(x.double()).dtype == torch.float64


def test_sign_backward_is_the_straight_through_estimator():
    x = torch.tensor([-INF, -1.5, -1.0001, -1.0, -0.3, 0.0, 0.9, 1.0, 1.0001, 7.0, NAN])
    grad_output = torch.arange(1.0, 12.0)
    want = torch.tensor([0.0, 0, 0, 4, 5, 6, 7, 8, 0, 0, 0])
    assert torch.equal(grad_of(quant.BinarySignFunction.apply, x, grad_output), want)
    # the STE is the derivative of hardtanh, whose forward it approximates (away from exactly ±1,
    # where PyTorch's hardtanh backward gives 0 and Courbariaux et al.'s 1[|x| <= 1] gives 1)
    y = torch.linspace(-2, 2, 400)
    assert not bool((y.abs() == 1).any())
    assert torch.equal(grad_of(quant.BinarySignFunction.apply, y), grad_of(F.hardtanh, y))


def test_ternary():
    t = quant.Ternary(threshold=0.5)
    x = torch.tensor([-2.0, -0.5, -0.49, -0.0, 0.49, 0.5, 2.0, NAN])
    assert same(t(x), torch.tensor([-1.0, -1, 0, 0, 0, 1, 1, NAN]))
    assert torch.equal(grad_of(t, torch.tensor([-1.01, -1.0, 0.0, 1.0, 1.01])), torch.tensor([0.0, 1, 1, 1, 0]))
    with pytest.raises(ValueError):
        quant.Ternary(threshold=1.5)


def test_power_of_two():
    p = quant.PowerOfTwo(min_exp=-3, max_exp=0)  # levels 0, ±1/8, ±1/4, ±1/2, ±1
    x = torch.tensor([0.0, 0.01, 0.1, 0.13, 0.3, -0.3, 0.7, -0.76, 1.0, 5.0, INF, -INF, NAN])
    want = torch.tensor([0.0, 0.0, 0.125, 0.125, 0.25, -0.25, 0.5, -1.0, 1.0, 1.0, 1.0, -1.0, NAN])
    assert same(p(x).abs(), want.abs()) and same(torch.sign(p(x)), torch.sign(want))
    assert torch.equal(grad_of(p, torch.tensor([-1.01, -1.0, 0.0, 0.3, 1.0, 1.5])), torch.tensor([0.0, 1, 1, 1, 1, 0]))
    wide = quant.PowerOfTwo(min_exp=-4, max_exp=1)  # the gradient passes up to the largest level, 2**1
    assert torch.equal(grad_of(wide, torch.tensor([-2.01, -2.0, 1.5, 2.0, 2.01])), torch.tensor([0.0, 1, 1, 1, 0]))
    levels = p(torch.linspace(-2, 2, 4001)).unique()
    assert set(levels.tolist()) == {0.0, 0.125, 0.25, 0.5, 1.0, -0.125, -0.25, -0.5, -1.0}


# --- layers and network --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1}, {"groups": 2, "bias": False},
                                    {"padding": 2, "dilation": 2}, {"padding": 1, "padding_mode": "reflect"}])
def test_quantized_conv_keeps_the_parents_behaviour(kwargs):
    torch.manual_seed(0)
    q = quant.QuantizedConv2d(4, 6, 3, quantizer=quant.Int8InFloat(4), **kwargs)
    plain = nn.Conv2d(4, 6, 3, **kwargs)
    with torch.no_grad():
        plain.weight.copy_(quant.Int8InFloat(4)(q.weight))
        if q.bias is not None:
            plain.bias.copy_(q.bias)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(q(x), plain(x), atol=1e-6)
    assert not torch.allclose(q(x), F.conv2d(x, q.weight, q.bias, q.stride, q.padding, q.dilation, q.groups)) \
        or kwargs.get("padding_mode")  # the weight really is quantised (reflect padding: skip this comparison)


def test_quantized_layers_train_the_shadow_weight():
    layer = quant.QuantizedLinear(5, 3, quantizer=quant.Int8InFloat(7))
    with torch.no_grad():
        layer.weight.fill_(0.3)
        layer.weight[0, 0] = 1.5  # outside the int8 range [-1, 127/128]: saturated, no gradient
    before = layer.weight.detach().clone()
    layer(torch.ones(2, 5)).sum().backward()
    assert torch.equal(layer.weight.detach(), before)  # forward did not overwrite the float weight
    want = torch.full((3, 5), 2.0)
    want[0, 0] = 0.0
    assert torch.equal(layer.weight.grad, want)
    assert torch.equal(layer.bias.grad, torch.full((3,), 2.0))


def test_quant_block_and_network_shapes_and_values():
    torch.manual_seed(0)
    block = quant_block(3, 8)
    out = block(torch.randn(4, 3, 16, 16))
    assert out.shape == (4, 8, 8, 8) and set(out.unique().tolist()) <= {-1.0, 1.0}
    model = QuantNet(QuantNetConfig(widths=(8, 16), num_classes=7))
    features = model.features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 16, 8, 8) and set(features.unique().tolist()) <= {-1.0, 1.0}
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7) and len(logits.unique()) > 2  # last layer: float logits, not ±1
    float_twin = QuantNet(QuantNetConfig(widths=(8, 16), num_classes=7, quantize=False))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in float_twin.parameters())
    assert not any(isinstance(m, quant.QuantizedConv2d) for m in float_twin.modules())
    # the quantizers hold no state: a float checkpoint loads into the quantised network
    model.load_state_dict(float_twin.state_dict())
    assert torch.equal(model.classifier.weight, float_twin.classifier.weight)


def test_int8_weights_export():
    model = QuantNet(QuantNetConfig(widths=(8,), frac=6))
    weights = int8_weights(model)
    assert set(weights) == {"features.0.0", "classifier"}
    codes, frac = weights["features.0.0"]
    assert codes.dtype == torch.int8 and frac == 6
    assert torch.equal(codes.float() / 64, quant.Int8InFloat(6)(model.features[0][0].weight.detach()))


def test_quantized_network_learns_with_fit(tmp_path, monkeypatch):
    """The course's training loop trains the ±1 network (2 epochs × 20 steps on generated data)."""
    from MyModules import data, loader, train

    monkeypatch.delenv("COURSE_TEST_MODE")  # this test sizes its own run
    dataset = data.load_dataset("cifar10", tmp_path / "data", test_mode=True)
    train_loader, test_loader = loader.make_loaders(dataset, batch_size=64, device="cpu")
    model = QuantNet(QuantNetConfig(widths=(8, 16, 32)))
    config = train.TrainConfig(epochs=2, optimizer="adam", lr=3e-3, weight_decay=0.0, max_steps_per_epoch=20)
    result = train.fit(model, train_loader, test_loader, config, "cpu", progress=False)
    assert result.history[-1]["test_accuracy"] > 30.0  # chance is 10 %
    assert all(math.isfinite(r["train_loss"]) for r in result.history)


# --- self-checks ---------------------------------------------------------------------------------


def test_checks_pass_on_the_reference():
    check.swish_function(quant.SwishFunction)
    check.int8_function(quant.Int8InFloatFunction)
    check.int8_module(quant.Int8InFloat)
    check.binary_sign(quant.BinarySignFunction)
    check.quantized_layers(quant.QuantizedConv2d, quant.QuantizedLinear)
    check.binary_block(quant_block)
    check.fixed_point(quant.FixedPointFunction.apply)


def _function(forward, backward):
    return type("Student", (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                        "backward": staticmethod(backward)})


def _save(ctx, *tensors):
    ctx.save_for_backward(*tensors)


def _swish_forward(ctx, x, beta):
    _save(ctx, x, beta)
    return x * torch.sigmoid(beta * x)


def _int8_forward(ctx, x):
    _save(ctx, x)
    return torch.clamp(torch.round(x), -128, 127)


JAPANESE = "ヒント"


@pytest.mark.parametrize("backward, expected", [
    (lambda ctx, g: g, "勾配の数が違います"),  # one gradient for two inputs
    (lambda ctx, g: (g.sum(), g), "形が [] ですが"),  # wrong shape
    (lambda ctx, g: (g, g.sum(), g * 2), "勾配の数が違います"),  # three gradients
    (lambda ctx, g: (g, None), "beta の勾配として None"),
    (lambda ctx, g: (g, (g * ctx.saved_tensors[0]).sum()), "x の勾配が違います"),
])
def test_swish_check_explains_backward_mistakes_in_japanese(backward, expected):
    with pytest.raises(CheckFailed) as info:
        check.swish_function(_function(_swish_forward, backward))
    assert expected in str(info.value) and JAPANESE in str(info.value)


def _raise(*_):
    raise NotImplementedError("TODO")


@pytest.mark.parametrize("forward, backward, expected", [
    (_raise, lambda ctx, g: g, "まだ書かれていません"),
    (_int8_forward, _raise, "backward はまだ書かれていません"),
    (lambda ctx, x: torch.floor(x + 0.5).clamp(-128, 127), lambda ctx, g: g, "0.5 ちょうどの丸め方"),
    (lambda ctx, x: torch.round(x), lambda ctx, g: g, "torch.clamp"),
    (lambda ctx, x: torch.round(x).clamp(-128, 127).to(torch.int8), lambda ctx, g: g, "float のまま"),
    (lambda ctx, x: torch.nan_to_num(torch.round(x)).clamp(-128, 127), lambda ctx, g: g, "NaN"),
    (_int8_forward, lambda ctx, g: g, "backward が違います"),  # no mask
    (_int8_forward, lambda ctx, g: g * (ctx.saved_tensors[0].abs() < 127), "backward が違います"),
    (_int8_forward, lambda ctx, g: (g, g), "勾配の数が違います"),
    (_int8_forward, lambda ctx, g: g[:3], "形が [3] ですが"),
])
def test_int8_check_catches_mistakes(forward, backward, expected):
    with pytest.raises(CheckFailed) as info:
        check.int8_function(_function(forward, backward))
    assert expected in str(info.value) and JAPANESE in str(info.value)


def test_sign_check_catches_torch_sign_and_a_wrong_ste():
    ste = lambda ctx, g: g * (ctx.saved_tensors[0].abs() <= 1)  # noqa: E731
    with pytest.raises(CheckFailed, match="torch.sign は 0 を 0"):
        check.binary_sign(_function(lambda ctx, x: (_save(ctx, x), torch.sign(x))[1], ste))
    with pytest.raises(CheckFailed, match="backward が違います"):
        check.binary_sign(_function(lambda ctx, x: (_save(ctx, x), torch.where(x >= 0, 1.0, -1.0))[1],
                                    lambda ctx, g: g * (ctx.saved_tensors[0].abs() < 1)))


def test_layer_and_block_checks_catch_mistakes():
    class NotQuantised(nn.Conv2d):
        def __init__(self, *args, quantizer=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.quantizer = quantizer

    class Overwrites(NotQuantised):
        def forward(self, x):
            self.weight.data = self.quantizer(self.weight.data)
            return super().forward(x)

    with pytest.raises(CheckFailed, match="量子化されていません"):
        check.quantized_layers(NotQuantised, quant.QuantizedLinear)
    with pytest.raises(CheckFailed, match="self.weight そのものを書き換えて"):
        check.quantized_layers(Overwrites, quant.QuantizedLinear)
    with pytest.raises(CheckFailed, match="量子化した畳み込みがありません"):
        check.binary_block(lambda cin, cout: quant_block(cin, cout, quantize=False))
    with pytest.raises(CheckFailed, match="±1 ではありません"):
        check.binary_block(lambda cin, cout: quant_block(cin, cout)[:-1])
    with pytest.raises(CheckFailed, match="frac"):
        check.int8_module(lambda frac=0: quant.FixedPoint(8, 0))


# --- figures -------------------------------------------------------------------------------------


def test_figures_regenerate_identically(tmp_path):
    from matplotlib.testing.compare import compare_images

    spec = importlib.util.spec_from_file_location("make_fig04", ROOT / "tools" / "make_fig04.py")
    make_fig04 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fig04)
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        make_fig04.main(["--out", str(out)])
    names = sorted(p.name for p in runs[0].glob("*.png"))
    assert names == ["04_fixed_point_x64.png", "04_int8_forward_backward.png", "04_sign_forward_backward.png"]
    for name in names:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), f"{name} is not byte-stable"
        # The committed figure looks the same (small tolerance: another matplotlib/freetype may
        # move anti-aliased pixels).
        assert compare_images(str(ROOT / "fig" / name), str(runs[0] / name), tol=2) is None, name
