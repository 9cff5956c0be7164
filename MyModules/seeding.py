"""Seeds: one call fixes every random generator, and one formula gives each epoch its own stream.

Everything random in epoch ``e`` of a run with seed ``s`` (data order, augmentation, dropout) is
drawn from ``epoch_seed(s, e)``, so a run resumed after epoch ``e - 1`` repeats epoch ``e`` exactly.
"""

from __future__ import annotations

import random

import numpy as np
import torch

#: A prime larger than any epoch count, so (seed, epoch) pairs never share a stream.
EPOCH_STRIDE = 100_003


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (epoch 0: before the first epoch) of a run seeded with ``seed``."""
    return seed * EPOCH_STRIDE + epoch
