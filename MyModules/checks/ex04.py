"""Self-checks for session 4 (Exercise04/04_01_custom_op.ipynb): custom autograd Functions, quantisers.

Each check runs the student's class on fixed inputs (edge values included) and compares forward and
backward with the reference in :mod:`MyModules.quant`, or with the derivative written out here.
Autograd's own errors about backward (wrong number of gradients, wrong shape) are translated into
Japanese with a hint.

    from MyModules.checks import ex04 as check
    check.swish_function(SwishFunction)
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .. import quant
from . import CheckFailed, call_student, fail, layer_mismatch, ok

# Ties (.5), the ends of int8 (±128, ±127.5), ±0, tiny values and infinities.
INT8_EDGES = [-float("inf"), -1e6, -200.0, -128.6, -128.5, -128.0, -127.5, -127.0, -2.5, -1.5, -0.5, -0.4,
              -0.0, 0.0, 1e-9, 0.4, 0.5, 0.6, 1.5, 2.5, 3.5, 126.5, 127.0, 127.4, 127.5, 128.0, 128.5, 300.0,
              float("inf")]
SIGN_EDGES = [-float("inf"), -3.0, -1.0001, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 1.0001, 3.0,
              float("inf")]

_COUNT = re.compile(r"incorrect number of gradients \(expected (\d+), got (\d+)\)")
_SHAPE = re.compile(r"invalid gradient at index (\d+) - got \[(.*?)\] but expected shape compatible with \[(.*?)\]")


def _forward(fn_cls, inputs: Sequence, what: str) -> torch.Tensor:
    if not hasattr(fn_cls, "apply"):
        fail(f"{what} が torch.autograd.Function のサブクラスではありません ({type(fn_cls).__name__})。",
             "class 名(torch.autograd.Function): と書き、呼ぶときは 名前.apply(x) を使います。")
    out = call_student(fn_cls.apply, *inputs, what=f"{what} の forward")
    if not isinstance(out, torch.Tensor):
        fail(f"{what} の forward が Tensor ではなく {type(out).__name__} を返しました。",
             "forward は計算結果の Tensor を return してください (ctx を返すのではありません)。")
    x = inputs[0]
    if out.shape != x.shape:
        fail(f"{what} の forward の出力の形が {tuple(out.shape)} です。入力と同じ {tuple(x.shape)} にしてください。",
             "要素ごとの演算なので、形は変わらないはずです。.sum() や .mean() をしていませんか?")
    if out.dtype != x.dtype:
        fail(f"{what} の forward の出力の型が {out.dtype} です。入力と同じ {x.dtype} のままにしてください。",
             "値は整数でも、型は float のまま (\"int8 in float\") にします。.to(torch.int8) などで型を"
             "変えると、その先で勾配が流れなくなります。")
    return out


def _backward(out: torch.Tensor, inputs: Sequence, names: Sequence[str], grad_output: torch.Tensor,
              what: str) -> list[torch.Tensor]:
    """Gradients of the tensor inputs that require grad, with autograd's errors explained in Japanese."""
    wanted = [(t, n) for t, n in zip(inputs, names) if isinstance(t, torch.Tensor) and t.requires_grad]
    if out.grad_fn is None:
        fail(f"{what} の出力に grad_fn がありません (勾配が流れません)。",
             "forward の中で計算した Tensor をそのまま return し、.apply(...) で呼んでください。")
    try:
        grads = torch.autograd.grad(out, [t for t, _ in wanted], grad_output, allow_unused=True)
    except NotImplementedError:
        fail(f"{what} の backward はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して、grad_output に局所的な微分を掛けたものを return してください。")
    except RuntimeError as e:
        _explain_autograd_error(str(e), names, what)
    except (ValueError, IndexError) as e:
        _explain_unpacking(e, what)
    except (TypeError, AttributeError) as e:
        hint = "エラーメッセージの最後の行を読んで、ctx.save_for_backward / ctx.saved_tensors の使い方を確かめてください。"
        if "tuple" in str(e):
            hint = ("ctx.saved_tensors はタプルです。x = ctx.saved_tensors ではなく (x,) = ctx.saved_tensors "
                    "(2 つなら x, beta = ctx.saved_tensors) と取り出してください。")
        fail(f"{what} の backward を実行するとエラーになりました: {type(e).__name__}: {e}", hint)
    except Exception as e:  # noqa: BLE001 - any crash in the student's backward becomes a hint
        fail(f"{what} の backward を実行するとエラーになりました: {type(e).__name__}: {e}",
             "エラーメッセージの最後の行を読んで、ctx.save_for_backward / ctx.saved_tensors の使い方を確かめてください。")
    _check_gradients(grads, wanted, what)
    return list(grads)


def _explain_autograd_error(message: str, names: Sequence[str], what: str) -> None:
    """Fail with autograd's complaint about backward's return value (count, shape) in Japanese."""
    count, shape = _COUNT.search(message), _SHAPE.search(message)
    if count:
        fail(f"{what} の backward が返す勾配の数が違います: {count.group(2)} 個返しましたが、"
             f"forward の入力 ({', '.join(names)}) の数と同じ {count.group(1)} 個が必要です。",
             "backward は forward の引数 (ctx を除く) 1つにつき1つずつ、同じ順番で勾配を return します。"
             "勾配が要らない引数 (整数の設定値など) には None を返してください。"
             f"例: return {', '.join(f'grad_{n}' for n in names)}")
    if shape:
        index = int(shape.group(1))
        name = names[index] if index < len(names) else f"{index + 1} 番目の入力"
        fail(f"{what} の backward が返した {index + 1} 番目の勾配 ({name} の勾配) の形が [{shape.group(2)}] "
             f"ですが、入力 {name} の形 [{shape.group(3)}] と同じでなければいけません。",
             f"{name} の勾配は {name} と同じ形です (要素ごとに grad_output × 局所的な微分)。"
             ".sum() で潰したり、返す順番を入れ替えたりしていませんか?")
    fail(f"{what} の backward でエラーになりました: {message.splitlines()[0]}",
         "backward(ctx, grad_output) は ctx.saved_tensors で保存した Tensor を取り出し、"
         "forward の入力と同じ形の勾配を return します。")


_UNPACK = re.compile(r"not enough values to unpack \(expected (\d+), got (\d+)\)")
_TOO_MANY = re.compile(r"too many values to unpack \(expected (\d+)")


def _explain_unpacking(e: Exception, what: str) -> None:
    """Fail for a ValueError/IndexError in backward: mostly ``ctx.saved_tensors`` used wrongly."""
    short, many = _UNPACK.search(str(e)), _TOO_MANY.search(str(e))
    if short and short.group(2) == "0" or isinstance(e, IndexError) and "tuple" in str(e):
        fail(f"{what} の backward で ctx.saved_tensors が空です ({type(e).__name__}: {e})。",
             "forward で ctx.save_for_backward(x) を呼ぶのを忘れていませんか。backward で使う Tensor は"
             "forward の中で保存しておき、backward で (x,) = ctx.saved_tensors と取り出します。")
    if short:
        fail(f"{what} の backward が ctx.saved_tensors から {short.group(1)} 個取り出そうとしていますが、"
             f"forward で保存したのは {short.group(2)} 個です。",
             "backward で使う Tensor をすべて 1 回の ctx.save_for_backward(...) に並べます "
             "(例: ctx.save_for_backward(x, beta) なら x, beta = ctx.saved_tensors)。")
    if many:
        fail(f"{what} の backward が ctx.saved_tensors から {many.group(1)} 個だけ取り出そうとしていますが、"
             "forward ではもっと多く保存しています。",
             "save_for_backward(...) に並べた数と、backward で取り出す数をそろえます。")
    fail(f"{what} の backward を実行するとエラーになりました: {type(e).__name__}: {e}",
         "ctx.saved_tensors はタプルです: 1 つだけ保存したときも (x,) = ctx.saved_tensors と取り出します。")


def _check_gradients(grads: Sequence, wanted: Sequence[tuple[torch.Tensor, str]], what: str) -> None:
    for g, (t, name) in zip(grads, wanted):
        if g is None:
            fail(f"{what} の backward が {name} の勾配として None を返しました。",
                 f"{name} の勾配 (grad_output × d出力/d{name}) を計算して return してください。")
        if g.shape != t.shape:
            fail(f"{what} の backward が返した {name} の勾配の形が {tuple(g.shape)} です。{tuple(t.shape)} にしてください。",
                 "勾配は入力と同じ形です。")


def _first_mismatch(got: torch.Tensor, expected: torch.Tensor, inputs: torch.Tensor) -> str | None:
    """Text naming the first input where ``got`` differs from ``expected`` (NaN == NaN), or None."""
    same = (got == expected) | (torch.isnan(got) & torch.isnan(expected))
    if bool(same.all()):
        return None
    i = int((~same).flatten().nonzero()[0])
    return f"入力 {inputs.flatten()[i].item()!r} で {got.flatten()[i].item()!r} (正しくは {expected.flatten()[i].item()!r})"


def _same(got: torch.Tensor, value: torch.Tensor, exact: bool) -> bool:
    got, value = got.detach(), torch.as_tensor(value).detach().to(got.dtype)
    if got.shape != value.shape:
        return False
    if exact:
        return bool(((got == value) | (torch.isnan(got) & torch.isnan(value))).all())
    return bool(torch.allclose(got, value, atol=1e-5, equal_nan=True))


def _known_mistake(got: torch.Tensor, mistakes: Sequence[tuple[Callable[[], torch.Tensor], str]],
                   exact: bool = True) -> str | None:
    """The hint of the first known wrong answer that ``got`` equals, or None.

    Each mistake is (how that wrong answer computes its result, a Japanese hint that names it): a
    student's result that matches one names the mistake, not just "wrong".
    """
    for compute, hint in mistakes:
        with torch.no_grad():
            value = compute()
        if _same(got, value, exact):
            return hint
    return None


def _pass_through(g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, g, torch.zeros_like(g))


# --- warm-up ------------------------------------------------------------------------------------


def _swish_reference(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(beta * x)


def _swish_grads(x, beta, g):
    s = torch.sigmoid(beta * x)
    return g * (s + beta * x * s * (1 - s)), (g * x * x * s * (1 - s)).sum()


def swish_function(fn_cls) -> None:
    """``SwishFunction.apply(x, beta)``: forward, both gradients, and ``gradcheck`` in float64."""
    gen = torch.Generator().manual_seed(4)
    x = (3 * torch.randn(4, 5, generator=gen, dtype=torch.float64)).requires_grad_()
    beta = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    out = _forward(fn_cls, (x, beta), "SwishFunction")
    expected = _swish_reference(x, beta)
    if not torch.allclose(out, expected):
        xs, b = x.detach(), beta.detach()
        hint = _known_mistake(out, [
            (lambda: xs * torch.sigmoid(xs), "beta を使っていません (x * sigmoid(x) になっています)。"
                                              "sigmoid の中は beta * x です。"),
            (lambda: torch.sigmoid(b * xs), "sigmoid(beta * x) だけを返しています。最後に x を掛けます。"),
            (lambda: b * xs * torch.sigmoid(b * xs), "beta を外にも掛けています。y = x * sigmoid(beta * x) です。"),
        ], exact=False)
        fail("SwishFunction の forward の値が x * sigmoid(beta * x) と違います。",
             hint or "torch.sigmoid(beta * x) を x に掛けてください。")
    grad_output = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    grad_x, grad_beta = _backward(out, (x, beta), ("x", "beta"), grad_output, "SwishFunction")
    # The reference: plain autograd through the same formula (independent of the student's backward).
    ref_x, ref_beta = torch.autograd.grad(expected, (x, beta), grad_output)
    xs, b, y = x.detach(), beta.detach(), expected.detach()
    ones = torch.ones_like(grad_output)
    if not torch.allclose(grad_x, ref_x):
        s = torch.sigmoid(b * xs)
        hint = _known_mistake(grad_x, [
            (lambda: _swish_grads(xs, b, ones)[0], "grad_output を掛けていません。backward が返すのは "
                                                   "grad_output × (局所的な微分) です (連鎖律)。"),
            (lambda: grad_output * (s + xs * s * (1 - s)), "2 項目に beta が抜けています: "
                                                           "d/dx = s + beta * x * s * (1 - s) です。"),
            (lambda: grad_output * s, "積の微分の 2 項目 (beta * x * s * (1 - s)) が抜けています。"),
            (lambda: _swish_grads(y, b, grad_output)[0], "backward で使っている x が forward の出力 y です。"
                                                         "ctx.save_for_backward には出力ではなく入力 x (と beta) を保存します。"),
        ], exact=False)
        fail("SwishFunction の x の勾配が違います。",
             hint or "s = sigmoid(beta x) とすると d/dx = s + beta * x * s * (1 - s) です。grad_output を掛けるのを忘れずに。")
    if not torch.allclose(grad_beta, ref_beta):
        s = torch.sigmoid(b * xs)
        hint = _known_mistake(grad_beta, [
            (lambda: _swish_grads(xs, b, ones)[1], "grad_output を掛けていません (掛けてから .sum() します)。"),
            (lambda: (grad_output * xs * s * (1 - s)).sum(), "x が 1 つ足りません: d/dbeta = x * x * s * (1 - s) です"
                                                              " (sigmoid の中の beta * x を beta で微分すると x)。"),
        ], exact=False)
        fail("SwishFunction の beta の勾配が違います。",
             hint or "d/dbeta = x * x * s * (1 - s) です。beta は1つの数なので、grad_output を掛けてから .sum() で"
                     "beta と同じ形 (スカラー) にまとめます。")
    passed = call_student(torch.autograd.gradcheck, fn_cls.apply, (x.detach().requires_grad_(), beta),
                          raise_exception=False, what="gradcheck (SwishFunction)")
    if not passed:
        fail("torch.autograd.gradcheck (float64 の数値微分との比較) が通りませんでした。",
             "forward の中で float32 に変換していませんか? 入力の型のまま計算してください。")
    ok("SwishFunction の forward と backward (x と beta の2つの勾配) が正しく、gradcheck も通りました。")


# --- int8 ----------------------------------------------------------------------------------------

_SAVED_OUTPUT = ("ctx.save_for_backward に forward の出力を保存していませんか。出力は clamp の後なので"
                 "いつも範囲内に見えます。範囲を判定するのは入力 x です: ctx.save_for_backward(x)。")


def int8_function(fn_cls) -> None:
    """``Int8InFloatFunction``: round half to even, clamp to [-128, 127], float; STE inside the range."""
    x = torch.tensor(INT8_EDGES, requires_grad=True)
    out = _forward(fn_cls, (x,), "Int8InFloatFunction")
    expected = quant.Int8InFloatFunction.apply(x.detach())
    wrong = _first_mismatch(out.detach(), expected, x.detach())
    if wrong:
        xs, got = x.detach(), out.detach()
        differs = (got != expected) & ~(torch.isnan(got) & torch.isnan(expected))
        ties = xs - torch.floor(xs) == 0.5
        hint = _known_mistake(got, [
            (lambda: torch.clamp(torch.floor(xs), -128, 127),
             "切り捨て (torch.floor) になっています。0.6 は 1、-0.4 は -0 になるように、最も近い整数に丸めます (torch.round)。"),
            (lambda: torch.clamp(torch.trunc(xs), -128, 127),
             "0 の方向への切り捨て (torch.trunc や int(...)) になっています。最も近い整数に丸めます (torch.round)。"),
            (lambda: torch.clamp(torch.round(xs), -127, 127),
             "-128 を -127 にしています。int8 の範囲は -128〜127 (負の側が 1 つ多い) です。"),
            (lambda: torch.clamp(torch.round(xs), 0, 255),
             "0〜255 は符号なし (uint8) の範囲です。int8 (符号付き) は -128〜127 です。"),
        ])
        if hint is None and bool((differs <= ties).all()):  # only ties differ: floor(x + 0.5), C's roundf, ...
            hint = ("0.5 ちょうどの丸め方が違います。このコースは torch.round (偶数への丸め: 0.5→0, 2.5→2) "
                    "に揃えています。floor(x + 0.5) などではなく torch.round を使ってください。")
        elif hint is None and bool((got.abs() > 128).any()):
            hint = "範囲外の値が残っています。torch.clamp(…, -128, 127) で int8 の範囲に収めてください。"
        fail(f"Int8InFloatFunction の forward が違います: {wrong}。", hint or "forward は torch.clamp(torch.round(x), -128, 127) です。")
    nan_out = call_student(fn_cls.apply, torch.tensor([float("nan")]), what="Int8InFloatFunction の forward (NaN)")
    if not bool(torch.isnan(nan_out).all()):
        fail(f"NaN を入れたら {nan_out.item()} になりました。NaN は NaN のままにしてください。",
             "torch.clamp は NaN をそのまま通します。NaN を数に変えてしまうと、学習が壊れたことに気づけません。")
    grad_output = torch.linspace(1.0, 2.0, len(INT8_EDGES))  # distinct values: a mix-up shows
    (grad_x,) = _backward(out, (x,), ("x",), grad_output, "Int8InFloatFunction")
    # The intended derivative, written out: pass inside [-128, 127] (ends included), 0 outside.
    xs = x.detach()
    inside = (xs >= -128) & (xs <= 127)
    expected_grad = _pass_through(grad_output, inside)
    wrong = _first_mismatch(grad_x, expected_grad, xs)
    if wrong:
        hint = _known_mistake(grad_x, [
            (lambda: grad_output, "範囲外 (飽和している所) でも勾配を通しています。" + _SAVED_OUTPUT),
            (lambda: inside.to(grad_output.dtype), "grad_output を掛けていません (0 と 1 だけを返しています)。"
                                                    "範囲内では grad_output そのものを返します: torch.where(inside, grad_output, 0)。"),
            (lambda: torch.zeros_like(grad_output), "勾配がすべて 0 です。round の本当の微分 (ほぼどこでも 0) では"
                                                     "学習が進みません。範囲内では grad_output をそのまま通します (STE)。"),
            (lambda: _pass_through(grad_output, xs.abs() <= 127), "-128 も範囲内です (-128 <= x <= 127)。"
                                                                  "x.abs() <= 127 では -128 の勾配が 0 になります。"),
            (lambda: _pass_through(grad_output, (xs > -128) & (xs < 127)), "範囲の両端 (-128 と 127) を含めてください: "
                                                                           "(x >= -128) & (x <= 127)。"),
        ])
        fail(f"Int8InFloatFunction の backward が違います: {wrong}。",
             hint or "-128 <= x <= 127 (両端を含む) では grad_output をそのまま、範囲外では 0 を返します。"
                     "torch.where(条件, grad_output, 0) が便利です。round の微分 (ほぼどこでも 0) は使いません。")
    ok("Int8InFloatFunction: 丸め (0.5 は偶数へ)、±128 付近の飽和、NaN、backward (範囲内だけ勾配を通す) が正しいです。")


def _check_frac_refused(module_cls) -> None:
    """``Int8InFloat(frac=...)`` refuses values outside the integers 0..7."""
    for bad in (-1, 8, 2.5, "3"):
        try:
            module_cls(frac=bad)
        except NotImplementedError:
            fail("Int8InFloat の __init__ はまだ書かれていません。", "TODO の行を消して書いてください。")
        except (ValueError, TypeError):
            continue
        except Exception as e:  # noqa: BLE001
            fail(f"Int8InFloat(frac={bad!r}) で {type(e).__name__} になりました。",
                 "範囲外や整数でない frac には ValueError (または TypeError) を raise してください。")
        else:
            fail(f"Int8InFloat(frac={bad!r}) がエラーになりませんでした。frac は 0〜7 の整数だけ受け付けてください。",
                 "if not 0 <= frac <= 7: raise ValueError(...) のように書きます。")


def _make_int8_layer(module_cls, frac: int) -> nn.Module:
    try:
        layer = module_cls(frac=frac)
    except (ValueError, TypeError) as e:
        fail(f"Int8InFloat(frac={frac}) が {type(e).__name__} になりました: {e}。frac={frac} は正しい値です。",
             "受け付けるのは 0〜7 の整数で、両端 (0 と 7) も含みます: 0 <= frac <= 7。")
    except NotImplementedError:
        fail("Int8InFloat の __init__ はまだ書かれていません。", "TODO の行を消して書いてください。")
    if getattr(layer, "frac", None) != frac:
        fail(f"Int8InFloat(frac={frac}) の self.frac が {getattr(layer, 'frac', '(ありません)')!r} です。",
             "__init__ で self.frac = frac と覚えておくと、forward と extra_repr で使えます。")
    return layer


def _int8_forward_mistakes(x: torch.Tensor, frac: int) -> list[tuple[Callable[[], torch.Tensor], str]]:
    apply = quant.Int8InFloatFunction.apply
    mistakes = [
        (lambda: apply(x * 2.0**frac), "最後に 2**-frac を掛けて元の大きさに戻していません (int8 の整数のままです)。"),
        (lambda: apply(x) * 2.0**-frac, "先に x に 2**frac を掛けていません。2**frac 倍してから丸めると、"
                                        "刻みが 2**-frac になります。"),
        (lambda: apply(x * 2.0**-frac) * 2.0**frac, "倍率が逆です: 2**frac を掛けてから丸め、2**-frac を掛けて戻します。"),
    ]
    for other in range(8):
        if other != frac:
            mistakes.append((lambda other=other: quant.Int8InFloat(other)(x),
                             f"frac={frac} のはずが frac={other} の刻み (2**-{other}) になっています。"
                             "引数の frac (self.frac) を使ってください。"))
    return mistakes


def _explain_apply_misuse(failed: CheckFailed, what: str) -> None:
    """A crash from calling the Function the old way: ``Function()(x)`` or ``Function.forward(...)``."""
    cause = str(failed.__context__ or "")
    if "Legacy autograd function" in cause or "should not be instantiated" in cause:
        fail(f"{what} で Int8InFloatFunction のインスタンスを作って呼んでいます (古い書き方です)。",
             "Function はインスタンスを作らず、クラスのまま Int8InFloatFunction.apply(...) で呼びます。")
    if "save_for_backward" in cause or "has no attribute 'saved_tensors'" in cause:
        fail(f"{what} で Int8InFloatFunction.forward(...) を直接呼んでいます。",
             "forward は自分で呼ばず、Int8InFloatFunction.apply(x * 2.0**self.frac) のように .apply で呼びます "
             "(apply が ctx を作り、backward とつないでくれます)。")


def _check_int8_scaling(module_cls, frac: int) -> None:
    """Forward (2**frac scaling around the Function) and gradients of ``Int8InFloat(frac)``."""
    layer = _make_int8_layer(module_cls, frac)
    x = (torch.linspace(-3, 3, 97) + 1e-3).requires_grad_()  # many steps of 1/64, off the grid
    what = f"Int8InFloat(frac={frac})"
    try:
        out = _forward(SimpleNamespace(apply=layer), (x,), what)
    except CheckFailed as failed:
        _explain_apply_misuse(failed, what)
        raise
    expected = quant.Int8InFloat(frac)(x.detach())
    wrong = _first_mismatch(out.detach(), expected, x.detach())
    if wrong:
        hint = _known_mistake(out, _int8_forward_mistakes(x.detach(), frac))
        fail(f"Int8InFloat(frac={frac}) の出力が違います: {wrong}。",
             hint or f"x に 2**frac を掛けてから Int8InFloatFunction.apply、その結果に 2**-frac を掛けます "
                     f"(frac={frac} なら刻みは {2.0**-frac:g}、範囲は [{-128 * 2.0**-frac:g}, {127 * 2.0**-frac:g}])。")
    grad_output = torch.linspace(1.0, 2.0, x.numel())
    (grad_x,) = _backward(out, (x,), ("x",), grad_output, what)
    reference = x.detach().clone().requires_grad_()
    (expected_grad,) = torch.autograd.grad(quant.Int8InFloat(frac)(reference), reference, grad_output)
    if not bool(grad_x.abs().sum() > 0):
        fail(f"Int8InFloat(frac={frac}) の勾配がすべて 0 です (Straight-Through Estimator が働いていません)。",
             "forward で torch.round / torch.clamp を直接使うと、round の微分 (ほぼどこでも 0) が使われます。"
             "上で作った Int8InFloatFunction.apply(x * 2.0**self.frac) を呼んでください。")
    wrong = _first_mismatch(grad_x, expected_grad, x.detach())
    if wrong:
        fail(f"Int8InFloat(frac={frac}) の勾配が違います: {wrong}。",
             "2**frac 倍 → Int8InFloatFunction.apply → 2**-frac 倍 の順にすると、範囲内の勾配は "
             "2**frac × 2**-frac = 1 になります。倍率の掛け忘れ・掛けすぎがないか確かめてください。")


def int8_module(module_cls) -> None:
    """``Int8InFloat(frac)``: validation of ``frac``, the 2**frac scaling, ``extra_repr``, gradients."""
    _check_frac_refused(module_cls)
    for frac in (0, 6, 7):
        _check_int8_scaling(module_cls, frac)
    layer = _make_int8_layer(module_cls, 6)
    text = call_student(repr, layer, what="print(Int8InFloat(frac=6)) (extra_repr)")
    if "frac=6" not in text:
        fail(f"print(Int8InFloat(frac=6)) が {text} です。frac=6 が見えるようにしてください。",
             "def extra_repr(self): return f\"frac={self.frac}\" を書くと、print(model) に表示されます"
             " (print するのではなく、文字列を return します)。")
    ok(f"Int8InFloat: frac の検査、2**frac 倍のスケーリング、表示 {text} が正しいです。")


# --- 1 bit ---------------------------------------------------------------------------------------


def binary_sign(fn_cls) -> None:
    """``BinarySignFunction``: ±1 with 0 -> +1; backward = straight-through estimator (|x| <= 1)."""
    x = torch.tensor(SIGN_EDGES, requires_grad=True)
    out = _forward(fn_cls, (x,), "BinarySignFunction")
    expected = quant.BinarySignFunction.apply(x.detach())
    wrong = _first_mismatch(out.detach(), expected, x.detach())
    if wrong:
        xs = x.detach()
        hint = "x >= 0 なら +1、x < 0 なら -1 です。torch.where(x >= 0, 1.0, -1.0) のように書けます。"
        known = _known_mistake(out, [
            (lambda: torch.where(xs > 0, 1.0, -1.0), "0 が -1 になっています (x > 0 で判定している)。"
                                                     "このコースの約束では 0 は +1 です: x >= 0。"),
            (lambda: (xs >= 0).to(xs.dtype), "0 と 1 になっています。±1 にします: x < 0 は -1。"),
        ])
        if known:
            hint = known + hint
        elif bool((out.detach() == 0).any()):
            hint = "0 が 0 のままです。torch.sign は 0 を 0 にするので、このコースの約束 (0 は +1) に合いません。" + hint
        fail(f"BinarySignFunction の forward が違います: {wrong}。", hint)
    grad_output = torch.linspace(1.0, 2.0, len(SIGN_EDGES))
    (grad_x,) = _backward(out, (x,), ("x",), grad_output, "BinarySignFunction")
    xs = x.detach()
    expected_grad = _pass_through(grad_output, xs.abs() <= 1)
    wrong = _first_mismatch(grad_x, expected_grad, xs)
    if wrong:
        hint = _known_mistake(grad_x, [
            (lambda: grad_output, "|x| > 1 でも勾配を通しています。窓 |x| <= 1 の外は 0 です。"
                                  "ctx.save_for_backward に出力 (±1) を保存していませんか: |±1| <= 1 はいつも真です。"
                                  "保存するのは入力 x です。"),
            (lambda: torch.zeros_like(grad_output), "勾配がすべて 0 です。sign の本当の微分 (ほぼどこでも 0) では"
                                                     "前の層が学習できません。|x| <= 1 では grad_output を通します (STE)。"),
            (lambda: _pass_through(grad_output, xs.abs() < 1), "|x| がちょうど 1 のときも通します (両端を含む: x.abs() <= 1)。"),
            (lambda: (xs.abs() <= 1).to(grad_output.dtype), "grad_output を掛けていません (0 と 1 だけを返しています)。"),
        ])
        fail(f"BinarySignFunction の backward が違います: {wrong}。",
             hint or "Straight-Through Estimator: |x| <= 1 (両端を含む) では grad_output をそのまま、外では 0 です。"
                     "sign の本当の微分 (ほぼどこでも 0) では学習が進みません。")
    ok("BinarySignFunction: ±1 (0 は +1) と Straight-Through Estimator (|x| <= 1 で勾配を通す) が正しいです。")


# --- layers --------------------------------------------------------------------------------------

_CONV_OPTIONS = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}


def _layer_forward(name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The student's layer on ``x``; the crashes of a hand-written F.conv2d / x @ w named in Japanese."""
    try:
        return call_student(layer, x, what=f"{name} の forward")
    except CheckFailed as failed:
        cause = str(failed.__context__ or "")
        if "expected input" in cause and "channels" in cause:
            fail(f"{name} の forward で入力のチャンネル数が合わないエラーになりました ({cause})。",
                 "F.conv2d に groups を渡していません。groups=2 の層では重みが (出力, 入力/2, 3, 3) なので、"
                 "groups=self.groups も渡します。親の self._conv_forward(x, w, self.bias) を使うと、stride, padding,"
                 " dilation, groups, padding_mode が全部親と同じになります。")
        if "mat1 and mat2 shapes cannot be multiplied" in cause:
            fail(f"{name} の forward で行列の形が合いません ({cause})。",
                 "重みは (出力, 入力) の形です。x @ w ではなく nn.functional.linear(x, w, self.bias) "
                 "(= x @ w.T + bias) を使います。")
        if "invalid combination of arguments" in cause or "must be Tensor, not" in cause:
            fail(f"{name} の forward で、重みの所に Tensor でないものを渡しています ({cause.splitlines()[0]})。",
                 "self.quantizer は部品 (nn.Module) です。重みを量子化した Tensor は w = self.quantizer(self.weight) で作り、"
                 "その w を渡します。")
        raise


def _layer_mistakes(layer: nn.Module, x: torch.Tensor, compute) -> list[tuple[Callable[[], torch.Tensor], str]]:
    """Known wrong forwards of a quantised layer; ``compute(inp, w, bias, **options)`` is the parent's computation."""
    q, w, b = layer.quantizer, layer.weight.detach(), layer.bias
    b = None if b is None else b.detach()
    mistakes = [(lambda: compute(x, q(w), None), "bias を足していません。self.bias も渡します (bias は量子化しません)。"),
                (lambda: compute(x, q(w), q(b)), "bias まで量子化しています。量子化するのは重みだけで、bias はそのまま "
                                                 "self.bias を渡します。"),
                (lambda: compute(q(x), w, b), "入力 x を量子化して、重みは float のままです。量子化するのは重み: "
                                              "w = self.quantizer(self.weight)。")] if b is not None else []
    if isinstance(layer, nn.Conv2d):
        # F.conv2d written by hand with some of the layer's options left out (groups: see _layer_forward)
        defaults = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
        names = [k for k, default in defaults.items() if getattr(layer, k) != default]
        for n in range(1, len(names) + 1):
            for left_out in itertools.combinations(names, n):
                kept = {k: getattr(layer, k) for k in ("stride", "padding", "dilation", "groups") if k not in left_out}
                mistakes.append((lambda kept=kept: F.conv2d(x, q(w), b, **kept),
                                 f"F.conv2d に {', '.join(left_out)} を渡していません (既定値 1 や 0 になります)。"
                                 "親の self._conv_forward(x, w, self.bias) を使うと、層の設定がすべてそのまま使われます。"))
        if layer.padding_mode != "zeros":
            mistakes.append((lambda: F.conv2d(x, q(w), b, layer.stride, layer.padding, layer.dilation, layer.groups),
                             f"padding_mode={layer.padding_mode!r} が無視されています (0 で埋めています)。"
                             "F.conv2d ではなく親の self._conv_forward(x, w, self.bias) を使うと、padding_mode も親と同じです。"))
    return mistakes


def _prepare_layer(name: str, layer: nn.Module, base: type) -> None:
    """The student's layer is a subclass of ``base`` with a quantizer; its weights set off the int8 grid."""
    if not isinstance(layer, base):
        fail(f"{name} が {base.__name__} のサブクラスではありません。",
             f"class {name}(nn.{base.__name__}): と書くと、stride や padding などの機能をそのまま受け継げます。")
    with torch.no_grad():  # weights off the int8 grid, so "not quantised" is visible
        layer.weight.copy_(torch.linspace(-0.9, 0.9, layer.weight.numel()).reshape(layer.weight.shape) + 1e-3)
        if layer.bias is not None:
            layer.bias.copy_(torch.linspace(-0.3, 0.4, layer.bias.numel()) + 1e-3)  # off the grid too
    if not isinstance(getattr(layer, "quantizer", None), nn.Module):
        fail(f"{name} に self.quantizer (nn.Module) がありません。",
             "__init__ の self.quantizer = quantizer if quantizer is not None else Int8InFloat(frac=7) を消していませんか。")


def _check_layer(name: str, layer: nn.Module, base: type, x: torch.Tensor,
                 reference: Callable[..., torch.Tensor]) -> None:
    _prepare_layer(name, layer, base)
    before = layer.weight.detach().clone()
    out = _layer_forward(name, layer, x)
    if not isinstance(out, torch.Tensor):
        fail(f"{name} の forward が Tensor を返しませんでした。", "return を忘れていませんか?")
    if not torch.equal(layer.weight.detach(), before):
        fail(f"{name} の forward が self.weight そのものを書き換えています。",
             "量子化した重みは新しい変数 (w = self.quantizer(self.weight)) に入れてください。"
             "self.weight は float のまま残し (shadow weight)、オプティマイザはそれを少しずつ更新します。")
    bias = None if layer.bias is None else layer.bias.detach()
    quantized = reference(x, layer.quantizer(layer.weight.detach()), bias)
    plain = reference(x, layer.weight.detach(), bias)
    known = _known_mistake(out, _layer_mistakes(layer, x, reference), exact=False)
    if known:
        fail(f"{name} の出力が、量子化した重みで計算した値と違います。", known)
    if out.shape != quantized.shape:
        fail(f"{name} の出力の形が {tuple(out.shape)} です (正しくは {tuple(quantized.shape)})。",
             "stride, padding, dilation, groups などは親クラスの設定 (self.stride ...) をそのまま使ってください。"
             "親の self._conv_forward(x, w, self.bias) を使うのがいちばん確かです。")
    if torch.allclose(out, plain, atol=1e-6) and not torch.allclose(out, quantized, atol=1e-6):
        fail(f"{name} の重みが量子化されていません (普通の {base.__name__} と同じ出力です)。",
             "forward の最初で w = self.quantizer(self.weight) とし、その w で計算してください。")
    if not torch.allclose(out, quantized, atol=1e-5):
        fail(f"{name} の出力が、量子化した重みで計算した値と違います。",
             "bias はそのまま、重みだけ self.quantizer(self.weight) に置き換えて、親と同じ計算をしてください。")
    call_student(lambda: out.sum().backward(), what="backward (out.sum().backward())")
    if layer.weight.grad is None or not bool(layer.weight.grad.abs().sum() > 0):
        fail(f"{name} の weight に勾配が届きません。",
             "量子化は .apply を使う Function (STE) で行い、.detach() や torch.no_grad() を使わないでください。")


def quantized_layers(conv_cls, linear_cls) -> None:
    """``QuantizedConv2d`` / ``QuantizedLinear``: the weight is quantised, everything else as the parent."""
    q = quant.Int8InFloat(frac=5)
    x = torch.linspace(-1, 1, 2 * 4 * 7 * 7).reshape(2, 4, 7, 7)
    what = "QuantizedConv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, quantizer=...)"
    conv = call_student(conv_cls, 4, 6, 3, bias=True, quantizer=q, what=what, **_CONV_OPTIONS)
    _check_layer("QuantizedConv2d", conv, nn.Conv2d, x,
                 lambda inp, w, b: F.conv2d(inp, w, b, **_CONV_OPTIONS))
    reflect = call_student(conv_cls, 4, 6, 3, padding=1, padding_mode="reflect", quantizer=q,
                           what="QuantizedConv2d(4, 6, 3, padding=1, padding_mode=\"reflect\", quantizer=...)")
    _check_layer("QuantizedConv2d", reflect, nn.Conv2d, x,
                 lambda inp, w, b: F.conv2d(F.pad(inp, (1, 1, 1, 1), mode="reflect"), w, b))
    linear = call_student(linear_cls, 12, 5, quantizer=q, what="QuantizedLinear(12, 5, quantizer=...)")
    _check_layer("QuantizedLinear", linear, nn.Linear, torch.linspace(-2, 2, 36).reshape(3, 12),
                 lambda inp, w, b: F.linear(inp, w, b))
    ok("QuantizedConv2d / QuantizedLinear: 重みだけを量子化し、stride, padding, dilation, groups, padding_mode, bias は"
       "親クラスのままです。")


_BLOCK_ORDER = ["conv", "pool", "bn", "sign"]
_BLOCK_WORDS = {"conv": "量子化 conv", "pool": "MaxPool", "bn": "BatchNorm", "sign": "±1 (BinarySign)",
                "relu": "ReLU", "linear": "量子化 Linear"}


def _layer_kind(module: nn.Module, output: torch.Tensor) -> str:
    """What a layer is, in the words of :data:`_BLOCK_WORDS` ("sign" for any layer whose output is ±1)."""
    for types, name in ((nn.Conv2d, "conv"), (nn.Linear, "linear"), ((nn.MaxPool2d, nn.AvgPool2d), "pool"),
                        (nn.modules.batchnorm._BatchNorm, "bn"), ((nn.ReLU, nn.ReLU6, nn.LeakyReLU), "relu")):
        if isinstance(module, types):
            return name
    values = output.detach()
    return "sign" if bool(((values == 1) | (values == -1)).all()) else type(module).__name__


def _block_order(block: nn.Module, x: torch.Tensor, name: str) -> tuple[list[str], torch.Tensor]:
    """Run ``block`` on ``x``; the kinds of layers in the order they ran, and the output.

    Hooks sit on every Conv2d / Linear and every leaf module that is not inside one (the quantizer of
    a quantised layer runs as part of the layer). A crash is explained with the layer it happened in.
    """
    weighted = (nn.Conv2d, nn.Linear)
    inside_conv = {id(m) for c in block.modules() if isinstance(c, weighted) for m in c.modules() if m is not c}
    watched = [m for m in block.modules() if id(m) not in inside_conv and m is not block
               and (isinstance(m, weighted) or not list(m.children()))]
    order: list[str] = []
    entered: list[tuple[nn.Module, tuple[int, ...]]] = []

    def pre_hook(module, inputs):
        if inputs and isinstance(inputs[0], torch.Tensor):
            entered.append((module, tuple(inputs[0].shape)))

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            order.append(_layer_kind(module, output))

    handles = [m.register_forward_pre_hook(pre_hook) for m in watched] + [m.register_forward_hook(hook)
                                                                          for m in watched]
    try:
        out = block(x)
    except NotImplementedError:
        fail(f"{name} はまだ書かれていません (NotImplementedError)。", "TODO の行を消して書いてください。")
    except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint
        explained = layer_mismatch(*entered[-1]) if entered else None
        fail(f"{name} の forward でエラーになりました: {explained or ''}\n   (PyTorch のエラー: {type(e).__name__}: {e})",
             "層の順番と引数を確かめてください: QuantizedConv2d(cin, cout, ...) の後の層はすべて cout チャンネルです。")
    finally:
        for h in handles:
            h.remove()
    return order, out


def _check_block_order(order: list[str], name: str, expected: list[str], why: dict[tuple[str, str], str]) -> None:
    """The layers ran in ``expected`` order; otherwise name the first pair that is swapped."""
    seen = [k for k in order if k in expected]
    if seen == expected:
        return
    words = " → ".join(_BLOCK_WORDS.get(k, k) for k in order)
    want = " → ".join(_BLOCK_WORDS[k] for k in expected)
    reason = next((text for (a, b), text in why.items() if a in seen and b in seen and seen.index(a) > seen.index(b)),
                  "")
    fail(f"{name} の層の順番が {words} です。このコースの順番は {want} です。", reason or f"{want} の順に並べてください。")


_BLOCK_WHY = {
    ("conv", "bn"): "BatchNorm は畳み込みの後です (畳み込みの出力をそろえます)。",
    ("conv", "pool"): "プーリングは畳み込みの後です。先に縮めると、畳み込みが見る画像が粗くなります。",
    ("pool", "sign"): "プーリングは ±1 にする前です。±1 の最大値を取ると、ほとんどが +1 になって情報が減ります。",
    ("pool", "bn"): "BatchNorm は ±1 の直前 (プーリングの後) です。そうすると BatchNorm が、符号を取る値そのものの"
                    "しきい値 (どこを 0 にするか) を学習します。",
    ("bn", "sign"): "BatchNorm は ±1 の前です。±1 の後に BatchNorm を置くと、出力が ±1 でなくなります。",
}


def binary_block(make_block: Callable[..., nn.Module]) -> None:
    """A block ``make_block(cin, cout)``: quantised conv → MaxPool → BatchNorm → ±1, half the size, gradients."""
    torch.manual_seed(0)
    block = call_student(make_block, 3, 8, what="binary_block(3, 8)")
    if not isinstance(block, nn.Module):
        fail(f"binary_block が nn.Module ではなく {type(block).__name__} を返しました。",
             "nn.Sequential(層1, 層2, ...) を return してください。")
    kinds = [type(m).__name__ for m in block.modules()]
    if not any(hasattr(m, "quantizer") and isinstance(m, nn.Conv2d) for m in block.modules()):
        fail(f"binary_block に量子化した畳み込みがありません (中身: {kinds})。",
             "nn.Conv2d ではなく、上で作った QuantizedConv2d(cin, cout, 3, padding=1, bias=False) を使ってください。")
    if not any(isinstance(m, nn.BatchNorm2d) for m in block.modules()):
        other = [k for k in kinds if "BatchNorm" in k]
        fail(f"binary_block に BatchNorm2d がありません (中身: {kinds})。",
             ("畳み込みの出力 (B, C, H, W) には nn.BatchNorm2d(cout) を使います (1d は全結合用)。" if other else
              "符号 (±1) を取る直前に nn.BatchNorm2d(cout) を入れると、0 の位置 (しきい値) を学習できます。"))
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    order, out = _block_order(block, x, "binary_block(3, 8)")
    if not isinstance(out, torch.Tensor):
        fail(f"binary_block の forward が Tensor ではなく {type(out).__name__} を返しました。", "return を確かめてください。")
    if "relu" in order and "sign" not in order:
        fail("binary_block の最後が ReLU です。活性化は ±1 (BinarySign) にします。",
             "nn.ReLU() の代わりに、上で作った BinarySign() を置いてください。")
    if "sign" not in order:
        values = sorted(set(out.detach().flatten()[:200].tolist()))
        fail(f"binary_block の出力が ±1 ではありません (例: {values[:5]})。",
             "最後に BinarySign (BinarySignFunction.apply) を置いてください。ReLU ではありません。")
    _check_block_order(order, "binary_block", _BLOCK_ORDER, _BLOCK_WHY)
    if out.shape != (2, 8, 8, 8):
        fail(f"binary_block(3, 8) の出力の形が {tuple(out.shape)} です。(2, 3, 16, 16) から (2, 8, 8, 8) にしてください。",
             "3×3 の畳み込みは padding=1 で大きさを保ち、nn.MaxPool2d(2) で縦横を半分にします。")
    values = set(out.detach().unique().tolist())
    if not values <= {-1.0, 1.0}:
        fail(f"binary_block の出力が ±1 ではありません (例: {sorted(values)[:5]})。",
             "最後に BinarySign (BinarySignFunction.apply) を置いてください。ReLU ではありません。")
    call_student(lambda: out.sum().backward(), what="backward (out.sum().backward())")
    if x.grad is None or not bool(x.grad.abs().sum() > 0):
        fail("binary_block の入力まで勾配が届きません。",
             "BinarySignFunction の backward (STE) で勾配が通るはずです。.detach() を使っていませんか?")
    ok(f"binary_block: 量子化 conv → MaxPool → BatchNorm → ±1、出力 {tuple(out.shape)}、勾配も入力まで届きます。")


def binary_fc_block(make_block: Callable[..., nn.Module]) -> None:
    """``make_block(fin, fout)``: QuantizedLinear (no bias) → BatchNorm1d → ±1, on (B, fin) features."""
    torch.manual_seed(0)
    block = call_student(make_block, 12, 6, what="binary_fc_block(12, 6)")
    if not isinstance(block, nn.Module):
        fail(f"binary_fc_block が nn.Module ではなく {type(block).__name__} を返しました。",
             "nn.Sequential(層1, 層2, 層3) を return してください。")
    kinds = [type(m).__name__ for m in block.modules()]
    if not any(hasattr(m, "quantizer") and isinstance(m, nn.Linear) for m in block.modules()):
        fail(f"binary_fc_block に量子化した全結合層がありません (中身: {kinds})。",
             "nn.Linear ではなく QuantizedLinear(fin, fout, bias=False, quantizer=Int8InFloat(frac)) を使ってください。")
    x = torch.randn(5, 12, requires_grad=True)
    order, out = _block_order(block, x, "binary_fc_block(12, 6)")
    if not any(isinstance(m, nn.BatchNorm1d) for m in block.modules()):
        fail(f"binary_fc_block に BatchNorm1d がありません (中身: {kinds})。",
             "全結合層の出力 (B, 特徴数) には nn.BatchNorm1d(fout) を使います。")
    fc_order = [k for k in order if k in ("bn", "sign", "relu")]
    if "relu" in fc_order and "sign" not in fc_order:
        fail("binary_fc_block の最後が ReLU です。活性化は ±1 (BinarySign) にします。",
             "nn.ReLU() の代わりに BinarySign() を置いてください。")
    if fc_order != ["bn", "sign"]:
        fail(f"binary_fc_block の層の順番が {' → '.join(_BLOCK_WORDS.get(k, k) for k in order)} です。"
             "QuantizedLinear → BatchNorm1d → ±1 の順にしてください。", _BLOCK_WHY[("bn", "sign")])
    if out.shape != (5, 6):
        fail(f"binary_fc_block(12, 6) の出力の形が {tuple(out.shape)} です。(5, 12) から (5, 6) にしてください。",
             "QuantizedLinear(fin, fout) の出力は (B, fout) です。")
    if not set(out.detach().unique().tolist()) <= {-1.0, 1.0}:
        fail("binary_fc_block の出力が ±1 ではありません。", "最後に BinarySign() を置いてください。")
    linear = next(m for m in block.modules() if isinstance(m, nn.Linear))
    if linear.bias is not None:
        fail("binary_fc_block の QuantizedLinear に bias があります。",
             "BatchNorm1d のずらし (β) が bias の代わりになるので、bias=False にします (パラメータの無駄を省く)。")
    call_student(lambda: out.sum().backward(), what="backward (out.sum().backward())")
    if x.grad is None or not bool(x.grad.abs().sum() > 0):
        fail("binary_fc_block の入力まで勾配が届きません。", "BinarySign の STE で勾配が通るはずです。.detach() を使っていませんか?")
    ok("binary_fc_block: QuantizedLinear → BatchNorm1d → ±1、出力 (B, fout)、勾配も入力まで届きます。")


# Ties of the fixed-point grid for (bits, frac) = (4, 1): x * 2 = 0.5, 2.5, -1.5, -2.5, where
# floor(s + 0.5) (C's roundf for positives) and torch.round (half to even) disagree.
_FIXED_POINT_X = [-1e9, -8.3, -4.0, -2.25, -1.25, -0.75, -0.375, -0.0, 0.125, 0.25, 0.3, 0.375, 1.0, 1.25,
                  3.875, 3.9375, 100.0]


def fixed_point(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Homework: an n-bit fixed-point quantiser ``fn(x, bits, frac)`` against :class:`quant.FixedPoint`.

    Forward values (ties to even included) and the gradient: 1 inside the range, 0 outside.
    """
    x = torch.tensor(_FIXED_POINT_X)
    for bits, frac in ((4, 1), (4, 3), (8, 7), (12, 4)):
        what = f"fixed_point(x, bits={bits}, frac={frac})"
        leaf = x.clone().requires_grad_()
        got = call_student(fn, leaf, bits, frac, what=what)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            fail(f"{what} が x と同じ形の Tensor を返していません ({type(got).__name__})。",
                 "最後に return q * 2.0**-frac のように、x と同じ形の Tensor を返してください。")
        expected = quant.FixedPoint(bits, frac)(x)
        wrong = _first_mismatch(got.detach(), expected, x)
        if wrong:
            scaled = x * 2.0**frac
            ties = (scaled - torch.floor(scaled) == 0.5) & (scaled.abs() <= 2 ** (bits - 1))
            differs = got.detach() != expected
            hint = (f"範囲は [-2^(bits-1), 2^(bits-1)-1] × 2^-frac = [{-(2 ** (bits - 1)) * 2.0**-frac:g}, "
                    f"{(2 ** (bits - 1) - 1) * 2.0**-frac:g}]、刻みは {2.0**-frac:g} です。")
            if bool((differs <= (x.abs() >= 1e6)).all()):
                hint = ("とても大きな x で値が狂っています (float の桁落ち)。x + (q - x).detach() の形は、x が大きいと"
                        " (q - x) が丸められて値が変わります。s = torch.clamp(x * 2.0**frac, 下限, 上限) を先に作り、"
                        "s + (torch.round(s) - s).detach() と、範囲に収めた s で detach の技を使ってください。")
            elif bool((differs <= ties).all()):
                hint = ("0.5 ちょうどの丸め方が違います。このコースの丸めは torch.round (偶数への丸め: "
                        "0.5→0, 2.5→2, -1.5→-2) です。floor(s + 0.5) は四捨五入なので使いません。")
            fail(f"bits={bits}, frac={frac} の固定小数点が違います: {wrong}。", hint)
        if got.grad_fn is None:
            fail(f"{what} の出力に勾配が流れません (grad_fn がありません)。",
                 "全体を .detach() したり torch.no_grad() の中で計算したりしないでください。"
                 "detach するのは (torch.round(s) - s) の部分だけです。")
        grad_output = torch.linspace(1.0, 2.0, x.numel())
        (grad,) = torch.autograd.grad(got, leaf, grad_output, allow_unused=True)
        reference = x.clone().requires_grad_()
        (expected_grad,) = torch.autograd.grad(quant.FixedPoint(bits, frac)(reference), reference, grad_output)
        if grad is None or not bool(grad.abs().sum() > 0):
            fail(f"{what} の勾配がすべて 0 です (Straight-Through Estimator になっていません)。",
                 "torch.round の微分はほぼどこでも 0 です。s + (torch.round(s) - s).detach() と、round の部分だけを "
                 ".detach() で勾配の計算から外すと、backward では s の勾配 (1) がそのまま通ります。")
        # Exactly at the two ends either answer is right: the reference passes the gradient there,
        # torch.clamp's own backward (the detach trick's clamp) gives 0 there (docs/04).
        scaled = x * 2.0**frac
        ends = (scaled == -(2 ** (bits - 1))) | (scaled == 2 ** (bits - 1) - 1)
        wrong = _first_mismatch(torch.where(ends, expected_grad, grad), expected_grad, x)
        if wrong:
            fail(f"{what} の勾配が違います: {wrong}。",
                 "範囲内では grad_output がそのまま、範囲外 (飽和している所) では 0 です。"
                 "s = torch.clamp(x * 2.0**frac, 下限, 上限) と clamp を detach の外に置くと、"
                 "clamp の backward が範囲外を 0 にします。")
    ok("固定小数点 (n ビット): 値 (0.5 は偶数へ丸める) と勾配 (範囲内だけ通す) が参考実装と一致しました。")


# --- ternary and power-of-two (logarithmic) quantisers -------------------------------------------

# The notebook's threshold first; the second catches a forward that writes 0.5 in instead of using the argument.
TERNARY_THRESHOLDS = (0.5, 0.2)
TERNARY_EDGES = [-float("inf"), -3.0, -1.0001, -1.0, -0.6, -0.5, -0.4999, -0.2, -0.0, 0.0, 0.3, 0.4999, 0.5,
                 0.50001, 0.9, 1.0, 1.0001, 3.0, float("inf")]


def _ternary_edges(threshold: float) -> list[float]:
    """The edge values with the threshold and its neighbours on both sides."""
    near = [threshold - 1e-4, threshold, threshold + 1e-5]
    return TERNARY_EDGES + [-v for v in near] + near


def _check_ternary_forward(fn_cls, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, out) of the forward at ``threshold``, compared with the reference."""
    x = torch.tensor(_ternary_edges(threshold), requires_grad=True)
    out = _forward(fn_cls, (x, threshold), "TernaryFunction")
    expected = quant.TernaryFunction.apply(x.detach(), threshold)
    wrong = _first_mismatch(out.detach(), expected, x.detach())
    if not wrong:
        return x, out
    xs, got = x.detach(), out.detach()
    first = TERNARY_THRESHOLDS[0]
    at_threshold = xs.abs() == threshold
    if threshold != first and _same(got, quant.TernaryFunction.apply(xs, first), exact=True):
        hint = (f"threshold = {threshold:g} で呼んでも、しきい値 {first:g} で計算しています。{first:g} と書き込まず、"
                "引数の threshold を使ってください (quant.Ternary(0.05) のように別のしきい値でも使います)。")
    elif bool((got[at_threshold] == 0).all()) and bool(((got != expected) <= at_threshold).all()):
        hint = (f"|x| がしきい値ちょうど (±{threshold:g}) のときは ±1 です。0 にするのは |x| < threshold (等号なし) "
                "だけです。x.abs() <= threshold ではなく x.abs() < threshold で判定してください。")
    elif bool((got.abs() > 1).any()):
        hint = "出力は -1, 0, +1 の 3 つだけです。x の値そのものを返していませんか。"
    else:
        hint = ("x >= threshold なら +1、x <= -threshold なら -1、その間 (|x| < threshold) は 0 です。"
                "torch.where を 2 回重ねると書けます。")
    fail(f"TernaryFunction の forward が違います (threshold = {threshold:g}): {wrong}。", hint)
    return x, out


def ternary_function(fn_cls) -> None:
    """``TernaryFunction.apply(x, threshold)``: -1/0/+1 with 0 where ``|x| < threshold``; STE for ``|x| <= 1``.

    The forward is tried with two thresholds (a threshold written in passes one only); the backward once."""
    x, out = _check_ternary_forward(fn_cls, TERNARY_THRESHOLDS[0])
    for threshold in TERNARY_THRESHOLDS[1:]:
        _check_ternary_forward(fn_cls, threshold)
    nan_out = call_student(fn_cls.apply, torch.tensor([float("nan")]), TERNARY_THRESHOLDS[0],
                           what="TernaryFunction の forward (NaN)")
    if not bool(torch.isnan(nan_out).all()):
        fail(f"NaN を入れたら {nan_out.item()} になりました。NaN は NaN のままにしてください。",
             "torch.where(torch.isnan(x), x, 結果) で NaN を残せます。NaN を数に変えると、学習が壊れたことに気づけません。")
    grad_output = torch.linspace(1.0, 2.0, len(x))
    (grad_x,) = _backward(out, (x, TERNARY_THRESHOLDS[0]), ("x", "threshold"), grad_output, "TernaryFunction")
    expected_grad = torch.where(x.detach().abs() <= 1, grad_output, torch.zeros_like(grad_output))
    wrong = _first_mismatch(grad_x, expected_grad, x.detach())
    if wrong:
        fail(f"TernaryFunction の backward が違います: {wrong}。",
             "BinarySign と同じ STE です: |x| <= 1 (両端を含む) では grad_output をそのまま、外では 0。"
             "threshold は設定値なので、その勾配は None を返します (return grad_x, None)。")
    ok(f"TernaryFunction: -1/0/+1 (|x| < threshold が 0、しきい値ちょうどは ±1; threshold = "
       f"{' と '.join(f'{t:g}' for t in TERNARY_THRESHOLDS)} で確認)、NaN、STE の backward が正しいです。")


# (min_exp, max_exp): the first gives magnitudes 2**-4 .. 2**1 (below 2**-4.5 the value becomes 0); the second
# catches a forward or backward that writes the first pair in instead of using the arguments.
POWER_EXPS = ((-4, 1), (-2, 2))
POWER_EDGES = [-float("inf"), -100.0, -2.9, -1.5, -1.0, -0.7, -0.1, -0.05, -0.04, -0.0, 0.0, 0.03, 0.04,
               0.05, 0.1, 0.3, 0.7, 1.0, 1.3, 2.0, 2.9, 3.0, 4.0, 5.0, 100.0, float("inf")]


def _power_reference(x: torch.Tensor, min_exp: int, max_exp: int) -> torch.Tensor:
    return quant.PowerOfTwoFunction.apply(x, min_exp, max_exp)


def _power_forward_hint(got: torch.Tensor, xs: torch.Tensor, lo: int, hi: int) -> str:
    """What a wrong forward at (min_exp, max_exp) = (lo, hi) most likely did."""
    expected = _power_reference(xs, lo, hi)
    first_lo, first_hi = POWER_EXPS[0]
    written_in = {"min_exp と max_exp": (first_lo, first_hi), "min_exp": (first_lo, hi), "max_exp": (lo, first_hi)}
    for names, (wlo, whi) in written_in.items():
        if (wlo, whi) != (lo, hi) and _same(got, _power_reference(xs, wlo, whi), exact=True):
            return (f"min_exp = {lo}, max_exp = {hi} で呼んでも、{names} が {first_lo}, {first_hi} のまま"
                    f"計算されています。数を書き込まず、引数の {names} を使ってください "
                    "(quant.PowerOfTwo(-7, 0) のように別の範囲でも使います)。")
    floored = torch.floor(torch.log2(xs.abs()))
    with_floor = torch.sign(xs) * torch.where(floored < lo, 0.0, torch.exp2(floored.clamp(max=hi)))
    if _first_mismatch(got, with_floor, xs) is None:
        return ("指数を torch.floor で切り捨てています。log2|x| は torch.round で丸めます "
                "(1.5 なら log2 1.5 = 0.58 を丸めて 2^1 = 2。floor だと 2^0 = 1 になります)。")
    if bool(((got > 0) & (expected < 0)).any()):
        return "負の数の符号が消えています。大きさ |x| で 2 のべき乗を求め、最後に torch.sign(x) を掛けます。"
    if bool((got.abs() > 2.0**hi).any()):
        return f"大きさが 2**max_exp = {2.0**hi:g} を超えています。指数を .clamp(max=max_exp) してください。"
    if bool(((got != 0) & (expected == 0)).any()):
        return (f"小さすぎる値 (指数を丸めると min_exp = {lo} より小さい) は 0 にします: "
                "torch.where(exponent < min_exp, 0.0, torch.exp2(exponent)).")
    return "forward は sign(x) × 2^round(log2|x|) です。torch.log2, torch.round, torch.exp2 を使います。"


def _check_power_pair(fn_cls, lo: int, hi: int) -> None:
    """Forward and backward of the student's class with (min_exp, max_exp) = (lo, hi)."""
    x = torch.tensor(POWER_EDGES, requires_grad=True)
    out = _forward(fn_cls, (x, lo, hi), "PowerOfTwoFunction")
    wrong = _first_mismatch(out.detach(), _power_reference(x.detach(), lo, hi), x.detach())
    if wrong:
        fail(f"PowerOfTwoFunction の forward が違います (min_exp = {lo}, max_exp = {hi}): {wrong}。",
             _power_forward_hint(out.detach(), x.detach(), lo, hi))
    if (lo, hi) == POWER_EXPS[0]:
        nan_out = call_student(fn_cls.apply, torch.tensor([float("nan")]), lo, hi,
                               what="PowerOfTwoFunction の forward (NaN)")
        if not bool(torch.isnan(nan_out).all()):
            fail(f"NaN を入れたら {nan_out.item()} になりました。NaN は NaN のままにしてください。",
                 "torch.where(torch.isnan(x), x, 結果) で NaN を残せます。")
    grad_output = torch.linspace(1.0, 2.0, len(POWER_EDGES))
    (grad_x,) = _backward(out, (x, lo, hi), ("x", "min_exp", "max_exp"), grad_output, "PowerOfTwoFunction")
    xs = x.detach()

    def ste(limit: float) -> torch.Tensor:
        return torch.where(xs.abs() <= limit, grad_output, torch.zeros_like(grad_output))

    wrong = _first_mismatch(grad_x, ste(2.0**hi), xs)
    if not wrong:
        return
    first_hi = POWER_EXPS[0][1]
    if hi != first_hi and _first_mismatch(grad_x, ste(2.0**first_hi), xs) is None:
        fail(f"PowerOfTwoFunction の backward の範囲が、max_exp = {hi} でも 2**{first_hi} = {2.0**first_hi:g} の"
             f"ままです: {wrong}。",
             "範囲を数で書き込まず、forward で ctx.limit = 2.0**max_exp と保存して、backward で x.abs() <= ctx.limit "
             "と使います。")
    fail(f"PowerOfTwoFunction の backward が違います (max_exp = {hi}): {wrong}。",
         f"STE: |x| <= 2**max_exp (= {2.0**hi:g}、両端を含む) では grad_output をそのまま、外では 0。"
         "min_exp と max_exp は設定値なので、勾配は None を返します (return grad_x, None, None)。")


def power_of_two_function(fn_cls) -> None:
    """``PowerOfTwoFunction.apply(x, min_exp, max_exp)``: ``sign(x) * 2**round(log2|x|)``, 0 below ``min_exp``.

    Forward and backward are tried with two (min_exp, max_exp) pairs (numbers written in pass one only)."""
    for lo, hi in POWER_EXPS:
        _check_power_pair(fn_cls, lo, hi)
    ok("PowerOfTwoFunction: ±2^e (e は丸めた log2|x|、min_exp 未満は 0、max_exp で飽和)、NaN、STE が正しいです。")
