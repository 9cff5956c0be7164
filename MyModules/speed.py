"""Measuring speed: images/s of a training step and seconds per epoch of a loader.

Used by ``benchmarks/bench_train.py`` and by the session-1 notebook that shows what each speed
switch (device-resident data, mixed precision, channels_last, torch.compile) gives. Timings wait for
the device (``torch.cuda.synchronize``) so they measure work done, not work queued.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from . import env
from .train import TrainConfig, amp_dtype_for, cudnn_autotune, make_optimizer, train_one_epoch


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has finished the work queued so far (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_epoch_seconds(loader, device: torch.device | str, repeats: int = 2) -> float:
    """Best time of ``repeats`` full passes over ``loader`` (after one warm-up pass), in seconds."""
    device = torch.device(device)
    limits = env.test_limits()  # test mode: fewer timed passes, to keep notebooks quick
    if limits:
        repeats = min(repeats, limits.loader_passes)
    best = float("inf")
    for epoch in range(repeats + 1):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        synchronize(device)
        start = time.perf_counter()
        for _batch in loader:
            pass
        synchronize(device)
        if epoch:  # the first pass warms up (allocations, worker start-up)
            best = min(best, time.perf_counter() - start)
    return best


def training_throughput(model: nn.Module, loader, device: torch.device | str, *, steps: int = 50,
                        warmup: int = 5, amp: bool | None = None, channels_last: bool | None = None,
                        compile_model: bool = False, lr: float = 0.01) -> float:
    """Images per second of ``train_one_epoch`` on ``loader`` (``steps`` timed steps after ``warmup``).

    ``amp`` / ``channels_last`` default to what ``fit`` would use on ``device``.
    The model's weights change: pass a fresh model.
    """
    device = torch.device(device)
    limits = env.test_limits()  # test mode: time only a few steps, to keep notebooks quick
    if limits:
        steps, warmup = min(steps, limits.speed_steps), min(warmup, limits.speed_warmup)
    amp_dtype = amp_dtype_for(device, amp)
    if channels_last is None:
        channels_last = env.prefers_channels_last(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    run = torch.compile(model) if compile_model else model
    optimizer = make_optimizer(model, TrainConfig(lr=lr))  # what fit uses
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    options = dict(amp_dtype=amp_dtype, scaler=scaler, progress=False, log_every=10**9)
    with cudnn_autotune(device):  # as fit trains; the flag is put back afterwards
        train_one_epoch(run, device, loader, optimizer, 0, max_steps=warmup, **options)
        synchronize(device)
        stats = train_one_epoch(run, device, loader, optimizer, 1, max_steps=steps, **options)
    return stats["images"] / stats["seconds"]
