"""Each session's time figures come from one table: its guide's 「時間の目安」, derived from the notebook.

Session 2 and 4 (docs/02_visualizer.md, docs/04_customized_op.md). The table's rows for reading and
for the blanks are recomputed here from the solution notebook with the rule of docs/instructor.md:

* reading: the non-blank characters of the Markdown and of the code that is given (comments, blank
  lines and the setup cell left out) of the required chapters, at ``READ_CHARS_PER_MIN``;
* blanks: ``BLANK_MIN`` per blank (read the task, run the self-check, fix once) plus ``LINE_MIN`` per
  line the student writes (a ``### TEMPLATE`` skeleton's lines are given, not written).

Both are estimates (見積もり), not measurements of students; this test only keeps the table, the
notebook header and the rest of the guide telling the same numbers when the notebook changes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BEGIN, TEMPLATE, END = "### BEGIN SOLUTION", "### TEMPLATE", "### END SOLUTION"
READ_CHARS_PER_MIN = 400
BLANK_MIN, LINE_MIN = 4.0, 1.5
TOLERANCE_MIN = 2  # the table rounds; a small edit of the text should not need a new table


@dataclass(frozen=True)
class Session:
    notebook: str  # the solution notebook (its template has the same text)
    docs: str
    optional: str  # the heading that starts the part outside the 90 minutes


SESSIONS = {
    "02": Session("Exercise02/solutions/02_01_visualizer.ipynb", "docs/02_visualizer.md", "## 8. 発展"),
    "04": Session("Exercise04/solutions/04_01_custom_op.ipynb", "docs/04_customized_op.md", "## 6. 宿題"),
}


def cells_of(session: Session) -> tuple[list[dict], list[dict]]:
    """(required cells, optional cells) of the solution notebook."""
    cells = json.loads((ROOT / session.notebook).read_text(encoding="utf-8"))["cells"]
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(session.optional))
    return cells[:start], cells[start:]


def _split(code: str) -> tuple[list[str], list[tuple[list[str], list[str]]]]:
    """The given lines of a code cell, and (solution lines, template lines) of each blank."""
    given, blanks, solution, template, where = [], [], [], [], "given"
    for line in code.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            solution, template, where = [], [], "solution"
        elif marker == TEMPLATE and where == "solution":
            where = "template"
        elif marker == END:
            blanks.append((solution, template))
            where = "given"
        else:
            {"given": given, "solution": solution, "template": template}[where].append(line)
    return given, blanks


def _code_line(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip() if not line.strip().startswith("#") else ""


def reading_minutes(cells: list[dict]) -> float:
    chars = 0
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            chars += len(re.sub(r"\s", "", text))
        elif "setup" not in cell.get("metadata", {}).get("tags", []):
            given, _ = _split(text)
            chars += sum(len(re.sub(r"\s", "", _code_line(line))) for line in given)
    return chars / READ_CHARS_PER_MIN


def written_lines(solution: list[str], template: list[str]) -> int:
    """Lines of the solution the student writes: those the template does not already show."""
    shown = {_code_line(line[2:] if line.strip().startswith("# ") else line).strip()
             for line in (t.strip() for t in template)}
    return sum(1 for line in solution if _code_line(line) and _code_line(line) not in shown)


def blank_minutes(cells: list[dict]) -> tuple[int, float]:
    """(number of blanks, minutes for them)."""
    blanks = [b for c in cells if c["cell_type"] == "code" for b in _split("".join(c["source"]))[1]]
    return len(blanks), sum(BLANK_MIN + LINE_MIN * written_lines(s, t) for s, t in blanks)


def table(session: Session) -> dict[str, int]:
    """The rows of the guide's 「時間の目安」 table: {first cell: minutes}."""
    text = (ROOT / session.docs).read_text(encoding="utf-8")
    section = re.split(r"^## (?:\d+\. )?時間の目安", text, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"(約 ?)?\d+", cells[1]):
            rows[cells[0]] = int(re.sub(r"\D", "", cells[1]))
    return rows


def row_text(session: Session, start: str) -> str:
    """The whole line of the guide's table whose first cell starts with `start`."""
    text = (ROOT / session.docs).read_text(encoding="utf-8")
    found = [line for line in text.splitlines() if line.startswith(f"| {start}")]
    assert len(found) == 1, (start, found)
    return found[0]


def row(rows: dict[str, int], start: str) -> int:
    found = [v for k, v in rows.items() if k.startswith(start)]
    assert len(found) == 1, (start, rows)
    return found[0]


def header(session: Session) -> str:
    cells = json.loads((ROOT / session.notebook).read_text(encoding="utf-8"))["cells"]
    text = "".join(cells[0]["source"])
    return text.split("**時間の目安**", 1)[1]


@pytest.mark.parametrize("name", SESSIONS)
def test_table_rows_follow_from_the_notebook(name):
    session = SESSIONS[name]
    required, _ = cells_of(session)
    rows = table(session)
    reading = reading_minutes(required)
    count, blanks = blank_minutes(required)
    assert abs(row(rows, "説明とコードを読む") - reading) <= TOLERANCE_MIN, (
        f"{session.docs}: the reading row should be about {reading:.0f} min")
    assert abs(row(rows, f"穴埋め {count} つ") - blanks) <= TOLERANCE_MIN, (
        f"{session.docs}: {count} blanks are about {blanks:.0f} min")
    lines = sum(written_lines(s, t) for c in required if c["cell_type"] == "code"
                for s, t in _split("".join(c["source"]))[1])
    stated = re.findall(r"\((\d+) 行\)", row_text(session, f"穴埋め {count} つ"))
    assert stated == [str(lines)], f"{session.docs}: the blanks row should say ({lines} 行), it says {stated}"


@pytest.mark.parametrize("name", SESSIONS)
def test_the_total_is_the_sum_of_the_rows(name):
    rows = table(SESSIONS[name])
    total = row(rows, "必修の合計")
    parts = [v for k, v in rows.items() if not k.startswith(("必修の合計", "発展", "宿題"))]
    assert sum(parts) == total, rows
    assert total <= 90, f"session {name}: the required part ({total} min) does not fit 90 minutes"


@pytest.mark.parametrize("name", SESSIONS)
def test_the_notebook_header_and_the_guide_tell_the_table(name):
    session = SESSIONS[name]
    rows = table(session)
    total = row(rows, "必修の合計")
    optional = next(v for k, v in rows.items() if k.startswith(("発展", "宿題")))
    text = header(session)
    assert [int(m) for m in re.findall(r"(\d+) 分", text)] == [total, optional], text
    docs = (ROOT / session.docs).read_text(encoding="utf-8")
    mentions = [int(m) for m in re.findall(r"必修[^。\n|]*?約 (\d+) 分", docs)]
    assert all(m == total for m in mentions), mentions  # prose elsewhere in the guide


def test_the_rule_counts_a_skeleton_as_given():
    solution = ["        ctx.save_for_backward(x, beta)  # keep", "        return x * torch.sigmoid(beta * x)"]
    template = ["        # ctx.save_for_backward(x, beta)  # keep", '        # raise NotImplementedError("TODO")']
    assert written_lines(solution, template) == 1
    assert written_lines(solution, []) == 2
    assert math.isclose(BLANK_MIN + LINE_MIN * written_lines(solution, template), 5.5)
