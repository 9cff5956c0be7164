"""The session-4 C exercise (Exercise04/c): built with the system C compiler in a temporary folder.

* The Makefile's self-test passes on the solution and fails on the untouched template.
* The solution gives bit-for-bit the results of ``quant.Int8InFloatFunction`` on many values,
  ties at .5 included (NaN compared as NaN).
* C's ``roundf`` (halves away from zero) disagrees with ``torch.round`` (halves to even) exactly
  on the ties with an even integer part: the reason the course uses ``nearbyintf``.
"""

from __future__ import annotations

import ctypes
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


def require_tools() -> None:
    missing = [tool for tool in (CC, "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install a C compiler and make (apt install build-essential)")


@pytest.fixture
def c_dir(tmp_path: Path) -> Path:
    """A copy of Exercise04/c, so no build product lands in the working tree."""
    require_tools()
    folder = tmp_path / "c"
    shutil.copytree(C_DIR, folder)
    return folder


def make(folder: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(folder), f"CC={CC}", *targets], capture_output=True, text=True,
                          timeout=120)


def load_quantizer(library: Path):
    lib = ctypes.CDLL(str(library))
    fn = lib.quantizeInt8InFloat
    fn.argtypes = [ctypes.c_size_t, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    fn.restype = None

    def run(values: np.ndarray) -> np.ndarray:
        src = np.ascontiguousarray(values, dtype=np.float32)
        dst = np.empty_like(src)
        fn(src.size, src.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
           dst.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return dst

    return run


def many_values() -> np.ndarray:
    rng = np.random.default_rng(0)
    ties = np.arange(-300, 300) + 0.5  # every tie in and around the int8 range
    quarters = np.arange(-1200, 1201) / 4.0
    edges = [0.0, -0.0, 1e-40, -1e-40, 0.49999997, 127.49999, 127.5, -127.5, -128.5, -128.0, 127.0,
             128.0, 1e10, -1e10, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan]
    return np.concatenate([ties, quarters, edges, rng.normal(0, 100, 20_000),
                           rng.uniform(-1000, 1000, 20_000)]).astype(np.float32)


def assert_same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    # Bits, not ==: -0.0 must stay -0.0 as torch.round keeps it (-0.4 -> -0.0).
    mismatch = np.flatnonzero(got[~nan].view(np.int32) != expected[~nan].view(np.int32))
    assert mismatch.size == 0, f"first differences: {got[~nan][mismatch[:5]]} vs {expected[~nan][mismatch[:5]]}"


def test_solution_passes_its_self_test(c_dir):
    result = make(c_dir, "solution")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK:" in result.stdout
    assert "warning" not in result.stderr  # -Wall -Wextra -pedantic stay clean


def test_template_fails_its_self_test(c_dir):
    result = make(c_dir, "test")  # the untouched student file only copies values
    assert result.returncode != 0
    assert "NG: quantizeInt8InFloat(2.5) = 2.5" in result.stdout


def test_solution_matches_pytorch_bit_for_bit(c_dir):
    result = make(c_dir, "lib", "SRC=solution/quantize.c")
    assert result.returncode == 0, result.stdout + result.stderr
    c_quantize = load_quantizer(c_dir / "libquantize.so")
    values = many_values()
    expected = quant.Int8InFloatFunction.apply(torch.from_numpy(values)).numpy()
    assert_same_bits(c_quantize(values), expected)
    # Documented edge behaviour, on both sides.
    edge = np.array([2.5, 3.5, -2.5, -0.4, 127.5, -128.5, np.inf, -np.inf, np.nan], dtype=np.float32)
    want = np.array([2, 4, -2, -0.0, 127, -128, 127, -128, np.nan], dtype=np.float32)
    assert_same_bits(c_quantize(edge), want)
    assert_same_bits(quant.Int8InFloatFunction.apply(torch.from_numpy(edge)).numpy(), want)


def test_roundf_disagrees_with_torch_round_on_even_ties(c_dir):
    """The difference docs/04 explains: the same solution with roundf instead of nearbyintf."""
    source = (c_dir / "solution" / "quantize.c").read_text()
    assert "nearbyintf(src[i])" in source
    (c_dir / "solution" / "quantize_roundf.c").write_text(source.replace("nearbyintf(src[i])", "roundf(src[i])"))
    result = make(c_dir, "lib", "SRC=solution/quantize_roundf.c")
    assert result.returncode == 0, result.stderr
    c_roundf = load_quantizer(c_dir / "libquantize.so")
    values = many_values()
    values = values[np.isfinite(values)]  # the tie arithmetic below needs finite numbers
    got = c_roundf(values)
    expected = quant.Int8InFloatFunction.apply(torch.from_numpy(values)).numpy()
    differs = (got != expected) & ~np.isnan(expected)
    integer_part = np.trunc(values)
    even_ties = (np.abs(values - integer_part) == 0.5) & (integer_part % 2 == 0)
    # Inside the range, roundf moves exactly those ties one step away from zero (2.5 -> 3, -0.5 -> -1).
    inside = np.abs(values) < 127
    np.testing.assert_array_equal(differs[inside], even_ties[inside])
    np.testing.assert_array_equal(np.abs(got[differs]) - np.abs(expected[differs]), 1.0)
