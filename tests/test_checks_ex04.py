"""Session 4 self-checks reject the wrong answers students write, each with a Japanese hint.

The reference answers in MyModules.quant / quant_models pass (tests/test_quant.py also runs them);
every test below is one realistic wrong answer, written the way a student would write it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MyModules import quant
from MyModules.checks import CheckFailed
from MyModules.checks import ex04 as check
from MyModules.quant.networks import quant_block

HINT = "ヒント"


def fails(fn, *args, match: str) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args)
    message = str(info.value)
    assert match in message and HINT in message, message
    return message


def function(forward, backward):
    return type("Student", (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                        "backward": staticmethod(backward)})


def int8_forward(ctx, x):
    ctx.save_for_backward(x)
    return torch.clamp(torch.round(x), -128, 127)


def int8_backward(ctx, g):
    (x,) = ctx.saved_tensors
    return torch.where((x >= -128) & (x <= 127), g, torch.zeros_like(g))


# --- save_for_backward ------------------------------------------------------------------------------


def test_forgotten_save_for_backward_is_explained():
    def forward(ctx, x):  # no ctx.save_for_backward(x)
        return torch.clamp(torch.round(x), -128, 127)

    fails(check.int8_function, function(forward, int8_backward), match="ctx.save_for_backward(x) を呼ぶのを忘れて")


def test_saved_tensors_used_as_a_tensor_is_explained():
    def backward(ctx, g):
        x = ctx.saved_tensors  # a tuple, not the tensor
        return torch.where((x >= -128) & (x <= 127), g, torch.zeros_like(g))

    fails(check.int8_function, function(int8_forward, backward), match="(x,) = ctx.saved_tensors")


def test_saving_the_output_instead_of_the_input():
    def forward(ctx, x):
        out = torch.clamp(torch.round(x), -128, 127)
        ctx.save_for_backward(out)  # the clamped output is always inside the range
        return out

    fails(check.int8_function, function(forward, int8_backward), match="backward が違います")


def test_int8_function_without_ste_zero_gradient():
    fails(check.int8_function, function(int8_forward, lambda ctx, g: g * 0), match="backward が違います")


# --- Int8InFloat module -----------------------------------------------------------------------------


class Int8Module(nn.Module):
    def __init__(self, frac=0):
        super().__init__()
        if isinstance(frac, bool) or not isinstance(frac, int) or not 0 <= frac <= 7:
            raise ValueError(frac)
        self.frac = frac

    def forward(self, x):
        return quant.Int8InFloatFunction.apply(x * 2.0**self.frac) * 2.0**-self.frac

    def extra_repr(self):
        return f"frac={self.frac}"


def test_int8_module_passes_on_the_answer(capsys):
    check.int8_module(Int8Module)
    assert "✅" in capsys.readouterr().out


def test_int8_module_with_round_instead_of_the_function_has_zero_gradient():
    class RoundDirectly(Int8Module):  # no STE: torch.round's derivative is 0
        def forward(self, x):
            return torch.clamp(torch.round(x * 2.0**self.frac), -128, 127) * 2.0**-self.frac

    fails(check.int8_module, RoundDirectly, match="勾配がすべて 0")


def test_int8_module_detached_has_no_gradient():
    class Detached(Int8Module):
        def forward(self, x):
            return super().forward(x).detach()

    fails(check.int8_module, Detached, match="grad_fn がありません")


def test_int8_module_scaling_the_gradient_twice():
    class ScalesGradient(Int8Module):  # forward right, gradient multiplied by 2**frac
        def forward(self, x):
            q = super().forward(x)
            return q + (x * 2.0**self.frac - (x * 2.0**self.frac).detach()) - (x - x.detach())

    fails(check.int8_module, ScalesGradient, match="勾配が違います")


# --- binary block: layer order ----------------------------------------------------------------------


def block(*order):
    """A student's binary_block with its four layers in ``order``."""
    def make(cin, cout, frac=7):
        parts = {"conv": quant.QuantizedConv2d(cin, cout, 3, padding=1, bias=False, quantizer=quant.Int8InFloat(frac)),
                 "pool": nn.MaxPool2d(2), "bn": nn.BatchNorm2d(cout), "bn_in": nn.BatchNorm2d(cin),
                 "sign": quant.BinarySign(), "relu": nn.ReLU()}
        return nn.Sequential(*(parts[k] for k in order))
    return make


def test_binary_block_passes_in_the_course_order(capsys):
    check.binary_block(block("conv", "pool", "bn", "sign"))
    check.binary_block(quant_block)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("order, match", [
    (("conv", "bn", "sign", "pool"), "±1 の最大値"),  # pooled after the sign
    (("conv", "bn", "pool", "sign"), "BatchNorm は ±1 の直前"),  # BatchNorm before the pool
    (("pool", "conv", "bn", "sign"), "プーリングは畳み込みの後"),
    (("bn_in", "conv", "pool", "sign"), "BatchNorm は畳み込みの後"),
    (("conv", "pool", "bn", "relu"), "最後が ReLU"),
])
def test_binary_block_wrong_order_is_named(order, match):
    message = fails(check.binary_block, block(*order), match=match)
    assert "層の順番" in message or "ReLU" in message


def test_binary_block_batchnorm_before_conv_with_cout_gets_a_japanese_hint():
    def make(cin, cout, frac=7):
        return nn.Sequential(nn.BatchNorm2d(cout), block("conv", "pool", "sign")(cin, cout, frac))

    fails(check.binary_block, make, match="num_features=8) に 3 チャンネルの入力")


def test_binary_block_batchnorm1d_is_named():
    def make(cin, cout, frac=7):
        return nn.Sequential(*block("conv", "pool")(cin, cout, frac), nn.BatchNorm1d(cout), quant.BinarySign())

    fails(check.binary_block, make, match="1d は全結合用")


# --- binary fully connected block (BatchNorm1d) -----------------------------------------------------


def fc_block(norm=nn.BatchNorm1d, order=("linear", "bn", "sign"), bias=False, features=None):
    def make(fin, fout, frac=7):
        parts = {"linear": quant.QuantizedLinear(fin, fout, bias=bias, quantizer=quant.Int8InFloat(frac)),
                 "bn": norm(features or fout), "sign": quant.BinarySign(), "relu": nn.ReLU()}
        return nn.Sequential(*(parts[k] for k in order))
    return make


def test_binary_fc_block_passes(capsys):
    check.binary_fc_block(fc_block())
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [
    ({"norm": nn.BatchNorm2d}, "nn.BatchNorm1d を使います"),  # 2d on (B, features): English ValueError before
    ({"features": 12}, "num_features=12) に 6 チャンネルの入力"),  # fin instead of fout
    ({"order": ("linear", "sign", "bn")}, "±1 の後に BatchNorm"),
    ({"order": ("linear", "bn", "relu")}, "最後が ReLU"),
    ({"bias": True}, "bias=False"),
])
def test_binary_fc_block_wrong_answers(kwargs, match):
    fails(check.binary_fc_block, fc_block(**kwargs), match=match)


def test_binary_fc_block_plain_linear():
    fails(check.binary_fc_block, lambda fin, fout, frac=7: nn.Sequential(
        nn.Linear(fin, fout, bias=False), nn.BatchNorm1d(fout), quant.BinarySign()), match="量子化した全結合層")


# --- fixed point homework (the detach trick) --------------------------------------------------------


def fixed_point_answer(x, bits, frac):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    s = torch.clamp(x * 2.0**frac, low, high)
    return (s + (torch.round(s) - s).detach()) * 2.0**-frac


def test_fixed_point_passes_on_the_detach_trick(capsys):
    check.fixed_point(fixed_point_answer)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    # no .detach(): the forward is right, the gradient is round's (0)
    (lambda x, b, f: (lambda s: (s + (torch.round(s) - s)) * 2.0**-f)(
        torch.clamp(x * 2.0**f, -(2 ** (b - 1)), 2 ** (b - 1) - 1)), "勾配がすべて 0"),
    # floor(s + 0.5): rounds halves up
    (lambda x, b, f: (lambda s: (s + (torch.floor(s + 0.5) - s).detach()) * 2.0**-f)(
        torch.clamp(x * 2.0**f, -(2 ** (b - 1)), 2 ** (b - 1) - 1)), "0.5 ちょうどの丸め方"),
    # clamp inside the detach: float32 cancellation at x = -1e9
    (lambda x, b, f: (x * 2.0**f + (torch.clamp(torch.round(x * 2.0**f), -(2 ** (b - 1)), 2 ** (b - 1) - 1)
                                    - x * 2.0**f).detach()) * 2.0**-f, "桁落ち"),
    # a Function whose backward passes the gradient everywhere, saturated values included
    (function(quant.FixedPointFunction.forward, lambda ctx, g: (g, None, None)).apply, "範囲外 (飽和している所) では 0"),
    # the whole result detached
    (lambda x, b, f: fixed_point_answer(x, b, f).detach(), "grad_fn がありません"),
    # 8-bit range whatever bits says
    (lambda x, b, f: fixed_point_answer(x, 8, f), "範囲は"),
])
def test_fixed_point_wrong_answers(wrong, match):
    fails(check.fixed_point, wrong, match=match)


# --- ternary ----------------------------------------------------------------------------------------


def ternary(forward_values, backward=None):
    def forward(ctx, x, threshold):
        ctx.save_for_backward(x)
        return forward_values(x, threshold)

    def ste(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x.abs() <= 1, g, torch.zeros_like(g)), None

    return function(forward, backward or ste)


def ternary_values(x, t):
    return torch.where(torch.isnan(x), x, torch.where(x >= t, 1.0, torch.where(x <= -t, -1.0, 0.0)))


def test_ternary_passes(capsys):
    check.ternary_function(ternary(ternary_values))
    check.ternary_function(quant.TernaryFunction)
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("student, match", [
    (ternary(lambda x, t: torch.sign(x) * (x.abs() > t)), "しきい値ちょうど"),  # dead zone includes ±t
    (ternary(lambda x, t: torch.where(x.abs() < t, 0.0, x)), "3 つだけ"),  # keeps x outside the dead zone
    (ternary(lambda x, t: torch.nan_to_num(ternary_values(x, t))), "NaN"),
    (ternary(ternary_values, lambda ctx, g: g), "勾配の数が違います"),  # no None for threshold
    (ternary(ternary_values, lambda ctx, g: (g, None)), "backward が違います"),  # no saturation
    # the threshold written in (the notebook's 0.5) instead of the argument: quant.Ternary(0.05) would not work
    (ternary(lambda x, t: ternary_values(x, check.TERNARY_THRESHOLDS[0])), "引数の threshold を使って"),
])
def test_ternary_wrong_answers(student, match):
    fails(check.ternary_function, student, match=match)


# --- power of two -----------------------------------------------------------------------------------


def power(values, backward=None):
    def forward(ctx, x, min_exp, max_exp):
        ctx.save_for_backward(x)
        ctx.limit = 2.0**max_exp
        return values(x, min_exp, max_exp)

    def ste(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x.abs() <= ctx.limit, g, torch.zeros_like(g)), None, None

    return function(forward, backward or ste)


def power_values(x, lo, hi, rounding=torch.round, cut=True, clamp=True, sign=True):
    e = rounding(torch.log2(x.abs()))
    e = e.clamp(max=hi) if clamp else e
    m = torch.where(e < lo, 0.0, torch.exp2(e)) if cut else torch.exp2(e)
    return torch.where(torch.isnan(x), x, (torch.sign(x) if sign else 1.0) * m)


def test_power_of_two_passes(capsys):
    check.power_of_two_function(power(power_values))
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("student, match", [
    (power(lambda x, lo, hi: power_values(x, lo, hi, rounding=torch.floor)), "torch.floor"),
    (power(lambda x, lo, hi: power_values(x, lo, hi, cut=False)), "min_exp"),
    (power(lambda x, lo, hi: power_values(x, lo, hi, clamp=False)), "max_exp"),
    (power(lambda x, lo, hi: power_values(x, lo, hi, sign=False)), "符号が消えて"),
    (power(power_values, lambda ctx, g: (g, None, None)), "backward が違います"),
    (power(power_values, lambda ctx, g: (g, None)), "勾配の数が違います"),
    # the check's first pair written in instead of the arguments
    (power(lambda x, lo, hi: power_values(x, *check.POWER_EXPS[0])), "引数の min_exp と max_exp"),
    (power(lambda x, lo, hi: power_values(x, check.POWER_EXPS[0][0], hi)), "引数の min_exp"),
    (power(lambda x, lo, hi: power_values(x, lo, check.POWER_EXPS[0][1])), "引数の max_exp"),
    # the forward right, the backward's limit written in (2**1) instead of saved from max_exp
    (power(power_values, lambda ctx, g: (torch.where(ctx.saved_tensors[0].abs() <= 2.0, g, torch.zeros_like(g)),
                                         None, None)), "backward の範囲"),
])
def test_power_of_two_wrong_answers(student, match):
    fails(check.power_of_two_function, student, match=match)


# --- no raw exception reaches the student ------------------------------------------------------------


def test_a_crashing_backward_inside_a_block_becomes_a_check_failure():
    broken_sign = function(lambda ctx, x: torch.where(x >= 0, 1.0, -1.0), lambda ctx, g: ctx.saved_tensors[0])

    class BrokenSign(nn.Module):
        def forward(self, x):
            return broken_sign.apply(x)

    def make(cin, cout, frac=7):
        return nn.Sequential(*block("conv", "pool", "bn")(cin, cout, frac), BrokenSign())

    fails(check.binary_block, make, match="backward")


def test_quantized_layer_without_a_quantizer_attribute():
    class NoQuantizer(nn.Conv2d):
        def __init__(self, *args, quantizer=None, **kwargs):
            super().__init__(*args, **kwargs)

    fails(check.quantized_layers, NoQuantizer, quant.QuantizedLinear, match="self.quantizer")


def test_docs04_torch_clamp_gives_zero_gradient_exactly_at_the_ends(capsys):
    """docs/04 says so (and the fixed-point check accepts either value there): pinned for torch upgrades."""
    x = torch.tensor([-8.0, 7.0, 0.0, -8.5], requires_grad=True)
    torch.clamp(x, -8, 7).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 0.0]
    check.fixed_point(fixed_point_answer)  # clamp's convention at the ends
    check.fixed_point(quant.FixedPointFunction.apply)  # the course's convention (ends inside)
    assert capsys.readouterr().out.count("✅") == 2


# --- a third wrong answer for the sign and layer blanks ---------------------------------------------


def sign_forward(ctx, x):
    ctx.save_for_backward(x)
    return torch.where(x >= 0, 1.0, -1.0)


@pytest.mark.parametrize("forward, backward, match", [
    (sign_forward, lambda ctx, g: g, "backward が違います"),  # STE without the |x| <= 1 window
    (lambda ctx, x: (ctx.save_for_backward(x), (x >= 0).float())[1], lambda ctx, g: g, "forward が違います"),  # 0/1
    (sign_forward, lambda ctx, g: g * 0, "backward が違います"),  # sign's true derivative
])
def test_sign_wrong_answers(forward, backward, match):
    fails(check.binary_sign, function(forward, backward), match=match)


def test_quantized_layer_that_detaches_the_quantised_weight():
    class Detaches(quant.QuantizedConv2d):
        def forward(self, x):
            return self._conv_forward(x, self.quantizer(self.weight).detach(), self.bias)

    fails(check.quantized_layers, Detaches, quant.QuantizedLinear, match="勾配が届きません")


# --- issue 24: every blank against at least three realistic wrong answers, each named in Japanese -----

def swish_forward(ctx, x, beta):
    ctx.save_for_backward(x, beta)
    return x * torch.sigmoid(beta * x)


def swish_backward(ctx, g):
    x, beta = ctx.saved_tensors
    s = torch.sigmoid(beta * x)
    return g * (s + beta * x * s * (1 - s)), (g * x * x * s * (1 - s)).sum()


def test_swish_passes_on_the_answer(capsys):
    check.swish_function(function(swish_forward, swish_backward))
    check.swish_function(quant.SwishFunction)
    assert capsys.readouterr().out.count("✅") == 2


def swish_forward_of(values):
    def forward(ctx, x, beta):
        ctx.save_for_backward(x, beta)
        return values(x, beta)
    return forward


@pytest.mark.parametrize("values, match", [
    (lambda x, b: x * torch.sigmoid(x), "beta を使っていません"),  # ignores its argument
    (lambda x, b: torch.nn.functional.silu(x), "beta を使っていません"),  # the library's SiLU: beta = 1
    (lambda x, b: torch.sigmoid(b * x), "最後に x を掛けます"),
    (lambda x, b: b * x * torch.sigmoid(b * x), "beta を外にも"),
])
def test_swish_forward_wrong_answers(values, match):
    fails(check.swish_function, function(swish_forward_of(values), swish_backward), match=match)


def swish_backward_of(grad_x, grad_beta=None):
    def backward(ctx, g):
        x, beta = ctx.saved_tensors
        s = torch.sigmoid(beta * x)
        gb = (g * x * x * s * (1 - s)).sum() if grad_beta is None else grad_beta(g, x, beta, s)
        return grad_x(g, x, beta, s), gb
    return backward


@pytest.mark.parametrize("grad_x, grad_beta, match", [
    (lambda g, x, b, s: s + b * x * s * (1 - s), None, "grad_output を掛けていません"),
    (lambda g, x, b, s: g * (s + x * s * (1 - s)), None, "beta が抜けています"),
    (lambda g, x, b, s: g * s, None, "積の微分の 2 項目"),
    (lambda g, x, b, s: g * (s + b * x * s * (1 - s)), lambda g, x, b, s: (x * x * s * (1 - s)).sum(),
     "grad_output を掛けていません (掛けてから .sum() します)"),
    (lambda g, x, b, s: g * (s + b * x * s * (1 - s)), lambda g, x, b, s: (g * x * s * (1 - s)).sum(),
     "x が 1 つ足りません"),
])
def test_swish_backward_wrong_answers(grad_x, grad_beta, match):
    fails(check.swish_function, function(swish_forward, swish_backward_of(grad_x, grad_beta)), match=match)


def test_swish_saving_the_output_is_named():
    def forward(ctx, x, beta):
        y = x * torch.sigmoid(beta * x)
        ctx.save_for_backward(y, beta)  # the wrong tensor: the output
        return y

    fails(check.swish_function, function(forward, swish_backward), match="forward の出力 y")


def test_swish_saving_too_few_tensors_is_named():
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)  # beta forgotten
        return x * torch.sigmoid(beta * x)

    fails(check.swish_function, function(forward, swish_backward), match="2 個取り出そうとしていますが、forward で保存したのは 1 個")


def test_swish_saving_nothing_is_named():
    def forward(ctx, x, beta):
        return x * torch.sigmoid(beta * x)

    fails(check.swish_function, function(forward, swish_backward), match="ctx.save_for_backward(x) を呼ぶのを忘れて")


def test_swish_saving_too_many_tensors_is_named():
    def forward(ctx, x, beta):
        y = x * torch.sigmoid(beta * x)
        ctx.save_for_backward(x, beta, y)
        return y

    fails(check.swish_function, function(forward, swish_backward), match="もっと多く保存しています")


@pytest.mark.parametrize("values, match", [
    (lambda x: torch.clamp(torch.floor(x), -128, 127), "切り捨て (torch.floor)"),
    (lambda x: torch.clamp(torch.trunc(x), -128, 127), "0 の方向への切り捨て"),
    (lambda x: torch.clamp(torch.round(x), -127, 127), "-128 を -127"),
    (lambda x: torch.clamp(torch.round(x), 0, 255), "uint8"),
    (lambda x: torch.where(x - torch.floor(x) == 0.5, torch.ceil(x), torch.round(x)).clamp(-128, 127),
     "0.5 ちょうどの丸め方"),  # round half up, not to even
    (lambda x: (torch.sign(x) * torch.floor(x.abs() + 0.5)).clamp(-128, 127), "0.5 ちょうどの丸め方"),  # half away
])
def test_int8_forward_wrong_answers(values, match):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return values(x)

    fails(check.int8_function, function(forward, int8_backward), match=match)


def test_int8_clamp_before_round_passes(capsys):
    """The ends are integers, so clamping first gives the same values (127.5 -> 127 either way)."""
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.round(torch.clamp(x, -128, 127))

    check.int8_function(function(forward, int8_backward))
    assert "✅" in capsys.readouterr().out


def test_int8_saving_the_output_names_it():
    def forward(ctx, x):
        out = torch.clamp(torch.round(x), -128, 127)
        ctx.save_for_backward(out)
        return out

    fails(check.int8_function, function(forward, int8_backward), match="出力を保存していませんか")


@pytest.mark.parametrize("backward, match", [
    (lambda ctx, g: (lambda x: ((x >= -128) & (x <= 127)).float())(*ctx.saved_tensors), "grad_output を掛けていません"),
    (lambda ctx, g: g * 0, "round の本当の微分"),
    (lambda ctx, g: (lambda x: torch.where(x.abs() <= 127, g, torch.zeros_like(g)))(*ctx.saved_tensors),
     "-128 も範囲内"),
    (lambda ctx, g: (lambda x: torch.where((x > -128) & (x < 127), g, torch.zeros_like(g)))(*ctx.saved_tensors),
     "両端 (-128 と 127) を含めて"),
    (lambda ctx, g: g, "範囲外 (飽和している所) でも勾配を通しています"),
])
def test_int8_backward_wrong_answers(backward, match):
    fails(check.int8_function, function(int8_forward, backward), match=match)


class Int8Refuses(Int8Module):  # 0 < frac: the lower end refused
    def __init__(self, frac=0):
        nn.Module.__init__(self)
        if not isinstance(frac, int) or not 0 < frac <= 7:
            raise ValueError(frac)
        self.frac = frac


class Int8RefusesSeven(Int8Module):  # frac < 7
    def __init__(self, frac=0):
        nn.Module.__init__(self)
        if not isinstance(frac, int) or not 0 <= frac < 7:
            raise ValueError(frac)
        self.frac = frac


class Int8ForgetsFrac(Int8Module):
    def __init__(self, frac=0):
        nn.Module.__init__(self)
        if isinstance(frac, bool) or not isinstance(frac, int) or not 0 <= frac <= 7:
            raise ValueError(frac)


def int8_module_with(forward):
    return type("Student", (Int8Module,), {"forward": forward})


@pytest.mark.parametrize("module, match", [
    (Int8Refuses, "frac=0 は正しい値です"),
    (Int8RefusesSeven, "frac=7 は正しい値です"),
    (Int8ForgetsFrac, "self.frac = frac"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction.apply(x * 2.0**self.frac)), "2**-frac を掛けて元の大きさ"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction.apply(x) * 2.0**-self.frac), "先に x に 2**frac"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction.apply(x * 2.0**-self.frac) * 2.0**self.frac),
     "倍率が逆"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction.apply(x * 2.0**7) * 2.0**-7), "frac=7 の刻み"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction()(x * 2.0**self.frac) * 2.0**-self.frac),
     "インスタンスを作って"),
    (int8_module_with(lambda self, x: quant.Int8InFloatFunction.forward(None, x * 2.0**self.frac)), ".apply で呼びます"),
])
def test_int8_module_wrong_answers(module, match):
    fails(check.int8_module, module, match=match)


def test_int8_module_extra_repr_that_prints_is_named(capsys):
    class Prints(Int8Module):
        def extra_repr(self):
            print(f"frac={self.frac}")  # printed, not returned

    fails(check.int8_module, Prints, match="文字列を return します")


def test_int8_module_without_extra_repr_is_named():
    class NoRepr(Int8Module):
        def extra_repr(self):
            return ""

    fails(check.int8_module, NoRepr, match="frac=6 が見えるように")


@pytest.mark.parametrize("values, match", [
    (lambda x: torch.where(x > 0, 1.0, -1.0), "0 が -1"),
    (lambda x: (x >= 0).float(), "0 と 1 になっています"),
    (lambda x: torch.sign(x), "torch.sign は 0 を 0"),
])
def test_sign_forward_wrong_answers(values, match):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return values(x)

    fails(check.binary_sign, function(forward, lambda ctx, g: g * (ctx.saved_tensors[0].abs() <= 1)), match=match)


@pytest.mark.parametrize("backward, match", [
    (lambda ctx, g: g, "|x| > 1 でも勾配を通しています"),
    (lambda ctx, g: g * 0, "sign の本当の微分"),
    (lambda ctx, g: g * (ctx.saved_tensors[0].abs() < 1), "ちょうど 1 のときも"),
    (lambda ctx, g: (ctx.saved_tensors[0].abs() <= 1).float(), "grad_output を掛けていません"),
])
def test_sign_backward_wrong_answers(backward, match):
    fails(check.binary_sign, function(sign_forward, backward), match=match)


def test_sign_saving_the_output_is_named():
    def forward(ctx, x):
        out = torch.where(x >= 0, 1.0, -1.0)
        ctx.save_for_backward(out)
        return out

    fails(check.binary_sign, function(forward, lambda ctx, g: g * (ctx.saved_tensors[0].abs() <= 1)),
          match="出力 (±1) を保存していませんか")


def conv_with(forward):
    return type("Student", (quant.QuantizedConv2d,), {"forward": forward})


F_ = nn.functional


@pytest.mark.parametrize("forward, match", [
    # F.conv2d by hand, some of the layer's options left out
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, padding=self.padding,
                               dilation=self.dilation, groups=self.groups), "stride を渡していません"),
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, stride=self.stride,
                               dilation=self.dilation, groups=self.groups), "padding を渡していません"),
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, self.stride, self.padding,
                               groups=self.groups), "dilation を渡していません"),
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, groups=self.groups),
     "stride, padding, dilation を渡していません"),
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, self.stride, self.padding, self.dilation),
     "groups を渡していません"),
    # every option but padding_mode (the second layer pads by reflection)
    (lambda self, x: F_.conv2d(x, self.quantizer(self.weight), self.bias, self.stride, self.padding, self.dilation,
                               self.groups), "padding_mode='reflect' が無視されています"),
    (lambda self, x: self._conv_forward(x, self.quantizer(self.weight), None), "bias を足していません"),
    (lambda self, x: self._conv_forward(x, self.quantizer(self.weight), self.quantizer(self.bias)), "bias まで量子化"),
    (lambda self, x: self._conv_forward(self.quantizer(x), self.weight, self.bias), "入力 x を量子化"),
    (lambda self, x: self._conv_forward(x, self.quantizer, self.bias), "部品 (nn.Module) です"),  # the wrong object
])
def test_quantized_conv_wrong_answers(forward, match):
    fails(check.quantized_layers, conv_with(forward), quant.QuantizedLinear, match=match)


def linear_with(forward):
    return type("Student", (quant.QuantizedLinear,), {"forward": forward})


@pytest.mark.parametrize("forward, match", [
    (lambda self, x: x @ self.quantizer(self.weight) + self.bias, "x @ w ではなく"),
    (lambda self, x: x @ self.quantizer(self.weight).T, "bias を足していません"),
    (lambda self, x: F_.linear(self.quantizer(x), self.weight, self.bias), "入力 x を量子化"),
    (lambda self, x: F_.linear(x, self.quantizer(self.weight), self.quantizer(self.bias)), "bias まで量子化"),
    (lambda self, x: F_.linear(x, self.weight, self.bias), "量子化されていません"),
])
def test_quantized_linear_wrong_answers(forward, match):
    fails(check.quantized_layers, quant.QuantizedConv2d, linear_with(forward), match=match)


def test_quantized_layers_pass_on_the_answer_and_on_f_conv2d_with_every_option(capsys):
    check.quantized_layers(quant.QuantizedConv2d, quant.QuantizedLinear)
    assert "✅" in capsys.readouterr().out
