"""Several processes, one training run: ``torchrun --nproc-per-node N -m MyModules train ...``.

torchrun starts N copies of the command and tells each its place in environment variables
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`init_from_env`
reads them and joins the process group: NCCL between GPUs (process ``LOCAL_RANK`` drives GPU
``cuda:LOCAL_RANK``), gloo on the CPU. Without torchrun nothing here does anything, so a single-process
run is unchanged.

How the work is split, and why a run with N processes learns like one with one process:

* ``--batch-size`` stays the *global* batch: each optimiser step still sees ``batch_size`` images,
  and each process takes its ``1/N`` share of every batch (:func:`shard_loader`, on a copy of the
  loader). All processes draw the same epoch order and the same augmentation (they share the seed),
  then keep their own rows, so the images of a step are those a single process would see;
  DistributedDataParallel averages the gradients, so the step is the same up to float rounding
  (BatchNorm statistics are per process).
  Steps per epoch, learning rate and schedule are unchanged.
* Every process evaluates the whole test set (the same numbers everywhere); training loss and accuracy
  are summed over the processes (:func:`reduce_train_metrics`).
* Only rank 0 writes the run folder (:func:`is_main`): one ``metrics.csv`` row per epoch, one set of
  checkpoints, ``summary.json`` with ``world_size``. Every process reads the checkpoint to resume.
"""

from __future__ import annotations

import atexit
import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """This process's place in the group."""

    rank: int  # 0 .. world_size - 1; rank 0 writes the run folder
    local_rank: int  # index on this machine: the GPU this process drives
    world_size: int  # number of processes
    backend: str  # "nccl" (GPUs) or "gloo" (CPU)
    device: torch.device


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set ``WORLD_SIZE`` and ``RANK`` for this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Whether this process writes files and prints: rank 0, or the only process."""
    return rank() == 0


def init_from_env(preferred: str | None = None) -> Context | None:
    """Join torchrun's process group; returns None (and does nothing) when not started by torchrun.

    ``preferred`` is ``--device``: ``cuda`` (or nothing, on a GPU machine) gives each process its own
    GPU ``cuda:LOCAL_RANK`` and NCCL; ``cpu`` (or no GPU) gives gloo.
    """
    if not launched_by_torchrun():
        return None
    size, global_rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", global_rank))
    wants_cuda = (preferred or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if wants_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("torchrun with --device cuda, but CUDA is not available here; use --device cpu")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started process {local_rank} but this machine has "
                              f"{torch.cuda.device_count()} GPU(s): use --nproc-per-node "
                              f"{torch.cuda.device_count()} or fewer")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif preferred and not preferred.startswith("cpu"):
        raise ConfigError(f"torchrun runs on CUDA GPUs or the CPU, not on {preferred!r}; use --device cuda or cpu")
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=global_rank, world_size=size, device_id=device if wants_cuda else None)
        atexit.register(shutdown)
    return Context(global_rank, local_rank, size, backend, device)


def shutdown() -> None:
    """Leave the process group (at the end of the command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _reduce_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when several processes train it, else ``model`` itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard_loader(loader):
    """The loader ``fit`` iterates in this process: a copy of a course
    :class:`~MyModules.loader.DeviceLoader` that yields this process's share of each batch (the
    caller's loader is left as it was; the copy shares its tensors), or ``loader`` itself when one
    process trains."""
    if not active():
        return loader
    if not hasattr(loader, "set_shard"):
        raise ConfigError("training with several processes needs the course's device loader "
                          "(loader.make_loaders(..., fast=True)); drop --no-fast")
    shard = copy.copy(loader)
    shard.set_shard(rank(), world_size())
    return shard


def reduce_train_metrics(train: dict[str, float]) -> dict[str, float]:
    """One epoch's training ``loss``/``accuracy`` over all processes (weighted by their images)."""
    if not active():
        return train
    totals = torch.tensor([train["loss"] * train["images"], train["accuracy"] * train["images"],
                           float(train["images"]), train["seconds"]], dtype=torch.float64, device=_reduce_device())
    seconds = totals[3:].clone()
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the epoch lasts as long as its slowest process
    loss_sum, correct_pct, images, _ = totals.tolist()
    return {**train, "loss": loss_sum / images, "accuracy": correct_pct / images, "images": int(images),
            "seconds": seconds.item()}


def from_main(make: Callable[[], T]) -> T:
    """``make()`` on rank 0, its result given to every process (e.g. a new run folder's path).

    An exception on rank 0 is raised on every process, so none waits forever.
    """
    if not active():
        return make()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", make())
        except Exception as e:
            box[0] = ("error", e)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value
