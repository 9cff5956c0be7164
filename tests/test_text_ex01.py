"""Session 1's time figures come from one table, and its student text holds no instructor material.

The table at the top of docs/01_preparation.md is the single source of session 1's time budget. Each
Exercise01 notebook states the same minutes in its first cell ("**時間の目安**"), the sum line under
the table adds up its required rows, and the derivation in docs/instructor.md ("## 第 1 回") arrives at
the same totals. No student text (the four guides, the markdown of every notebook) shows a
``benchmarks/`` command: that folder is not installed in Colab, its commands are in docs/instructor.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "01_preparation.md"
INSTRUCTOR = ROOT / "docs" / "instructor.md"
NOTEBOOKS = sorted((ROOT / "Exercise01").glob("**/*.ipynb"))


def budget_rows() -> list[tuple[str, str, str, int]]:
    """(notebook file or "(準備)", part such as "1〜4 章" or "", 必修/宿題/任意, minutes) of the guide's table."""
    rows = []
    for line in GUIDE.read_text(encoding="utf-8").split("\n## 1.")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not (cells[0].startswith("`01_") or cells[0] == "(準備)"):
            continue
        match = re.fullmatch(r"(?:`(?P<file>[^`]+)`|(?P<prep>\(準備\)))\s*(?P<part>.*)", cells[0])
        minutes = re.fullmatch(r"約 (\d+) 分", cells[4])
        assert match and minutes, f"unreadable row of the time table: {line}"
        rows.append((match["file"] or match["prep"], match["part"], cells[3], int(minutes[1])))
    return rows


def header(path: Path) -> str:
    first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    text = "".join(first["source"])
    assert "**時間の目安**" in text, f"{path.name}: the first cell states no 時間の目安"
    return " ".join(text.split("**時間の目安**", 1)[1].split())


def test_the_table_is_read():
    rows = budget_rows()
    assert [r[0] for r in rows][:2] == ["(準備)", "01_01_tutorial.ipynb"]
    assert {r[0] for r in rows} >= {p.name for p in NOTEBOOKS}
    assert {r[2] for r in rows} <= {"必修", "宿題", "任意"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_header_states_the_minutes_of_the_table(path):
    rows = [r for r in budget_rows() if r[0] == path.name]
    assert rows, f"{path.name} has no row in the table of {GUIDE.name}"
    text = header(path)
    for _, part, kind, minutes in rows:
        fragment = f"{part}: {kind} 約 {minutes} 分" if len(rows) > 1 else f"{kind} 約 {minutes} 分"
        assert fragment in text, f"{path.name} should say {fragment!r} (the table's row), it says: {text[:300]}"


def test_required_total_is_the_sum_of_the_required_rows():
    required = sum(minutes for *_, kind, minutes in budget_rows() if kind == "必修")
    total = re.search(r"第 1 回の必修は合計約 (\d+) 分", GUIDE.read_text(encoding="utf-8"))
    assert total and int(total[1]) == required
    assert required <= 90


def test_instructor_derivation_arrives_at_the_table():
    section = INSTRUCTOR.read_text(encoding="utf-8").split("## 第 1 回", 1)[1].split("\n## ", 1)[0]
    derived = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and (cells[0].startswith("`01_") or cells[0] == "(準備)"):
            name = re.sub(r"\s*\((必修|宿題|任意)\)$", "", cells[0]).replace("`", "")
            derived[name] = int(cells[6])
    table = {f"{file} {part}".strip().replace(".ipynb", "").replace("_tutorial_gpu", "").replace(
        "_tutorial", "").replace("_vgg", "").replace("_speed", ""): minutes for file, part, _, minutes in budget_rows()}
    assert derived == table


STUDENT_GUIDES = [ROOT / "docs" / name for name in (
    "01_preparation.md", "02_visualizer.md", "03_optuna.md", "04_customized_op.md")]
ALL_NOTEBOOKS = sorted(p for n in range(1, 5) for p in (ROOT / f"Exercise0{n}").glob("**/*.ipynb"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_text_holds_no_benchmark_command(path):
    """benchmarks/ is not installed in Colab: its commands and figures belong in docs/instructor.md."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "benchmarks/" not in text, f"{path.name}: benchmark commands belong in docs/instructor.md"


@pytest.mark.parametrize("path", STUDENT_GUIDES, ids=lambda p: p.name)
def test_student_guide_holds_no_benchmark_command(path):
    text = path.read_text(encoding="utf-8")
    found = [line for line in text.splitlines() if "python benchmarks/" in line]
    assert not found, f"{path.name}: benchmark commands belong in docs/instructor.md: {found}"
