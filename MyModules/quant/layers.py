"""Conv2d and Linear whose weights are quantised just before they are used (session 4, docs/04).

The float ("shadow") weight is what the optimiser updates; the layer computes with
``quantizer(weight)`` (default: int8 fixed point with 7 fraction bits, ``functions.Int8InFloat``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .functions import MAX_FRAC_INT8, Int8InFloat


def _default_weight_quantizer() -> nn.Module:
    # PyTorch's default init keeps |w| below 1/sqrt(fan_in) <= 1, so frac=7 (range [-1, 127/128]) fits.
    return Int8InFloat(frac=MAX_FRAC_INT8)


class QuantizedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that quantises its weight just before each convolution.

    The float weight (the "shadow" weight) is what the optimiser updates; the convolution only
    ever sees ``quantizer(weight)``. Stride, padding (and padding_mode), dilation, groups and bias
    behave as in ``nn.Conv2d``; the bias is not quantised (hardware adds it in the wide accumulator).
    """

    def __init__(self, *args, quantizer: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantizer = quantizer if quantizer is not None else _default_weight_quantizer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # _conv_forward is nn.Conv2d's own path (it also handles padding_mode="reflect" etc.)
        return self._conv_forward(x, self.quantizer(self.weight), self.bias)


class QuantizedLinear(nn.Linear):
    """``nn.Linear`` that quantises its weight just before the matmul (bias stays float)."""

    def __init__(self, *args, quantizer: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantizer = quantizer if quantizer is not None else _default_weight_quantizer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantizer(self.weight), self.bias)
