"""Checkpoints: plain dicts, two slots per run folder, read back with ``weights_only=True``.

A checkpoint holds ``model``, ``optimizer``, ``scheduler``, ``scaler`` (state dicts), ``epoch`` (the
last *complete* epoch, counted from 1), ``rng`` (random generator states), ``config``, ``history``
(one metrics row per finished epoch), ``confusion`` (the last evaluation) and ``info`` (which model
and dataset the run trains), and ``format`` (:data:`FORMAT`).

**Why a checkpoint keeps ``config`` and ``info``**, which the run folder's ``run.json`` holds as well
(``run_folder.RunSettings``, the settings everyone reads when the folder is there): a checkpoint file
must work on its own. An Optuna retry copies only the newest checkpoint of the earlier attempt into
its own folder and resumes from it, which needs the plan (``config``) and what was trained
(``info``); a checkpoint downloaded alone from Drive must still name its model and dataset to predict
and export. Both copies are written by ``train.fit`` from the same objects, and a resumed run checks
the checkpoint's against the new settings too (a checkpoint of another run copied into a folder).

**Two slots.** A run folder keeps ``checkpoint-a.pt`` and ``checkpoint-b.pt``. Epoch ``e`` overwrites
slot ``e % 2`` in place (the first write of a slot goes through a temp file) and fsyncs it, so the newer one is never touched while a write is under way:
a runtime that dies mid-write, Ctrl-C or a full disk leaves the previous epoch loadable, and
:func:`load_checkpoint` picks the newest slot that reads back whole. Overwriting in place (instead of
writing a temporary file and renaming it over the old one) matters on Google Drive: Drive moves every
replaced file to its Trash, where a VGG11 checkpoint (74 MB) per epoch fills a free 15 GB Drive in a
few runs; a file rewritten in place is the same Drive file, so nothing goes to the Trash.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, dead_mount_error, is_dead_mount

FORMAT = "mymodules-checkpoint-1"  # changes when the layout of the dict changes
SLOTS = ("checkpoint-a.pt", "checkpoint-b.pt")
LEGACY_NAME = "checkpoint.pt"  # single-file checkpoints of earlier versions (and of save_checkpoint)
_READ_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError,
                AttributeError, TypeError, OSError)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to the file ``path`` atomically (temp file, fsync, rename): for single files."""
    from .atomic import atomic_open

    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
    return path


def _read(path: Path, map_location) -> dict[str, Any]:
    """One checkpoint file, or CheckpointError saying what is wrong with it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise CheckpointError(f"no checkpoint at {path}") from e
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the write that made it did not finish")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(f"{path} holds Python objects other than tensors and numbers; it is refused "
                                  "because loading it could run code (weights_only=True)") from e
        raise CheckpointError(f"{path} is damaged ({type(e).__name__}); use the run's other checkpoint "
                              "or start the run again") from e
    except _READ_ERRORS as e:
        raise CheckpointError(f"{path} is damaged or truncated ({type(e).__name__}: {str(e)[:80]}); "
                              "use the run's other checkpoint or start the run again") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint of this course (it holds a {type(state).__name__})")
    return state


def _slot_states(run_dir: Path, map_location) -> tuple[list[tuple[int, Path, dict]], list[str]]:
    good, problems = [], []
    for name in (*SLOTS, LEGACY_NAME):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = _read(path, map_location)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        good.append((int(state.get("epoch", 0)), path, state))
    return good, problems


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a checkpoint file at all (whole or not)."""
    run_dir = Path(run_dir)
    return any((run_dir / name).exists() for name in (*SLOTS, LEGACY_NAME))


def newest_slot(run_dir: str | os.PathLike) -> Path | None:
    """The file of ``run_dir``'s newest checkpoint that reads back whole, or None."""
    good, _ = _slot_states(Path(run_dir), "cpu")
    return max(good, key=lambda g: g[0])[1] if good else None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code runs from the file).

    ``path`` is a run folder (the newest slot that reads back whole is taken) or a checkpoint file.
    A path ``<run>/checkpoint.pt`` that does not exist is read as the run folder ``<run>``.
    Raises :class:`~MyModules.errors.CheckpointError` naming the file and what is wrong.
    """
    path = Path(path)
    if path.is_file():
        return _read(path, map_location)
    run_dir = path if path.is_dir() else path.parent if path.name == LEGACY_NAME else None
    if run_dir is None or not run_dir.is_dir():
        raise CheckpointError(f"no checkpoint at {path}")
    good, problems = _slot_states(run_dir, map_location)
    if not good:
        detail = "; ".join(problems) if problems else "no epoch has finished there yet"
        raise CheckpointError(f"no usable checkpoint in {run_dir}: {detail}")
    return max(good, key=lambda g: g[0])[2]


def save_run_checkpoint(state: dict[str, Any], run_dir: str | os.PathLike) -> Path:
    """Write ``state`` into slot ``epoch % 2`` of ``run_dir``, in place, fsync'ed; returns the slot.

    Epochs alternate between the slots, so the other slot (the previous epoch) is not touched and a
    failed write (killed, disk full) leaves it loadable.
    """
    run_dir = Path(run_dir)
    target = run_dir / SLOTS[int(state["epoch"]) % 2]
    state = {"format": FORMAT, **state}
    try:
        if target.exists():
            with open(target, "wb") as f:  # truncates in place: the same file (on Drive: no Trash copy)
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
        else:  # a new slot: through a temp file, so a slot that exists was once written whole
            save_checkpoint(state, target)
    except BaseException as e:
        # A torn slot would only cost a failed read later; remove it so nobody mistakes it for a checkpoint.
        with contextlib.suppress(OSError):
            target.unlink()
        if is_dead_mount(e):
            raise dead_mount_error(e) from e
        if isinstance(e, (OSError, RuntimeError)):  # torch.save reports a full disk as RuntimeError
            raise CheckpointError(f"cannot save the checkpoint of epoch {state['epoch']} in {run_dir} "
                                  f"({_write_failure(e, run_dir)}); the previous checkpoint is kept: free some "
                                  "space or fix the folder, then resume") from e
        raise
    return target


def _write_failure(error: BaseException, folder: Path) -> str:
    """Why a write failed, in words: 'No space left on device' also when torch only says 'unexpected pos'."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 1 << 20:
            return "No space left on device"
    return f"{type(error).__name__}: {str(error)[:80]}"


def check_compatible(state: Mapping[str, Any], model: torch.nn.Module, where: Path | str) -> None:
    """Raise CheckpointError when ``state`` cannot be loaded into ``model``: another format, a part
    missing, or a parameter whose name or shape differs. (Whether the run's settings may resume is
    ``run_folder.resume_conflicts``.)
    """
    if state.get("format") not in (None, FORMAT):
        raise CheckpointError(f"the checkpoint in {where} has format {state.get('format')!r}, this version of "
                              f"MyModules reads {FORMAT!r}; start a new run")
    for key in ("model", "epoch", "optimizer"):
        if key not in state:
            raise CheckpointError(f"the checkpoint in {where} has no {key!r}: it was not written by train.fit")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in state["model"].items() if hasattr(v, "shape")}
    differences = [f"{k}: missing in checkpoint" for k in expected if k not in saved]
    differences += [f"{k}: not in this model" for k in saved if k not in expected]
    differences += [f"{k}: checkpoint {saved[k]} vs model {expected[k]}"
                    for k in expected if k in saved and saved[k] != expected[k]]
    if differences:
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise CheckpointError(f"the checkpoint in {where} belongs to another model or dataset ({shown}); "
                              "resume with the same --model and --dataset, or start a new run")


def capture_rng() -> dict[str, Any]:
    """The random states of torch (CPU and CUDA), NumPy and Python, in a weights_only-safe form."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
