"""tools/notebooks.py on stand-alone notebooks (no solution), the README table, and a real ``refresh``.

Stand-alone notebooks (``Exercise01/01_01_tutorial.ipynb``...) are not generated from a solution:
``build`` must give them the canonical setup cell and strip their unchecked outputs in place.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("course_notebooks_tool_extra", REPO / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


nbtool = _load_tool()


def ran(cell, text: str):
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    cell.execution_count = 3
    cell.metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00"}
    return cell


def standalone(gpu: bool) -> dict:
    nb = new_notebook(cells=[
        new_markdown_cell("# 09_00 はじめに\n\n説明"),
        ran(new_code_cell("# an old, hand-written setup cell\nimport os"), "old\n"),
        ran(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(6 * 7)"), "42\n"),
        ran(new_code_cell("print('took', 0.37, 's')"), "took 0.37 s\n"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"state": {}}
    if gpu:
        nb.metadata["accelerator"] = "GPU"
    return json.loads(nbformat.writes(nb))


def solution() -> dict:
    nb = new_notebook(cells=[
        new_markdown_cell("# 09_01 課題"),
        new_code_cell("# setup"),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        ran(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(f())"), "1\n"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.loads(nbformat.writes(nb))


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A throw-away repository: a stand-alone GPU notebook, a solution, a README with the table markers."""
    folder = tmp_path / "Exercise09"
    (folder / "solutions").mkdir(parents=True)
    (folder / "09_00_intro.ipynb").write_text(nbtool.dump(standalone(gpu=True)), encoding="utf-8")
    (folder / "solutions" / "09_01_task.ipynb").write_text(nbtool.dump(solution()), encoding="utf-8")
    (tmp_path / "README.md").write_text("# course\n\n<!-- notebooks:start -->\nold\n<!-- notebooks:end -->\n\nend\n",
                                        encoding="utf-8")
    monkeypatch.setattr(nbtool, "ROOT", tmp_path)
    return tmp_path


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_build_gives_a_standalone_notebook_the_setup_cell_and_strips_it(tree):
    path = tree / "Exercise09" / "09_00_intro.ipynb"
    before = path.read_text(encoding="utf-8")
    assert nbtool.build(check=True) >= 1
    assert path.read_text(encoding="utf-8") == before  # --check never writes
    assert nbtool.main(["build"]) == 0
    nb = read(path)
    cells = nb["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code"]  # no cell added or lost
    assert nbtool.source(cells[1]) == nbtool.setup_source(nb) and "need_gpu=True" in nbtool.source(cells[1])
    assert "setup" in nbtool.tags(cells[1]) and cells[1]["outputs"] == []
    assert "".join(cells[2]["outputs"][0]["text"]) == "42\n" and cells[2]["execution_count"] == 3
    assert cells[3]["outputs"] == [] and cells[3]["execution_count"] is None
    assert all("execution" not in c.get("metadata", {}) for c in cells)
    assert "widgets" not in nb["metadata"]
    assert not (tree / "Exercise09" / "solutions" / "09_00_intro.ipynb").exists()  # no solution invented
    assert nbtool.build(check=True) == 0


def test_build_check_reports_a_standalone_notebook_with_stray_outputs(tree, capsys):
    nbtool.build(check=False)
    path = tree / "Exercise09" / "09_00_intro.ipynb"
    nb = read(path)
    nb["cells"][3]["outputs"] = [json.loads(json.dumps(new_output("stream", name="stdout", text="1.2 s\n")))]
    path.write_text(nbtool.dump(nb), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    capsys.readouterr()
    assert nbtool.main(["build", "--check"]) == 1
    out = capsys.readouterr().out
    assert f"out of date: {Path('Exercise09') / '09_00_intro.ipynb'}" in out
    assert "09_01_task" not in out  # only what is stale is reported
    assert path.read_text(encoding="utf-8") == before


def test_build_check_reports_a_hand_edited_setup_cell(tree, capsys):
    nbtool.build(check=False)
    path = tree / "Exercise09" / "09_00_intro.ipynb"
    path.write_text(path.read_text(encoding="utf-8").replace("need_gpu=True", "need_gpu=False"), encoding="utf-8")
    assert nbtool.build(check=True) == 1
    nbtool.build(check=False)
    assert "need_gpu=True" in nbtool.source(read(path)["cells"][1])


def test_jupyter_checkpoint_copies_are_left_alone(tree):
    checkpoints = tree / "Exercise09" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    copy = checkpoints / "09_00_intro-checkpoint.ipynb"
    text = nbtool.dump(standalone(gpu=False))
    copy.write_text(text, encoding="utf-8")
    nbtool.build(check=False)
    assert copy.read_text(encoding="utf-8") == text
    assert nbtool.build(check=True) == 0


def test_readme_table_lists_every_student_notebook_with_its_title_and_badge(tree):
    nbtool.build(check=False)
    text = (tree / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# course\n\n<!-- notebooks:start -->\n") and text.endswith("<!-- notebooks:end -->\n\nend\n")
    rows = [line for line in text.splitlines() if line.startswith("| [`")]
    assert len(rows) == 2  # the stand-alone notebook and the generated template, not the solution
    intro, task = rows
    assert "[`Exercise09/09_00_intro.ipynb`](Exercise09/09_00_intro.ipynb) | 09_00 はじめに |" in intro
    assert "| 09_01 課題 |" in task
    url = f"https://colab.research.google.com/github/{nbtool.COURSE_REPO}/blob/{nbtool.BRANCH}/Exercise09/09_00_intro.ipynb"
    assert f"]({url}) |" in intro
    assert "old" not in text


def test_refresh_runs_standalone_notebooks_and_solutions_but_not_templates(tree, monkeypatch):
    """A real ``refresh``: notebook kernels in test mode; checked outputs are the new ones."""
    for name in ("PYTHONPATH", "COURSE_DIR", "COURSE_TEST_MODE"):  # refresh sets these for its kernels
        monkeypatch.setenv(name, os.environ.get(name, ""))
    intro = tree / "Exercise09" / "09_00_intro.ipynb"
    nb = read(intro)
    nbtool.set_source(nb["cells"][2], "# NBVAL_CHECK_OUTPUT\nimport os\nprint(6 * 7, os.environ['COURSE_TEST_MODE'])")
    nb["cells"][2]["outputs"] = []
    intro.write_text(nbtool.dump(nb), encoding="utf-8")
    nbtool.build(check=False)
    assert nbtool.main(["refresh"]) == 0  # running the template would raise (its blank is not filled in)
    cells = read(intro)["cells"]
    assert "".join(cells[2]["outputs"][0]["text"]) == "42 1\n"  # ran, in test mode
    assert cells[3]["outputs"] == []  # ran too, but its output is not kept
    solved = read(tree / "Exercise09" / "solutions" / "09_01_task.ipynb")["cells"]
    assert "".join(solved[3]["outputs"][0]["text"]) == "1\n"
    assert nbtool.build(check=True) == 0
