"""The course models: shapes and parameter counts students compare against."""

import pytest
import torch
from torch import nn

from MyModules.models import MODELS, VGG, Net, WideNet, build_model, count_parameters


def test_tutorial_net_has_the_official_parameter_count():
    assert count_parameters(Net()) == 62006


@pytest.mark.parametrize("name", MODELS)
def test_every_model_maps_images_to_logits(name):
    model = build_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_vgg11_bn_structure():
    model = VGG("vgg11", batch_norm=True)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 8 and len(bns) == 8
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.bias is None for c in convs)  # BatchNorm's shift makes the conv bias redundant
    assert count_parameters(model) == 9_228_362


def test_widenet_has_batchnorm_and_keeps_size_with_padding():
    model = WideNet(width=16)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2
    assert model.features(torch.randn(1, 3, 32, 32)).shape == (1, 32, 8, 8)


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="vgg11_bn"):
        build_model("resnet50")
