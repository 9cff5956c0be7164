"""Look inside a model while it runs: forward hooks that record chosen layers' outputs.

    with record_activations(model, ["features.0", "features.1"]) as acts:
        model(images)
    acts["features.0"]  # (B, C, H, W), a CPU copy

Hooks left behind are a classic bug: every later forward pass keeps copying tensors (slow, and
memory grows). :func:`record_activations` is a context manager that removes its hooks when the
``with`` block ends, also when it ends with an exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``, e.g. ``"features.0"``)."""
    modules = dict(model.named_modules())
    if name not in modules:
        layers = ", ".join(n for n in modules if n) or "(none)"
        raise KeyError(f"no layer named {name!r} in {type(model).__name__}; its layers are: {layers}")
    return modules[name]


def first_conv_name(model: nn.Module) -> str:
    """Name of the first ``nn.Conv2d`` in ``model`` (the layer whose filters look at pixels)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


def _as_tensor(output) -> torch.Tensor:
    # Some layers return tuples (e.g. attention); we record the first tensor.
    if isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"cannot record an output of type {type(output).__name__}")
    return output


@contextmanager
def record_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` (names from ``named_modules()``) during the ``with`` block.

    Yields a dict ``name -> tensor``, filled by each forward pass (the last pass wins). The tensors
    are detached float32 CPU *copies*: a copy matters because a following ``ReLU(inplace=True)``
    would otherwise overwrite a recorded conv or BatchNorm output with its rectified values.
    """
    modules = {name: find_module(model, name) for name in layers}  # fail before registering anything
    activations: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            activations[name] = _as_tensor(output).detach().to("cpu", torch.float32, copy=True)
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield activations
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def activations_for(model: nn.Module, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``model`` in eval mode on ``images`` (normalised, on the model's device) and return the
    outputs of ``layers``; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with record_activations(model, layers) as acts:
            model(images)
    finally:
        model.train(was_training)
    return dict(acts)
