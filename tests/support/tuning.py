"""What the tuning tests share: a tiny search space, worker processes, polling a study."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from MyModules.tuning.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]  # the repository
# Small models so that worker processes finish their trials in a second or two.
TINY = SearchSpace(widths=(8,), conv_blocks=(1, 2), layers_per_block=(1, 1), fc_layers=(0, 1), fc_units=(32,))
TINY_ARGS = ["--widths", "8", "--conv-blocks", "1", "2", "--layers-per-block", "1", "1",
             "--fc-layers", "0", "1", "--fc-units", "32", "--device", "cpu"]


def counts(study: optuna.Study) -> dict[str, int]:
    result = dict.fromkeys((s.name for s in TrialState), 0)
    for t in study.get_trials(deepcopy=False):
        result[t.state.name] += 1
    return result


def worker(args: list[str], epochs: int = 2, **kwargs) -> subprocess.Popen:
    """``python -m MyModules tune`` as a real process (stdout and stderr together)."""
    return subprocess.Popen([sys.executable, "-m", "MyModules", "tune", *TINY_ARGS, "--epochs", str(epochs), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_for(condition, what: str, timeout: float = 120, poll: float = 0.05, process=None):
    """Poll ``condition()`` until it returns something true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = condition()
        except KeyError:  # the study does not exist yet
            result = None
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker ended before {what}:\n{process.stdout.read()}")
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")
