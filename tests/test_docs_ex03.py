"""Session 3's time figures come from one table (docs/03_optuna.md, section 7) and agree everywhere.

The rule is session 2's and 4's (docs/instructor.md): reading = the non-blank characters of the
Markdown and of the given code (comments and the setup cell left out) of the required chapters at
``READ_CHARS_PER_MIN``; a blank = ``BLANK_MIN`` + ``LINE_MIN`` per line the student writes (a
``### TEMPLATE`` skeleton's lines are given). This test recomputes the required rows from the
notebooks, checks that the training minutes are what ``benchmarks/bench_trial.py`` estimates for what
the notebooks train (trials, epochs, search space, data as their cells set them), that the required
part fits the 90-minute session, and that the notebook headers quote the table. All figures are
estimates (見積もり); the test only keeps them telling the same numbers when a notebook changes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "03_optuna.md"
NOTEBOOKS = {"03_01": ROOT / "Exercise03" / "solutions" / "03_01_optuna.ipynb",
             "03_02": ROOT / "Exercise03" / "03_02_pruning.ipynb"}
OPTIONAL = "## (任意)"  # the first heading of a notebook's part outside the 90 minutes
SESSION_MINUTES = 90
READ_CHARS_PER_MIN = 400
BLANK_MIN, LINE_MIN = 4.0, 1.5
TOLERANCE_MIN = 2  # the table rounds; a small edit of the text should not need a new table
BEGIN, TEMPLATE, END = "### BEGIN SOLUTION", "### TEMPLATE", "### END SOLUTION"

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_trial  # noqa: E402


def time_table() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 7. 時間の目安"):text.index("## 8.")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] not in ("部分", "---"):
            rows.append(dict(zip(("part", "kind", "read", "blanks", "setup", "train", "total"), cells)))
    return rows


def the_row(start: str) -> dict[str, str]:
    found = [r for r in time_table() if r["part"].startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def notebook_cells(notebook: str) -> list[dict]:
    return json.loads(NOTEBOOKS[notebook].read_text(encoding="utf-8"))["cells"]


def required_cells(notebook: str) -> list[dict]:
    cells = notebook_cells(notebook)
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(OPTIONAL))
    return cells[:start]


def code(notebook: str) -> str:
    return "\n".join("".join(c["source"]) for c in notebook_cells(notebook) if c["cell_type"] == "code")


def setting(notebook: str, name: str) -> int:
    found = re.findall(rf"^{name} = (\d+)", code(notebook), flags=re.M)
    assert len(found) == 1, f"{notebook} sets {name} {len(found)} times"
    return int(found[0])


# --- the rule ---------------------------------------------------------------------------------------

def split_code(text: str) -> tuple[list[str], list[tuple[list[str], list[str]]]]:
    """The given lines of a code cell, and (solution lines, template lines) of each blank."""
    given, blanks, solution, template, where = [], [], [], [], "given"
    for line in text.splitlines():
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


def code_line(line: str) -> str:
    return "" if line.strip().startswith("#") else re.sub(r"\s+#.*$", "", line).strip()


def reading_minutes(cells: list[dict]) -> float:
    chars = 0
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            chars += len(re.sub(r"\s", "", text))
        elif "setup" not in cell.get("metadata", {}).get("tags", []):
            chars += sum(len(re.sub(r"\s", "", code_line(line))) for line in split_code(text)[0])
    return chars / READ_CHARS_PER_MIN


def written_lines(solution: list[str], template: list[str]) -> int:
    """Lines of the solution the student writes: those the template does not already show."""
    shown = {code_line(line[2:] if line.startswith("# ") else line) for line in (t.strip() for t in template)}
    return sum(1 for line in solution if code_line(line) and code_line(line) not in shown)


def blank_minutes(cells: list[dict]) -> tuple[int, float]:
    blanks = [b for c in cells if c["cell_type"] == "code" for b in split_code("".join(c["source"]))[1]]
    return len(blanks), sum(BLANK_MIN + LINE_MIN * written_lines(s, t) for s, t in blanks)


def test_the_rule_counts_a_skeleton_as_given():
    solution = ["    for epoch in range(3):", "        train(epoch)", "        trial.report(accuracy, epoch)"]
    template = ["    # for epoch in range(3):", "    #     train(epoch)", "    #     # TODO: report"]
    assert written_lines(solution, template) == 1
    assert written_lines(solution, []) == 3


# --- the table ---------------------------------------------------------------------------------------

def test_the_table_is_read():
    rows = time_table()
    assert [r["kind"] for r in rows] == ["必修", "必修", "任意", "任意"]


@pytest.mark.parametrize("row", time_table(), ids=lambda r: r["part"][:12])
def test_each_row_adds_up(row):
    blanks = re.fullmatch(r"(\d+) つ (\d+) 分|なし", row["blanks"])
    assert blanks, row
    parts = [int(row["read"]), int(blanks[2] or 0), int(row["setup"]), int(row["train"])]
    assert int(row["total"]) == sum(parts), row


@pytest.mark.parametrize("notebook, start", [("03_01", "03_01 ①〜④"), ("03_02", "03_02 ①")])
def test_required_rows_follow_from_the_notebook(notebook, start):
    row = the_row(start)
    cells = required_cells(notebook)
    reading = reading_minutes(cells)
    count, minutes = blank_minutes(cells)
    assert abs(int(row["read"]) - reading) <= TOLERANCE_MIN, f"{start}: reading is about {reading:.0f} min"
    if count:
        listed, listed_minutes = map(int, re.fullmatch(r"(\d+) つ (\d+) 分", row["blanks"]).groups())
        assert listed == count and abs(listed_minutes - minutes) <= TOLERANCE_MIN, (
            f"{start}: {count} blanks of about {minutes:.0f} min")
    else:
        assert row["blanks"] == "なし"


def test_the_required_part_fits_the_session_and_the_guide_says_its_total():
    total = sum(int(r["total"]) for r in time_table() if r["kind"] == "必修")
    assert total <= SESSION_MINUTES
    said = re.findall(r"必修は合計約 (\d+) 分", DOC.read_text(encoding="utf-8"))
    assert said == [str(total)]


@pytest.mark.parametrize("notebook, start", [("03_01", "03_01 ①〜④"), ("03_02", "03_02 ①")])
def test_notebook_headers_quote_the_table(notebook, start):
    row = the_row(start)
    header = "".join(notebook_cells(notebook)[0]["source"])
    assert re.findall(r"必修 \([^)]*\) 約 (\d+) 分", header) == [row["total"]], header
    if int(row["train"]):
        assert re.findall(r"うち学習 約 (\d+) 分", header) == [row["train"]], header
    else:
        assert "学習なし" in header, header
    assert "見積もり" in header and "docs/03_optuna.md" in header


def test_training_minutes_are_the_benchmark_estimate():
    for row in time_table():
        plans = [p for p in bench_trial.PLANS if row["part"].startswith(p.row)]
        assert int(row["train"]) == sum(bench_trial.table_minutes(p) for p in plans), (row, plans)
        for plan in plans:  # the row names what each search trains
            assert plan.what in row["part"], (plan, row)
            pruners = re.search(r"(\d+) つの pruner × (\d+) 試行 × (\d+) エポック", plan.what)
            trials = re.search(r"(\d+) 試行 × (\d+) エポック", plan.what)
            said = ((int(pruners[1]) * int(pruners[2]), int(pruners[3])) if pruners
                    else (int(trials[1]), int(trials[2])))
            assert said == (plan.trials, plan.epochs), plan


def plan(what: str) -> bench_trial.Plan:
    return next(p for p in bench_trial.PLANS if p.what.startswith(what))


def test_the_estimate_trains_what_03_01_trains():
    text = code("03_01")
    hand = plan("②")
    assert (setting("03_01", "HAND_TRIALS"), setting("03_01", "HAND_EPOCHS")) == (hand.trials, hand.epochs)
    assert "dataset.train.images[::5]" in text and "dataset.test.images[::5]" in text
    assert bench_trial.HAND_TRAIN_IMAGES == bench_trial.EPOCH_IMAGES // 5
    assert "make_loaders(small, batch_size=128" in text and bench_trial.HAND_BATCH == 128
    assert "ConvNet(ConvNetShape(conv_blocks=2, width=16)" in text
    assert bench_trial.HAND_SHAPE == bench_trial.ConvNetShape(conv_blocks=2, width=16)
    search = plan("③")
    assert (setting("03_01", "N_TRIALS"), setting("03_01", "EPOCHS")) == (search.trials, search.epochs)
    more = re.findall(r"run_worker\(study, objective, n_trials=(\d+)\)", text)
    assert [int(n) - search.trials for n in more] == [plan("10 試行").trials]
    # build_model's ranges are those of the default search space the estimate averages over
    assert search.space == bench_trial.SearchSpace()
    assert 'suggest_int("conv_blocks", 1, 3)' in text and '"width", [16, 32, 64]' in text
    assert 'suggest_int("layers_per_block", 1, 2)' in text


def test_the_estimate_trains_what_03_02_trains():
    text = code("03_02")
    trials, epochs = setting("03_02", "N_TRIALS"), setting("03_02", "EPOCHS")
    start = re.search(r"^pruners = \{", text, flags=re.M).start()
    optional_at = text.index("if RUN_OPTIONAL:", start)
    required = len(re.findall(r'^    "\w+": optuna\.pruners\.', text[start:optional_at], flags=re.M))
    optional = len(re.findall(r'pruners\["\w+"\] = optuna\.pruners\.', text[optional_at:optional_at + 400]))
    assert (required * trials, epochs) == (plan("② 本物の学習").trials, plan("② 本物の学習").epochs)
    assert (optional * trials, epochs) == (plan("残りの pruner").trials, plan("残りの pruner").epochs)
    space = re.search(r"^space = (SearchSpace\(.*\))", text, flags=re.M)[1]
    assert eval(space, {"SearchSpace": bench_trial.SearchSpace}) == bench_trial.PRUNING_SPACE


@pytest.mark.parametrize("path", sorted((ROOT / "Exercise03").glob("**/*.ipynb")), ids=lambda p: p.name)
def test_student_notebooks_carry_no_benchmark_commands(path):
    text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
    assert "benchmarks/" not in text and "推定" not in text
