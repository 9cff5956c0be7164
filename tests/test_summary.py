"""torchinfo summaries of every course model: parameters, output shape and MACs match our own count."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from MyModules.models import MODELS, Net, WideNet, build_model, count_parameters
from MyModules.viz.summary import describe, model_summary, summarize_models


def macs_by_hand(model: nn.Module, input_size=(1, 3, 32, 32)) -> int:
    """(weights + bias) × output positions of every conv and linear layer, counted with hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        positions = math.prod(output.shape[2:]) * output.shape[0] if output.dim() > 2 else output.shape[0]
        total += sum(p.numel() for p in module.parameters(recurse=False)) * positions

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(input_size))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", MODELS)
def test_summary_of_every_course_model(name):
    model = build_model(name, num_classes=7)
    stats = model_summary(model)
    assert stats.total_params == count_parameters(model)
    assert list(stats.summary_list[0].output_size) == [1, 7]
    convs_and_linears = macs_by_hand(model)
    batch_norm = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert stats.total_mult_adds == convs_and_linears + batch_norm  # torchinfo adds BN's parameters once


def test_net_numbers_and_one_line_description():
    stats = model_summary(Net())
    assert stats.total_params == 62_006
    assert stats.total_mult_adds == 658_238  # conv1 357,504 + conv2 241,600 + fc 59,134
    line = describe(stats)
    assert line.startswith("62,006 parameters, 0.66 M MACs") and line.endswith("output [1, 10]")
    table = str(stats)
    assert "conv1" in table and "[1, 6, 28, 28]" in table  # layer names and output shapes


def test_summary_changes_neither_mode_nor_batchnorm_statistics():
    model = WideNet(width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_summary(model, (2, 3, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_summarize_models_covers_all():
    assert list(summarize_models(["net", "widenet"])) == ["net", "widenet"]
