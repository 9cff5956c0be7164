"""A run that purges old curves writes the event file TensorBoard reads last.

TensorBoard reads a folder's event files in name order; names hold whole seconds and then a
per-process counter as a decimal string. An earlier file made in the same second with a counter
that sorts later ("...9" after "...10", here "...99999") used to be read after the purging file,
so the old points came back. In a full test run one process makes many writers, several within a
second, so whether the counter crosses 9 -> 10 between a killed run and its resumed run (or two
runs in one folder) depends on which tests ran before: such a test fails in the full run and
passes when rerun alone.
"""

from __future__ import annotations

import os

from torch.utils.tensorboard import SummaryWriter

from MyModules.models import WideNet
from MyModules.viz.tensorboard import TensorBoardLogger, load_events


def old_run_file(folder) -> str:
    """A real event file with points at steps 1-3, renamed as one with a late-sorting counter."""
    with SummaryWriter(str(folder)) as writer:
        for step in (1, 2, 3):
            writer.add_scalar("loss/train_running", 9.0, step)
        name = os.path.basename(writer.file_writer.event_writer._file_name)
    head, _counter = name.rsplit(".", 1)
    late = f"{head}.99999"
    os.rename(folder / name, folder / late)
    return late


def test_a_fresh_run_in_a_used_folder_is_read_last_and_replaces_the_old_points(tmp_path):
    old = old_run_file(tmp_path)
    logger = TensorBoardLogger(tmp_path, graph=False)
    logger.on_train_begin(WideNet(width=4), 1, None)  # a fresh run in a used folder: purge from step 0
    logger.on_log(1, {"loss": 1.5})
    logger.close()
    names = sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))
    assert names[0] == old and len(names) == 2  # the new file sorts after the old one
    acc = load_events(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss/train_running")] == [(1, 1.5)]
