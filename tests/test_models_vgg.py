"""Every VGG depth against Simonyan & Zisserman (2015), Table 1: convs per stage, widths, pools."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MyModules.models import VGG, build_model, count_parameters

# Table 1: 3x3 convs in each of the five stages (each stage ends in a 2x2 max pool), configurations
# A (11 weight layers), B (13), D (16), E (19); widths 64, 128, 256, 512, 512 per stage.
CONVS_PER_STAGE = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3),
                   "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def stages(model: nn.Module) -> list[list[nn.Conv2d]]:
    """The convs of ``model.features`` grouped by the max pool that ends each stage."""
    groups, current = [], []
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            current.append(module)
        elif isinstance(module, nn.MaxPool2d):
            groups.append(current)
            current = []
    assert not current, "convs after the last pool"
    return groups


@pytest.mark.parametrize("name", sorted(CONVS_PER_STAGE))
@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_stages_match_the_paper(name, batch_norm):
    model = VGG(name, batch_norm=batch_norm)
    groups = stages(model)
    assert tuple(len(g) for g in groups) == CONVS_PER_STAGE[name]
    assert [{c.out_channels for c in g} for g in groups] == [{w} for w in WIDTHS]
    for conv in (c for g in groups for c in g):
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == (sum(CONVS_PER_STAGE[name]) if batch_norm else 0)
    # Parameters counted from the table itself: 3x3 convs (+ BN scale/shift or a bias) and Linear(512, 10).
    expected, cin = 0, 3
    for count, width in zip(CONVS_PER_STAGE[name], WIDTHS):
        for _ in range(count):
            expected += 9 * cin * width + 2 * width if batch_norm else 9 * cin * width + width
            cin = width
    assert count_parameters(model) == expected + 512 * 10 + 10


def test_build_model_names_pick_depth_and_batchnorm():
    for name in ("vgg11", "vgg13_bn", "vgg16_bn", "vgg19_bn"):
        model = build_model(name)
        depth = sum(isinstance(m, nn.Conv2d) for m in model.modules())
        assert depth == sum(CONVS_PER_STAGE[name.removesuffix("_bn")])
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == name.endswith("_bn")
    with torch.no_grad():
        assert build_model("vgg16_bn").eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
