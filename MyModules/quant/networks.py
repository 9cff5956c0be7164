"""The session-4 network: 8-bit fixed-point weights and 1-bit (±1) activations, and its float twin.

Built from blocks ``conv -> (max pool) -> BatchNorm -> activation``, the order of Courbariaux et
al. (2016): pooling before the sign (max of ±1 values would lose information) and BatchNorm right
before it, so the sign's threshold is learnt. The last layer outputs float logits (not binarised:
cross-entropy needs magnitudes). With ``quantize=False`` the same shape uses float ``nn.Conv2d``
and ReLU: the baseline the quantised network is compared with.

What is NOT quantised here (docs/04, "where is the cheat"): the input image and the logits, the
BatchNorm parameters and statistics, the biases, and the float shadow weights the optimiser updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .functions import INT8_MAX, INT8_MIN, BinarySign, Int8InFloat
from .layers import QuantizedConv2d, QuantizedLinear


@dataclass
class QuantNetConfig:
    """Shape and number formats of :class:`QuantNet`."""

    widths: tuple[int, ...] = (32, 64, 128)  # output channels of each block; each block halves H and W
    num_classes: int = 10
    quantize: bool = True  # False: the float twin (nn.Conv2d/nn.Linear weights, ReLU activations)
    frac: int = 7  # fraction bits of the int8 weights: steps of 2**-frac, range [-128, 127] * 2**-frac
    image_size: int = 32  # input height = width


def quant_block(cin: int, cout: int, *, quantize: bool = True, frac: int = 7, pool: bool = True) -> nn.Sequential:
    """``conv 3×3 -> (MaxPool 2×2) -> BatchNorm -> sign`` (or ``-> ReLU`` with ``quantize=False``).

    (B, cin, H, W) -> (B, cout, H/2, W/2) with ``pool``, else (B, cout, H, W). The conv has no bias:
    BatchNorm's shift replaces it.
    """
    if quantize:
        conv = QuantizedConv2d(cin, cout, 3, padding=1, bias=False, quantizer=Int8InFloat(frac))
        act: nn.Module = BinarySign()
    else:
        conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        act = nn.ReLU(inplace=True)
    layers = [conv] + ([nn.MaxPool2d(2)] if pool else []) + [nn.BatchNorm2d(cout), act]
    return nn.Sequential(*layers)


class QuantNet(nn.Module):
    """Blocks of :func:`quant_block`, then one (quantised) Linear to float logits ``(B, num_classes)``."""

    def __init__(self, config: QuantNetConfig | None = None):
        super().__init__()
        config = config or QuantNetConfig()
        self.config = config
        blocks, cin = [], 3
        for width in config.widths:
            blocks.append(quant_block(cin, width, quantize=config.quantize, frac=config.frac))
            cin = width
        self.features = nn.Sequential(*blocks)
        side = config.image_size // 2 ** len(config.widths)
        features = cin * side * side
        self.classifier = (QuantizedLinear(features, config.num_classes, quantizer=Int8InFloat(config.frac))
                           if config.quantize else nn.Linear(features, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, side, side), ±1 when quantised
        return self.classifier(torch.flatten(x, 1))  # (B, num_classes) float logits


def int8_weights(model: nn.Module) -> dict[str, tuple[torch.Tensor, int]]:
    """The weights as hardware would store them: ``{layer name: (int8 tensor, frac)}``.

    Every layer with a ``weight`` and a ``quantizer`` that has an int ``frac`` (our
    :class:`Int8InFloat`, or the one a student wrote in the notebook); value = ``int8 * 2**-frac``.
    """
    out = {}
    for name, module in model.named_modules():
        quantizer = getattr(module, "quantizer", None)
        if isinstance(getattr(quantizer, "frac", None), int) and isinstance(getattr(module, "weight", None), torch.Tensor):
            with torch.no_grad():
                q = quantizer(module.weight.detach()) * 2.0**quantizer.frac  # integers, in float
            # NaN would silently become some int8 value: refuse it (a diverged training).
            if torch.isnan(q).any():
                raise ValueError(f"{name}.weight contains NaN")
            if q.min() < INT8_MIN or q.max() > INT8_MAX or not torch.equal(q, torch.round(q)):
                raise ValueError(f"{name}.quantizer does not produce int8 codes times 2**-frac")
            out[name] = (q.to(torch.int8), quantizer.frac)
    return out
