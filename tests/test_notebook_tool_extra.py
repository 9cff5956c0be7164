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


def course_files(root: Path) -> None:
    """What build reads besides the notebooks: the settings (pyproject.toml) and the package's version."""
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "MyModules").symlink_to(REPO / "MyModules")  # the notebooks' setup cells find it next to them


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A throw-away repository: a stand-alone GPU notebook, a solution, a README with the table markers."""
    folder = tmp_path / "Exercise09"
    (folder / "solutions").mkdir(parents=True)
    (folder / "09_00_intro.ipynb").write_text(nbtool.dump(standalone(gpu=True)), encoding="utf-8")
    (folder / "solutions" / "09_01_task.ipynb").write_text(nbtool.dump(solution()), encoding="utf-8")
    (tmp_path / "README.md").write_text("# course\n\n<!-- notebooks:start -->\nold\n<!-- notebooks:end -->\n\nend\n",
                                        encoding="utf-8")
    course_files(tmp_path)
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
    # no cell lost; the finish cell (Drive flushed, what was saved) added at the end
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code", "code"]
    assert nbtool.source(cells[4]) == nbtool.FINISH_CELL and nbtool.tags(cells[4]) == ["finish"]
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
    settings = nbtool.load_settings()
    url = f"https://colab.research.google.com/github/{settings.repository}/blob/{settings.branch}/Exercise09/09_00_intro.ipynb"
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


# --- the course settings: one place for the repository, the version and the dependencies ------------


def set_course(root: Path, repository: str, branch: str = "main") -> None:
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    settings = nbtool.load_settings(root)
    text = text.replace(f'repository = "{settings.repository}"', f'repository = "{repository}"')
    path.write_text(text.replace(f'branch = "{settings.branch}"', f'branch = "{branch}"'), encoding="utf-8")


def test_the_setup_cell_is_written_from_pyproject_and_the_package_version(tree):
    nbtool.build(check=False)
    setup = nbtool.source(read(tree / "Exercise09" / "09_00_intro.ipynb")["cells"][1])
    settings = nbtool.load_settings(tree)
    assert f'"repository": "{settings.repository}"' in setup and f'"version": "{settings.version}"' in setup
    assert '"published": False' in setup  # the placeholder: the cell says so instead of installing
    for requirement in settings.requires:
        assert f'"{requirement}"' in setup
    assert not [r for r in settings.requires if r.startswith(("torch>", "torchvision>"))]  # Colab's torch stays
    assert "optuna>=4.0" in setup and "matplotlib-fontja" in setup  # the ones Colab lacks, as pyproject says
    compile(setup, "<setup>", "exec")


def test_build_check_fails_when_pyproject_changes_the_install_list(tree, capsys):
    nbtool.build(check=False)
    path = tree / "pyproject.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('"optuna>=4.0,<6"', '"optuna>=4.2,<6"'), encoding="utf-8")
    capsys.readouterr()
    assert nbtool.main(["build", "--check"]) == 1
    assert "09_00_intro.ipynb" in capsys.readouterr().out
    nbtool.build(check=False)
    assert '"optuna>=4.2,<6"' in nbtool.source(read(tree / "Exercise09" / "09_00_intro.ipynb")["cells"][1])


def test_publishing_rewrites_every_course_link_and_leaves_other_repositories_alone(tree, capsys):
    docs = tree / "docs"
    docs.mkdir()
    guide = docs / "09_guide.md"
    guide.write_text("# guide\n\n<!-- notebooks:start -->\n<!-- notebooks:end -->\n\n"
                     "`git clone https://github.com/your-lab/pytorch-course.git` and "
                     "[torchinfo](https://github.com/TylerYep/torchinfo), "
                     "`pip install git+https://github.com/your-lab/pytorch-course@main`, "
                     "[file](https://github.com/your-lab/pytorch-course/blob/main/docs/09_guide.md).\n",
                     encoding="utf-8")
    nbtool.build(check=False)
    assert nbtool.build(check=True) == 0
    set_course(tree, "tohoku-lab/dl-course", "2027")
    capsys.readouterr()
    assert nbtool.main(["build", "--check"]) == 1  # every generated file disagrees with the new setting
    out = capsys.readouterr().out
    for name in ("README.md", "09_guide.md", "09_00_intro.ipynb", "09_01_task.ipynb"):
        assert name in out
    nbtool.build(check=False)
    text = guide.read_text(encoding="utf-8")
    assert "https://github.com/tohoku-lab/dl-course.git" in text
    assert "git+https://github.com/tohoku-lab/dl-course@2027" in text
    assert "https://github.com/tohoku-lab/dl-course/blob/2027/docs/09_guide.md" in text
    assert "https://github.com/TylerYep/torchinfo" in text and "your-lab" not in text
    badge = "https://colab.research.google.com/github/tohoku-lab/dl-course/blob/2027/Exercise09/09_00_intro.ipynb"
    assert badge in text and "(../Exercise09/09_00_intro.ipynb)" in text  # the session's notebooks, relative
    assert badge in (tree / "README.md").read_text(encoding="utf-8")
    setup = nbtool.source(read(tree / "Exercise09" / "09_00_intro.ipynb")["cells"][1])
    assert '"repository": "tohoku-lab/dl-course"' in setup and '"published": True' in setup
    assert '"branch": "2027"' in setup
    assert nbtool.build(check=True) == 0


def test_a_notebook_that_trains_on_the_gpu_opens_on_a_t4_and_others_on_the_cpu(tree):
    nbtool.build(check=False)
    gpu = read(tree / "Exercise09" / "09_00_intro.ipynb")["metadata"]
    cpu = read(tree / "Exercise09" / "09_01_task.ipynb")["metadata"]
    assert gpu["accelerator"] == "GPU" and gpu["colab"]["gpuType"] == "T4"
    assert "accelerator" not in cpu and "gpuType" not in cpu["colab"]


def test_the_setup_cell_is_a_colab_form_and_the_finish_cell_is_added_once(tree):
    nbtool.build(check=False)
    nbtool.build(check=False)
    cells = read(tree / "Exercise09" / "09_00_intro.ipynb")["cells"]
    assert cells[1]["metadata"]["cellView"] == "form" and nbtool.source(cells[1]).startswith("# @title ")
    assert [nbtool.tags(c) for c in cells].count(["finish"]) == 1


@pytest.mark.parametrize("bad", ["", "no-slash", "a/b/c", "own er/name"])
def test_a_malformed_repository_setting_is_refused_with_its_value(tree, bad):
    set_course(tree, bad)
    with pytest.raises(SystemExit, match="OWNER/NAME"):
        nbtool.load_settings(tree)
