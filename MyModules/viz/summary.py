"""Model summaries with torchinfo: each layer's output shape, parameters and multiply-adds (MACs).

    stats = model_summary(build_model("vgg11_bn"))
    print(stats)                      # the layer table
    print(describe(stats))            # one line: parameters, MACs, output shape

MACs are counted by torchinfo per forward pass of ``input_size`` (batch included): for a conv or
linear layer, (weights + bias) × output positions. One MAC is one multiply and one add, so the
FLOPs of a forward pass are about 2 × MACs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Columns of the table: what goes in, what comes out, how big, how much work.
COLUMNS = ("input_size", "output_size", "num_params", "mult_adds")


def model_summary(model: nn.Module, input_size: Sequence[int] = (1, 3, 32, 32), *,
                  device: torch.device | str = "cpu", depth: int = 3, verbose: int = 0):
    """torchinfo's ``ModelStatistics`` for ``model`` on a zero batch of ``input_size`` (B, C, H, W).

    ``print()`` the result for the layer table. The model is run once in eval mode on ``device``
    (BatchNorm statistics are not touched) and its train/eval mode is restored.
    """
    from torchinfo import summary

    was_training = model.training
    try:
        return summary(model, input_size=tuple(input_size), device=torch.device(device), depth=depth,
                       col_names=COLUMNS, mode="eval", verbose=verbose,
                       row_settings=("var_names",))
    finally:
        model.train(was_training)


def describe(stats) -> str:
    """One line: total parameters, MACs per forward pass, and the final output shape."""
    out = stats.summary_list[0].output_size if stats.summary_list else "?"
    return (f"{stats.total_params:,} parameters, {stats.total_mult_adds / 1e6:,.2f} M MACs "
            f"per forward pass, output {list(out)}")


def summarize_models(names: Sequence[str] | None = None, num_classes: int = 10,
                     input_size: Sequence[int] = (1, 3, 32, 32)) -> dict[str, object]:
    """Summaries of the course models (default all of ``models.MODELS``), keyed by name."""
    from ..models import MODELS, build_model

    return {name: model_summary(build_model(name, num_classes), input_size) for name in (names or MODELS)}
