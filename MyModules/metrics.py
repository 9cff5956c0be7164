"""Confusion matrix and per-class accuracy (in percent); ``train.evaluate`` sums them over batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, K)`` int64 counts: row = true class, column = predicted class."""
    index = (labels.to(torch.int64) * num_classes + predictions.to(torch.int64)).flatten()
    counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=index.device)
    # index_add_ instead of bincount: bincount reads the maximum back to the host (a GPU sync).
    counts.index_add_(0, index, torch.ones_like(index))
    return counts.reshape(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Accuracy of each true class in percent (NaN for a class with no examples)."""
    confusion = confusion.double()
    return 100.0 * confusion.diagonal() / confusion.sum(1)


def normalize_rows(confusion: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum: the fraction of class ``i`` predicted as ``j``."""
    confusion = confusion.double()
    return confusion / confusion.sum(1, keepdim=True).clamp_min(1)


def format_per_class(confusion: torch.Tensor, classes: Sequence[str]) -> str:
    """A table, one line per class, as the tutorial prints it."""
    rows = [f"{name:>12s}: {acc:5.1f} %" for name, acc in zip(classes, per_class_accuracy(confusion).tolist())]
    return "\n".join(rows)
