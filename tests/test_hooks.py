"""hooks.py on real models: recorded activations are copies of the right layer's output of the last pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from MyModules.models import VGG, Net, WideNet
from MyModules.viz.hooks import activations_for, find_module, first_conv_name, record_activations


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_recorded_output_is_a_copy_not_the_tensor_the_model_returned():
    torch.manual_seed(0)
    model = WideNet(width=4).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), record_activations(model, ["classifier.3"]) as acts:
        out = model(x)
    recorded = acts["classifier.3"]
    assert torch.equal(recorded, out)
    out.zero_()  # the caller changes its result in place (as an in-place op of a later layer would)
    assert recorded.abs().sum() > 0
    assert recorded.data_ptr() != out.data_ptr()


def test_conv_output_before_an_inplace_relu_keeps_its_negative_values():
    torch.manual_seed(1)
    model = Net().eval()
    conv = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(inplace=True))  # conv output rectified in place next
    model.conv1 = conv
    model.conv2 = nn.Conv2d(6, 16, 6)  # keeps Net's shapes: (6, 30, 30) -> pool 15 -> (16, 10, 10)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = conv[0](x)  # no hooks yet
        with record_activations(model, ["conv1.0"]) as acts:
            model(x)
    assert (expected < 0).any()
    assert torch.equal(acts["conv1.0"], expected)  # a reference would now hold max(expected, 0)


def test_the_last_forward_pass_wins_and_every_layer_is_its_own():
    torch.manual_seed(2)
    model = WideNet(width=4).eval()
    a, b = torch.randn(2, 3, 32, 32), torch.randn(5, 3, 32, 32)
    with torch.no_grad(), record_activations(model, ["features.0", "features.1.0"]) as acts:
        model(a)
        model(b)
    with torch.no_grad():
        first_block = model.features[0](b)
        second_conv = model.features[1][0](first_block)
    assert torch.equal(acts["features.0"], first_block)
    assert torch.equal(acts["features.1.0"], second_conv)
    assert hook_count(model) == 0


def test_recorded_activations_are_float32_cpu_even_for_a_double_model():
    model = WideNet(width=4).double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    acts = activations_for(model, x, ["features.0.0"])
    assert acts["features.0.0"].dtype == torch.float32 and acts["features.0.0"].device.type == "cpu"
    with torch.no_grad():
        assert torch.allclose(acts["features.0.0"], model.features[0][0](x).float())
    assert not acts["features.0.0"].requires_grad


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(4, 3)

    def forward(self, x):
        y = self.inner(x)
        return y, y.sum()


def test_tuple_outputs_record_their_first_tensor_and_other_types_fail():
    model = nn.Sequential(TupleOut())
    x = torch.randn(2, 4)
    with torch.no_grad(), record_activations(model, ["0"]) as acts:
        y, _ = model(x)
    assert torch.equal(acts["0"], y)

    class Weird(nn.Module):
        def forward(self, x):
            return {"x": x}

    weird = nn.Sequential(Weird())
    with pytest.raises(TypeError, match="dict"), record_activations(weird, ["0"]):
        weird(x)
    assert hook_count(weird) == 0


def test_activations_for_runs_in_eval_mode_and_restores_either_mode():
    torch.manual_seed(3)
    model = WideNet(width=4)
    model.features[0][1].running_mean.fill_(0.5)  # eval-mode BatchNorm uses these, train mode does not
    x = torch.randn(3, 3, 32, 32)
    for training in (True, False):
        model.train(training)
        acts = activations_for(model, x, ["features.0.1"])
        assert model.training == training and hook_count(model) == 0
        with torch.no_grad():
            expected = model.features[0][1].eval()(model.features[0][0](x))
        model.train(training)
        assert torch.allclose(acts["features.0.1"], expected, atol=1e-6)


def test_layer_names_and_first_conv():
    assert first_conv_name(Net()) == "conv1"
    assert first_conv_name(WideNet(width=4)) == "features.0.0"
    assert first_conv_name(VGG("vgg11")) == "features.0"
    with pytest.raises(ValueError, match="no Conv2d"):
        first_conv_name(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    model = WideNet(width=4)
    assert find_module(model, "features.1.0") is model.features[1][0]
    with pytest.raises(KeyError, match=r"features\.0\.0.*classifier\.3"):
        find_module(model, "features.9")
