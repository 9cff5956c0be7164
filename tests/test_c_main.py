"""The session-4 C homework "write main yourself" (Exercise04/c/main.c): built with the system compiler.

* ``make main-solution`` passes: the solution's output on main_input.txt equals main_expected.txt.
* ``make main`` fails on the untouched template, with the Japanese NG line.
* main_expected.txt is what ``quant.Int8InFloatFunction`` gives on main_input.txt (so the file is right).
* The solution's main reads any amount of input (past its first buffer, so realloc runs) and prints
  the same integers as PyTorch for random values.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from MyModules import quant

C_DIR = Path(__file__).resolve().parents[1] / "Exercise04" / "c"
CC = os.environ.get("CC", "cc")


@pytest.fixture
def c_dir(tmp_path: Path) -> Path:
    missing = [tool for tool in (CC, "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install a C compiler and make (apt install build-essential)")
    folder = tmp_path / "c"
    shutil.copytree(C_DIR, folder)
    return folder


def make(folder: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(folder), f"CC={CC}", *targets], capture_output=True, text=True,
                          timeout=120)


def reference(values: list[float]) -> list[str]:
    out = quant.Int8InFloatFunction.apply(torch.tensor(values, dtype=torch.float32))
    return [f"{v:g}" for v in out.tolist()]


def test_expected_file_is_what_pytorch_gives():
    values = [float(v) for v in (C_DIR / "main_input.txt").read_text().split()]
    assert (C_DIR / "main_expected.txt").read_text().split() == reference(values)
    assert {"2.5", "-0.4", "inf", "-inf", "300"} <= set((C_DIR / "main_input.txt").read_text().split())


def test_solution_main_passes_and_template_fails(c_dir):
    solved = make(c_dir, "main-solution")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "OK: main の出力" in solved.stdout
    assert "warning" not in solved.stderr
    template = make(c_dir, "main", "SRC=solution/quantize.c")  # the student's main.c as shipped
    assert template.returncode != 0
    assert "NG: main の出力が main_expected.txt と違います" in template.stdout


def test_solution_main_reads_any_amount_of_input(c_dir):
    result = make(c_dir, "main-solution")
    assert result.returncode == 0, result.stderr
    values = np.random.default_rng(1).normal(0, 80, 5000).astype(np.float32)  # far past the first 16
    text = "\n".join(f"{v:.9g}" for v in values)  # 9 digits: the float32 value survives the round trip
    run = subprocess.run([str(c_dir / "quantize_main")], input=text, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == reference(values.tolist())
