"""Draw the figures of docs/04_customized_op.md from the quantisers in MyModules.quant.

    python tools/make_fig04.py            # writes fig/04_*.png
    python tools/make_fig04.py --out DIR  # somewhere else (the tests compare two runs)

Every curve is computed by the real Functions: forward values by ``.apply``, backward values by
autograd through the hand-written backward, so the pictures cannot drift from the code. Labels are
in English because matplotlib's bundled font has no Japanese glyphs (docs/04 gives the captions).
PNG files carry no date or version (``metadata={"Software": None}``), so re-running the script with
the same matplotlib gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from MyModules import quant  # noqa: E402

DPI = 110
STYLE = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "fig04"}


def forward_backward(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``fn(x)`` and d fn / dx through fn's own backward (gradient of the sum: one per element)."""
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def fig_int8(out: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), layout="constrained")
    wide = torch.linspace(-170, 170, 3401)
    y, g = forward_backward(quant.Int8InFloatFunction.apply, wide)
    axes[0].plot(wide, wide, color="0.7", lw=1, label="y = x")
    axes[0].plot(wide, y, lw=1.5, label="forward")
    axes[0].set(title="forward: clamp(round(x), -128, 127)", xlabel="x", ylabel="y")
    axes[0].legend(loc="upper left")
    near = torch.linspace(-3.2, 3.2, 6401)
    y_near, _ = forward_backward(quant.Int8InFloatFunction.apply, near)
    ties = torch.arange(-2.5, 3.0, 1.0)
    axes[1].plot(near, near, color="0.7", lw=1)
    axes[1].plot(near, y_near, lw=1.5)
    axes[1].scatter(ties, quant.Int8InFloatFunction.apply(ties), color="C3", zorder=3, s=18,
                    label="ties x.5 -> even")
    axes[1].set(title="zoom: round half to even", xlabel="x", xticks=range(-3, 4))
    axes[1].legend(loc="upper left")
    axes[2].plot(wide, g, color="C2", lw=1.5)
    axes[2].set(title="backward: dy/dx used by autograd", xlabel="x", ylim=(-0.1, 1.15))
    axes[2].axvline(-128, color="0.5", ls=":", lw=1)
    axes[2].axvline(127, color="0.5", ls=":", lw=1)
    axes[2].annotate("1 inside [-128, 127]\n0 outside", (0, 0.55), ha="center")
    return save(fig, out / "04_int8_forward_backward.png")


def fig_sign(out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.0), layout="constrained")
    x = torch.linspace(-2.5, 2.5, 5001)
    y, g = forward_backward(quant.BinarySignFunction.apply, x)
    axes[0].plot(x, torch.nn.functional.hardtanh(x), color="0.7", lw=1, ls="--", label="hardtanh(x)")
    axes[0].plot(x, y, lw=1.5, label="forward: sign, 0 -> +1")
    axes[0].scatter([0], [1], color="C3", zorder=3, s=18)
    axes[0].set(title="BinarySignFunction forward", xlabel="x", ylabel="y", ylim=(-1.4, 1.6))
    axes[0].legend(loc="lower right")
    axes[1].plot(x, g, color="C2", lw=1.5, label="straight-through estimator")
    axes[1].plot(x, torch.zeros_like(x), color="0.7", lw=1, ls="--", label="true derivative of sign (0)")
    axes[1].set(title="backward: 1 where |x| <= 1", xlabel="x", ylim=(-0.15, 1.4))
    axes[1].legend(loc="upper left")
    return save(fig, out / "04_sign_forward_backward.png")


def fig_fixed_point(out: Path) -> Path:
    """The ×64 picture: Int8InFloat(frac=6) = (×64) -> int8 -> (÷64)."""
    q = quant.Int8InFloat(frac=6)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    x = torch.linspace(0, 0.2, 2001)
    axes[0].plot(x, x, color="0.7", lw=1, label="y = x")
    axes[0].plot(x, q(x), lw=1.5, label="Int8InFloat(frac=6)")
    example = torch.tensor([0.05])
    code = quant.Int8InFloatFunction.apply(example * 64)
    axes[0].scatter(example, q(example), color="C3", zorder=3, s=18)
    axes[0].annotate(f"x = 0.05\nx*64 = 3.2 -> round -> {int(code)}\n{int(code)}/64 = {float(q(example)):.6f}",
                     (0.05, float(q(example))), xytext=(0.085, 0.02), arrowprops={"arrowstyle": "->"})
    axes[0].set(title="step 1/64: int8 code = round(x * 64)", xlabel="x (float)", ylabel="y (float)")
    right = axes[0].secondary_yaxis("right", functions=(lambda v: v * 64, lambda v: v / 64))
    right.set_ylabel("int8 code (y * 64)")
    axes[0].legend(loc="upper left")
    wide = torch.linspace(-3, 3, 3001)
    y, g = forward_backward(q, wide)
    axes[1].plot(wide, y, lw=1.5, label="forward")
    axes[1].plot(wide, g, color="C2", lw=1.2, ls="--", label="backward (dy/dx)")
    axes[1].set(title="range: [-128/64, 127/64] = [-2, 1.984]", xlabel="x (float)")
    axes[1].legend(loc="upper left")
    return save(fig, out / "04_fixed_point_x64.png")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "fig", help="output folder (default: fig/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(STYLE):
        paths = [fig_int8(args.out), fig_sign(args.out), fig_fixed_point(args.out)]
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    main()
