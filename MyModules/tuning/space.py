"""What Optuna searches over: the training settings and a family of conv nets whose shape a trial picks.

The same functions serve a live trial (Optuna suggests values) and the best trial afterwards:
``optuna.trial.FixedTrial(best.params)`` answers every ``suggest_*`` call with the stored value, so
:func:`model_from_params` rebuilds exactly the network that trial trained.

    space = SearchSpace()                       # ranges; one field per choice
    config = suggest_config(trial, space, TrainConfig(epochs=5))
    model = suggest_model(trial, space, num_classes=10)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..train import OPTIMIZERS, TrainConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass
class SearchSpace:
    """The ranges a study searches. Change a range and the default study name changes with it."""

    lr: tuple[float, float] = (1e-4, 1e-1)  # peak learning rate, sampled on a log scale
    optimizers: tuple[str, ...] = OPTIMIZERS  # TrainConfig.optimizer choices
    momentum: tuple[float, float] = (0.8, 0.99)  # SGD only
    adam_weight_decay: tuple[float, float] = (1e-5, 1e-2)  # AdamW only, log scale (per step)
    batch_sizes: tuple[int, ...] = (64, 128, 256)  # images per step
    conv_blocks: tuple[int, int] = (1, 3)  # blocks, each halving height and width
    layers_per_block: tuple[int, int] = (1, 2)  # 3×3 convs per block
    widths: tuple[int, ...] = (16, 32, 64)  # channels of the first block; doubles per block
    fc_layers: tuple[int, int] = (0, 2)  # hidden Linear layers before the output layer
    fc_units: tuple[int, ...] = (64, 128, 256)  # width of each hidden Linear layer
    activations: tuple[str, ...] = tuple(ACTIVATIONS)  # the hidden layers' nonlinearity

    def __post_init__(self):
        for name in ("optimizers", "batch_sizes", "widths", "fc_units", "activations"):
            if not getattr(self, name):
                raise ValueError(f"SearchSpace.{name} needs at least one choice")
        for name in ("lr", "momentum", "adam_weight_decay", "conv_blocks", "layers_per_block", "fc_layers"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"SearchSpace.{name}: low {low} is above high {high}")
        if self.lr[0] <= 0 or self.adam_weight_decay[0] <= 0:
            raise ValueError("lr and adam_weight_decay ranges are searched on a log scale: they must be positive")
        if self.conv_blocks[0] < 1 or self.layers_per_block[0] < 1 or self.fc_layers[0] < 0:
            raise ValueError("a model needs at least one conv block with one layer (fc_layers may be 0)")
        unknown = set(self.optimizers) - set(OPTIMIZERS) | set(self.activations) - set(ACTIVATIONS)
        if unknown:
            raise ValueError(f"unknown choices {sorted(unknown)}; optimizers: {', '.join(OPTIMIZERS)}; "
                             f"activations: {', '.join(ACTIVATIONS)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists), as the study stores it."""
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class ConvNetShape:
    """One member of the model family. Channels: ``width × 2**block``; each block halves H and W."""

    conv_blocks: int = 2
    layers_per_block: int = 1
    width: int = 32
    fc_layers: int = 1
    fc_units: int = 128
    activation: str = "relu"
    batch_norm: bool = True

    @property
    def channels(self) -> list[int]:
        return [self.width * 2**b for b in range(self.conv_blocks)]


class ConvNet(nn.Module):
    """Conv blocks (3×3 conv → BatchNorm → activation, ×layers, then 2×2 max pool), global average
    pooling, ``fc_layers`` hidden Linear layers, and the output layer. Any 3×H×W input works."""

    def __init__(self, shape: ConvNetShape, num_classes: int = 10):
        super().__init__()
        self.shape = shape
        act = ACTIVATIONS[shape.activation]
        layers: list[nn.Module] = []
        cin = 3
        for cout in shape.channels:
            for _ in range(shape.layers_per_block):
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=not shape.batch_norm)]  # BN has its own bias
                if shape.batch_norm:
                    layers.append(nn.BatchNorm2d(cout))
                layers.append(act())
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)  # (B, C_last, H / 2**blocks, W / 2**blocks)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # (B, C_last)
        for _ in range(shape.fc_layers):
            head += [nn.Linear(cin, shape.fc_units), act()]
            cin = shape.fc_units
        head.append(nn.Linear(cin, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, num_classes)


def suggest_shape(trial, space: SearchSpace) -> ConvNetShape:
    """Ask ``trial`` for a model shape inside ``space`` (names match the trial's params)."""
    fc_layers = trial.suggest_int("fc_layers", *space.fc_layers)
    return ConvNetShape(
        conv_blocks=trial.suggest_int("conv_blocks", *space.conv_blocks),
        layers_per_block=trial.suggest_int("layers_per_block", *space.layers_per_block),
        width=trial.suggest_categorical("width", list(space.widths)),
        fc_layers=fc_layers,
        # Only asked when there is a hidden layer: otherwise the parameter would mean nothing and
        # still take part in the sampler's model and the importance plot.
        fc_units=trial.suggest_categorical("fc_units", list(space.fc_units)) if fc_layers else 0,
        activation=trial.suggest_categorical("activation", list(space.activations)),
    )


def suggest_model(trial, space: SearchSpace, num_classes: int) -> ConvNet:
    return ConvNet(suggest_shape(trial, space), num_classes)


def suggest_config(trial, space: SearchSpace, base: TrainConfig) -> TrainConfig:
    """``base`` with the learning rate, optimiser (and its own parameter) and batch size from ``trial``."""
    lr = trial.suggest_float("lr", *space.lr, log=True)
    optimizer = trial.suggest_categorical("optimizer", list(space.optimizers))
    if optimizer == "sgd":  # conditional parameters: each optimiser has its own
        extra = {"momentum": trial.suggest_float("momentum", *space.momentum)}
    else:
        extra = {"weight_decay": trial.suggest_float("adam_weight_decay", *space.adam_weight_decay, log=True)}
    batch_size = trial.suggest_categorical("batch_size", list(space.batch_sizes))
    return dataclasses.replace(base, lr=lr, optimizer=optimizer, batch_size=batch_size, **extra)


def model_from_params(params: Mapping[str, Any], space: SearchSpace, num_classes: int) -> ConvNet:
    """Rebuild a trial's model from its ``params`` (e.g. ``study.best_params``)."""
    import optuna

    return suggest_model(optuna.trial.FixedTrial(dict(params)), space, num_classes)


def space_from_options(**ranges: Sequence[Any] | None) -> SearchSpace:
    """A SearchSpace from command-line style options; ``None`` keeps the default of that field."""
    given = {k: tuple(v) for k, v in ranges.items() if v is not None}
    unknown = set(given) - {f.name for f in dataclasses.fields(SearchSpace)}
    if unknown:
        raise ValueError(f"unknown search-space fields {sorted(unknown)}")
    return SearchSpace(**given)

