"""The course's models: the official tutorial ``Net``, a wider BatchNorm net, and VGG from a config list.

All take 3×32×32 images (``data.load_dataset`` converts every dataset to that) and return logits
``(B, num_classes)``. None of them moves itself to a device: call ``model.to(device)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The network of the official PyTorch CIFAR-10 tutorial ("Training a Classifier"): 62,006 parameters."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)  # (B, 3, 32, 32) -> (B, 6, 28, 28)
        self.pool = nn.MaxPool2d(2, 2)  # halves height and width
        self.conv2 = nn.Conv2d(6, 16, 5)  # (B, 6, 14, 14) -> (B, 16, 10, 10)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))  # (B, 6, 14, 14)
        x = self.pool(F.relu(self.conv2(x)))  # (B, 16, 5, 5)
        x = torch.flatten(x, 1)  # (B, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class WideNet(nn.Module):
    """The tutorial net made wider, with 'same' padding and BatchNorm (session 1's customisation).

    ``width`` is the number of channels of the first conv; the second has twice as many.
    """

    def __init__(self, num_classes: int = 10, width: int = 32, batch_norm: bool = True):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            layers = [nn.Conv2d(cin, cout, 5, padding=2, bias=not batch_norm)]  # BN has its own bias
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return nn.Sequential(*layers, nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, width), block(width, 2 * width))  # (B, 2w, 8, 8)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 8 * 8, 256), nn.ReLU(inplace=True), nn.Linear(256, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# Numbers are the output channels of 3×3 convs (padding 1); "M" is a 2×2 max pool.
# From Simonyan & Zisserman (2015), Table 1, configurations A (11), B (13), D (16) and E (19).
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def make_vgg_layers(config: list[int | str], batch_norm: bool = True, in_channels: int = 3) -> nn.Sequential:
    """The convolutional part of a VGG from its config list."""
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(in_channels, int(item), 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG for 32×32 inputs: after five pools the feature map is 512×1×1, so one Linear classifies."""

    def __init__(self, config: list[int | str] | str = "vgg11", num_classes: int = 10, batch_norm: bool = True):
        super().__init__()
        if isinstance(config, str):
            config = VGG_CONFIGS[config]
        self.features = make_vgg_layers(config, batch_norm)
        channels = [c for c in config if c != "M"][-1]
        self.classifier = nn.Linear(int(channels), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 512, 1, 1) for 32×32 inputs
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 512); also accepts larger inputs
        return self.classifier(x)


MODELS = ("net", "widenet", "vgg11", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """A fresh model by name (one of :data:`MODELS`); ``_bn`` VGGs have BatchNorm after each conv."""
    name = name.lower()
    if name == "net":
        return Net(num_classes)
    if name == "widenet":
        return WideNet(num_classes)
    base = name.removesuffix("_bn")
    if base in VGG_CONFIGS:
        return VGG(base, num_classes, batch_norm=name.endswith("_bn"))
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
