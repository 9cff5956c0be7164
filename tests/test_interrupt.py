"""Ctrl-C that a finalizer swallows still stops the command (MyModules/interrupt.py).

The fault is real: the worker process sends itself SIGINT from inside a ``__del__`` method, where
Python prints "Exception ignored in ..." and drops the KeyboardInterrupt, as it did inside SQLAlchemy's
weakref callbacks in a CI run of ``tune``. The same program run through ``main`` alone (Python's own
handler) shows that the run would otherwise have gone on to its last epoch.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from MyModules import interrupt
from MyModules.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# A training command whose first checkpoint is followed by garbage whose finalizer gets the Ctrl-C.
PROGRAM = textwrap.dedent("""
    import os, signal, sys
    import MyModules.__main__ as cli
    from MyModules import train

    class SwallowsCtrlC:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the KeyboardInterrupt strikes here, inside the finalizer
                pass

    save_state = train.save_state
    def save_then_collect(*args):
        save_state(*args)
        SwallowsCtrlC()  # dropped at once: its __del__ runs now
    train.save_state = save_then_collect

    if sys.argv[1] == "run":  # the command line as users start it
        sys.argv[1:2] = []
        cli.run()
    sys.exit(cli.main(sys.argv[2:]))  # Python's own SIGINT handler
""")


def train_with_a_swallowed_ctrl_c(how: str, tmp_path: Path, synthetic_root: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / how
    env = dict(os.environ, COURSE_DIR=str(tmp_path / "course"), PYTHONPATH=str(ROOT))
    env.pop("COURSE_TEST_MODE", None)
    result = subprocess.run([sys.executable, "-c", PROGRAM, how, "train", "--dataset", "synthetic", "--data-root",
                             str(synthetic_root), "--epochs", "3", "--max-steps", "5", "--out", str(out),
                             "--no-progress", "--no-plots", "--no-tensorboard"],
                            env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    return result, out


def test_a_swallowed_ctrl_c_stops_training_after_the_saved_epoch(tmp_path, synthetic_root):
    result, out = train_with_a_swallowed_ctrl_c("run", tmp_path, synthetic_root)
    assert "Exception ignored" in result.stderr and "KeyboardInterrupt" in result.stderr  # the fault happened
    assert result.returncode == -signal.SIGINT, result.stderr  # a shell loop stops here
    assert f"continue with python -m MyModules train --resume --out {out}" in result.stderr
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1  # stopped in epoch 2, epoch 1 kept
    assert not (out / "summary.json").exists()


def test_without_the_handler_the_same_ctrl_c_is_lost(tmp_path, synthetic_root):
    result, out = train_with_a_swallowed_ctrl_c("main", tmp_path, synthetic_root)
    assert "Exception ignored" in result.stderr
    assert result.returncode == 0, result.stderr  # what interrupt.py exists for: the run went on
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


def test_check_raises_only_after_ctrl_c_within_catching():
    with interrupt.catching():
        interrupt.check()  # nothing pressed yet
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        assert interrupt.pressed()
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert signal.getsignal(signal.SIGINT) is not interrupt._on_sigint  # the previous handler is back
    with interrupt.catching():  # a new command starts unpressed
        assert not interrupt.pressed()
        interrupt.check()
