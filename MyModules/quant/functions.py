"""Quantisers as custom autograd Functions, each with its Module (session 4, docs/04).

Each operation is a small ``torch.autograd.Function`` with its forward and backward side by side,
then an ``nn.Module`` that holds its settings. These are the reference implementations the
self-checks (``checks.ex04``) compare the students' answers with.

Conventions shared by every quantiser here (the tests in ``tests/test_quant.py`` pin them):

* **Rounding** is ``torch.round``: halves go to the nearest EVEN integer (0.5 -> 0, 1.5 -> 2,
  2.5 -> 2, -0.5 -> -0, 127.5 -> 128 then clamped to 127). The C exercise uses ``nearbyintf``,
  which does the same under the default rounding mode; C's ``roundf`` rounds halves away from zero
  and would disagree on every tie (docs/04 explains the difference).
* **Values stay float** ("int8 in float"): the result is a float tensor holding integers (times a
  power of two), so it flows through ordinary float layers and autograd.
* **NaN stays NaN** in every forward (``torch.clamp`` propagates NaN; the sign quantisers keep it on
  purpose), so a diverged training shows up as a NaN loss instead of silently becoming a number.
  ``±inf`` saturates to the ends of the range. In every backward the gradient at a NaN is 0.
* **Backward** is a straight-through estimator (STE): rounding's true derivative is 0 almost
  everywhere, which would stop learning, so the gradient passes through unchanged where the input is
  inside the quantiser's range, and is 0 outside (where the forward is saturated).
"""

from __future__ import annotations

import torch
from torch import nn

INT8_MIN, INT8_MAX = -128, 127  # two's complement 8-bit range
MAX_FRAC_INT8 = 7  # with 7 fraction bits int8 covers [-1, 127/128] in steps of 1/128


# --- warm-up: a smooth function with its own backward -----------------------------------------


class SwishFunction(torch.autograd.Function):
    """``y = x * sigmoid(beta * x)`` (Swish, Ramachandran et al. 2017) with a hand-written backward.

    Two inputs, so backward returns two gradients, in the order of forward's inputs.
    ``beta`` may be a scalar tensor: its gradient is summed back to its shape.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, beta)  # backward needs both to rebuild sigmoid(beta * x)
        return x * torch.sigmoid(beta * x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, beta = ctx.saved_tensors
        s = torch.sigmoid(beta * x)
        ds = s * (1 - s)  # sigmoid'(z) = sigmoid(z) (1 - sigmoid(z))
        grad_x = grad_output * (s + beta * x * ds)  # d/dx [x s(beta x)]
        grad_beta = (grad_output * x * x * ds).sum_to_size(beta.shape)  # d/dbeta, summed to beta's shape
        return grad_x, grad_beta


class Swish(nn.Module):
    """Swish activation with a learnable ``beta`` (one number for the whole layer)."""

    def __init__(self, beta: float = 1.0, learnable: bool = True):
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(beta)), requires_grad=learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SwishFunction.apply(x, self.beta.to(x.dtype))


# --- 8-bit fixed point -------------------------------------------------------------------------


class Int8InFloatFunction(torch.autograd.Function):
    """Forward: ``clamp(round(x), -128, 127)``, still float. Backward: pass where ``-128 <= x <= 127``.

    The backward is rounding's STE times clamp's derivative with both ends inside (a course rule:
    ``torch.clamp``'s own backward gives 0 exactly at the ends in torch 2.14, docs/04):
    ``grad * 1[-128 <= x <= 127]``; 0 outside and at NaN.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.clamp(torch.round(x), INT8_MIN, INT8_MAX)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        inside = (x >= INT8_MIN) & (x <= INT8_MAX)
        return torch.where(inside, grad_output, torch.zeros_like(grad_output))


def _check_int(name: str, value, low: int, high: int) -> int:
    # bool is an int in Python; True as a bit width is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


class Int8InFloat(nn.Module):
    """Signed 8-bit fixed point with ``frac`` fraction bits (Q(7-frac).frac), values kept in float.

    ``x`` is scaled by ``2**frac``, rounded and clamped to int8, and scaled back, so the outputs
    are multiples of ``2**-frac`` in ``[-128, 127] * 2**-frac``; e.g. ``frac=6`` (the ×64 picture in
    docs/04): steps of 1/64 from -2 to 127/64. Scaling by a power of two is exact in float.
    """

    def __init__(self, frac: int = 0):
        super().__init__()
        self.frac = _check_int("frac", frac, 0, MAX_FRAC_INT8)

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Int8InFloatFunction.apply(x * 2.0**self.frac) * self.step

    def extra_repr(self) -> str:
        return f"frac={self.frac}, step={self.step:g}, range=[{INT8_MIN * self.step:g}, {INT8_MAX * self.step:g}]"


class FixedPointFunction(torch.autograd.Function):
    """Signed ``bits``-bit fixed point with ``frac`` fraction bits (the homework's generalisation).

    Same rules as :class:`Int8InFloatFunction` on ``x * 2**frac``; ``bits`` and ``frac`` are
    plain ints, so their "gradients" are ``None``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, bits: int, frac: int) -> torch.Tensor:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        scaled = x * 2.0**frac
        ctx.save_for_backward((scaled >= low) & (scaled <= high))  # bool mask: 1 byte per element
        return torch.clamp(torch.round(scaled), low, high) * 2.0**-frac

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return torch.where(inside, grad_output, torch.zeros_like(grad_output)), None, None


class FixedPoint(nn.Module):
    """``bits``-bit signed fixed point (2 to 24 bits: float32 holds every such integer exactly)."""

    def __init__(self, bits: int = 8, frac: int = 0):
        super().__init__()
        self.bits = _check_int("bits", bits, 2, 24)
        self.frac = _check_int("frac", frac, 0, bits - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FixedPointFunction.apply(x, self.bits, self.frac)

    def extra_repr(self) -> str:
        step = 2.0**-self.frac
        high = 2 ** (self.bits - 1)
        return f"bits={self.bits}, frac={self.frac}, step={step:g}, range=[{-high * step:g}, {(high - 1) * step:g}]"


# --- 1-bit, ternary and power-of-two quantisers ------------------------------------------------


def _keep_nan(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(x), x, values)


def _straight_through(grad_output: torch.Tensor, x: torch.Tensor, limit: float) -> torch.Tensor:
    """STE with saturation: the gradient passes where ``|x| <= limit`` (0 at NaN)."""
    return torch.where(x.abs() <= limit, grad_output, torch.zeros_like(grad_output))


class BinarySignFunction(torch.autograd.Function):
    """Forward: +1 where ``x >= 0`` (0 and -0 included), -1 where ``x < 0``; NaN stays NaN.

    Backward: the straight-through estimator of Courbariaux et al. (2016), ``grad * 1[|x| <= 1]``,
    i.e. the derivative of ``hardtanh``. (``torch.sign`` would map 0 to 0 and NaN to 0.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        one = torch.ones_like(x)
        return _keep_nan(torch.where(x >= 0, one, -one), x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return _straight_through(grad_output, x, 1.0)


class BinarySign(nn.Module):
    """1-bit activation: ±1 (see :class:`BinarySignFunction`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return BinarySignFunction.apply(x)


class TernaryFunction(torch.autograd.Function):
    """Forward: -1, 0, +1 with a dead zone ``|x| < threshold`` -> 0 (``|x| == threshold`` -> ±1).

    As in ternary weight networks (Li & Liu 2016, who pick ``threshold ≈ 0.7 * mean|W|``).
    Backward: STE for ``|x| <= 1``. NaN stays NaN.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        values = torch.where(x >= threshold, 1.0, torch.where(x <= -threshold, -1.0, 0.0)).to(x.dtype)
        return _keep_nan(values, x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return _straight_through(grad_output, x, 1.0), None


class Ternary(nn.Module):
    def __init__(self, threshold: float = 0.5):
        super().__init__()
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return TernaryFunction.apply(x, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold:g}"


class PowerOfTwoFunction(torch.autograd.Function):
    """Forward: ``sign(x) * 2**round(log2|x|)`` (logarithmic quantisation, Miyashita et al. 2016).

    The exponent is rounded (ties to even, in the log domain) and clamped to ``max_exp``; values
    whose exponent rounds below ``min_exp`` become 0 (so does 0). Multiplying by such a weight is
    a bit shift in hardware. Backward: STE for ``|x| <= 2**max_exp``. NaN stays NaN; ±inf -> ±2**max_exp.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, min_exp: int, max_exp: int) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.limit = 2.0**max_exp
        exponent = torch.round(torch.log2(x.abs()))  # -inf at 0
        magnitude = torch.where(exponent < min_exp, 0.0, torch.exp2(exponent.clamp(max=max_exp)))
        return _keep_nan(torch.sign(x) * magnitude.to(x.dtype), x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return _straight_through(grad_output, x, ctx.limit), None, None


class PowerOfTwo(nn.Module):
    """Power-of-two quantiser: 0 or ±2**e with ``min_exp <= e <= max_exp``."""

    def __init__(self, min_exp: int = -7, max_exp: int = 0):
        super().__init__()
        self.min_exp = _check_int("min_exp", min_exp, -126, 127)
        self.max_exp = _check_int("max_exp", max_exp, min_exp, 127)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return PowerOfTwoFunction.apply(x, self.min_exp, self.max_exp)

    def extra_repr(self) -> str:
        return f"min_exp={self.min_exp}, max_exp={self.max_exp}"
