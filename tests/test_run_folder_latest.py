"""latest_run_dir picks the run whose checkpoint was written last (what --resume without --out continues)."""

from __future__ import annotations

import os

import torch

from MyModules.checkpoint import save_run_checkpoint
from MyModules.run_folder import latest_run_dir


def test_latest_run_is_the_one_written_last(tmp_path):
    older, newer = tmp_path / "b-older", tmp_path / "a-newer"  # names sort the other way round
    for folder, when in ((older, 1_000_000_000), (newer, 1_000_000_100)):
        folder.mkdir()
        slot = save_run_checkpoint({"model": {"w": torch.ones(1)}, "epoch": 1}, folder)
        os.utime(slot, (when, when))
    (tmp_path / "no-checkpoint").mkdir()
    assert latest_run_dir(tmp_path) == newer
    assert latest_run_dir(tmp_path / "missing") is None
