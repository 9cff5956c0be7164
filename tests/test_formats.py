"""The library side of bad inputs, where notebooks reach it: readers that check what they read,
checkpoints that say what is wrong, and one-line errors in notebooks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from MyModules import data, errors, formats
from MyModules.checkpoint import SLOTS, has_checkpoint, load_checkpoint, save_run_checkpoint
from MyModules.errors import CheckpointError, DatasetError
from MyModules.loader import make_loaders
from MyModules.models import Net, WideNet
from MyModules.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def tree(root: Path, classes=("cat", "dog"), n: int = 4) -> Path:
    images, labels = data.make_synthetic(2 * n * len(classes), num_classes=len(classes), seed=2)
    half = len(labels) // 2
    return formats.write_image_folder(root, (images[:half], labels[:half]), (images[half:], labels[half:]), classes)


def test_cifar_reader_names_the_missing_batch(tmp_path):
    folder = data.generate_test_data("cifar10", tmp_path, train_size=50, test_size=10)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="data_batch_4 missing"):
        data.load_dataset("cifar10", tmp_path, test_mode=True)


def test_cifar_reader_refuses_images_and_labels_of_different_counts(tmp_path):
    folder = formats.write_cifar(tmp_path / "c", (np.zeros((10, 3, 32, 32), np.uint8), np.zeros(10, int)),
                                 (np.zeros((4, 3, 32, 32), np.uint8), np.zeros(4, int)), ["a", "b"])
    entry = formats._unpickle(folder / "test_batch")
    entry["labels"] = entry["labels"][:3]
    import pickle

    (folder / "test_batch").write_bytes(pickle.dumps(entry))
    with pytest.raises(DatasetError, match="test_batch holds .* for 3 labels"):
        formats.read_cifar(folder)


def test_idx_reader_refuses_truncated_files_and_count_mismatch(tmp_path):
    raw = data.generate_test_data("mnist", tmp_path, train_size=40, test_size=10)
    path = raw / "t10k-images-idx3-ubyte"
    good = path.read_bytes()
    path.write_bytes(good[:-1])
    with pytest.raises(DatasetError, match="header promises"):
        formats.read_mnist(raw)
    path.write_bytes(good)
    labels = raw / "t10k-labels-idx1-ubyte"
    formats.write_idx(tmp_path / "other", (np.zeros((2, 3, 3), np.uint8), np.zeros(2, np.uint8)),
                      (np.zeros((2, 3, 3), np.uint8), np.zeros(12, np.uint8)))
    shutil.copy(tmp_path / "other" / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(DatasetError, match="10 images but t10k-labels-idx1-ubyte 12 labels"):
        formats.read_mnist(raw)


def test_image_folder_refuses_empty_and_single_classes(tmp_path):
    root = tree(tmp_path / "a")
    (root / "train" / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty.*hold no images"):
        data.load_dataset("imagefolder", root, test_mode=False)
    one = tree(tmp_path / "b", classes=("only",))
    with pytest.raises(DatasetError, match="at least 2"):
        data.load_dataset("imagefolder", one, test_mode=False)


def test_image_folder_never_writes_into_the_tree(tmp_path):
    root = tree(tmp_path / "t")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    ds = data.load_dataset("imagefolder", root, test_mode=False, cache_dir=tmp_path / "cache")
    again = data.load_dataset("imagefolder", root, test_mode=False, cache_dir=tmp_path / "cache")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert torch.equal(ds.train.images, again.train.images) and ds.classes == ["cat", "dog"]


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    root = tree(tmp_path / "t")
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64)  # 0 .. 65472
    Image.fromarray(ramp).save(root / "train" / "cat" / "ramp16.png")
    assert Image.open(root / "train" / "cat" / "ramp16.png").mode.startswith("I")
    decoded = formats.decode_image(root / "train" / "cat" / "ramp16.png", 32, 1)[..., 0]
    expected = np.round(ramp / 257.0)
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1
    assert decoded.max() > 250 and len(np.unique(decoded)) > 200  # clipping would leave 0 and 255 only


def test_not_an_image_and_a_bomb_are_named(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(DatasetError, match="bad.png is not a readable image"):
        formats.decode_image(bad, 32, 3)
    big = tmp_path / "big.png"
    Image.new("L", (9000, 9000)).save(big)  # 81 M pixels: above the course's limit, compresses to ~80 kB
    with pytest.raises(DatasetError, match="big.png .*too large"):
        formats.decode_image(big, 32, 3)




def short_run(dataset, run_dir, **config):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    return fit(Net(), train_loader, test_loader, TrainConfig(max_steps_per_epoch=2, **config), "cpu",
               run_dir=run_dir, progress=False, info={"model": "net", "dataset": "synthetic"})


def test_checkpoints_alternate_slots_and_rewrite_them_in_place(dataset, tmp_path):
    short_run(dataset, tmp_path, epochs=2)  # epoch 1 -> slot b (1 % 2), epoch 2 -> slot a
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.pt")) == list(SLOTS)
    inode = (tmp_path / SLOTS[1]).stat().st_ino
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2 and state["format"]
    state["epoch"] = 3
    assert save_run_checkpoint(state, tmp_path).name == SLOTS[1]
    assert load_checkpoint(tmp_path)["epoch"] == 3
    # The same file, rewritten: on Drive no copy goes to the Trash per epoch.
    assert (tmp_path / SLOTS[1]).stat().st_ino == inode
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_torn_newest_slot_falls_back_to_the_previous_epoch(dataset, tmp_path):
    short_run(dataset, tmp_path, epochs=2)
    newest = tmp_path / SLOTS[0]  # epoch 2
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    assert load_checkpoint(tmp_path)["epoch"] == 1
    (tmp_path / SLOTS[1]).write_bytes(b"")
    with pytest.raises(CheckpointError, match="no usable checkpoint.*0 bytes"):
        load_checkpoint(tmp_path)


def test_fit_resume_names_what_differs(dataset, tmp_path):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    fit(WideNet(width=8), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu",
        run_dir=tmp_path, progress=False, info={"model": "widenet", "dataset": "synthetic"})
    with pytest.raises(CheckpointError, match=r"another model or dataset \(conv1.weight: missing in checkpoint"):
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu", run_dir=tmp_path,
            resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"features.0.0.weight: checkpoint \(8, 3, 5, 5\) vs model \(16, 3, 5, 5\)"):
        fit(WideNet(width=16), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu", run_dir=tmp_path,
            resume=True, progress=False)
    with pytest.raises(CheckpointError, match="made for model 'widenet', not 'net'"):
        fit(WideNet(width=8), train_loader, test_loader, TrainConfig(epochs=1, max_steps_per_epoch=2), "cpu",
            run_dir=tmp_path, resume=True, progress=False, info={"model": "net"})
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        fit(Net(), train_loader, test_loader, TrainConfig(epochs=1), "cpu", run_dir=tmp_path / "new", resume=True,
            progress=False)


KILL_MID_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys, torch
    from MyModules import checkpoint
    state = checkpoint.load_checkpoint(sys.argv[1])
    state["epoch"] += 1  # the next epoch goes to the other slot, in place
    real_save = torch.save
    def torn(obj, f, *a, **k):
        f.write(b"PK\\x03\\x04 half a checkpoint")
        f.flush(); os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    torch.save = torn
    checkpoint.save_run_checkpoint(state, sys.argv[1])
""")


def test_a_process_killed_mid_checkpoint_leaves_the_previous_epoch(dataset, tmp_path):
    short_run(dataset, tmp_path, epochs=2)  # slots hold epochs 1 and 2
    proc = subprocess.run([sys.executable, "-c", KILL_MID_CHECKPOINT, str(tmp_path)], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert has_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path)["epoch"] == 2  # epoch 3 was torn in slot "b"; epoch 2 is intact


def test_course_errors_show_as_one_line_in_notebooks():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    assert errors.show_in_notebooks(shell)
    assert errors.show_in_notebooks()  # env.setup()'s call finds the running shell by itself
    proc_out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            from IPython.core.interactiveshell import InteractiveShell
            from MyModules import errors
            shell = InteractiveShell.instance()
            errors.show_in_notebooks(shell)
            shell.run_cell("from MyModules.errors import DivergenceError\\nraise DivergenceError('loss became NaN')")
        """)], capture_output=True, text=True, cwd=ROOT, timeout=120, env=dict(os.environ, TERM="dumb"))
    out = proc_out.stdout + proc_out.stderr
    assert "DivergenceError: loss became NaN" in out and "学習率" in out
    assert "Traceback" not in out and "raise DivergenceError" not in out


def test_the_command_line_neither_installs_the_notebook_display_nor_imports_ipython():
    code = "import sys; from MyModules import errors; print(errors.show_in_notebooks(), 'IPython' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr
