"""tools/notebooks.py: templates from solutions, setup cells, stored outputs, and ``build --check``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("course_notebooks_tool", REPO / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses/annotations look the module up by name
    spec.loader.exec_module(module)
    return module


nbtool = _load_tool()


# --- blank_out ----------------------------------------------------------------------------------


def test_blank_out_without_template_keeps_indentation_and_raises():
    text = "\n".join([
        "class Net(nn.Module):",
        "    def forward(self, x):",
        "        ### BEGIN SOLUTION",
        "        x = self.conv(x)",
        "        return x",
        "        ### END SOLUTION",
        "",
        "print('after')",
    ])
    out = nbtool.blank_out(text).splitlines()
    assert out[:2] == ["class Net(nn.Module):", "    def forward(self, x):"]
    assert out[2].startswith("        # TODO")
    assert out[3].startswith("        raise NotImplementedError(")
    assert out[4:] == ["", "print('after')"]
    assert "self.conv" not in nbtool.blank_out(text)
    compile(nbtool.blank_out(text), "<template>", "exec")  # still valid Python


def test_blank_out_with_template_uncomments_its_lines():
    text = "\n".join([
        "def f():",
        "    ### BEGIN SOLUTION",
        "    answer = 42",
        "    ### TEMPLATE",
        "    # answer = None  # TODO: compute it",
        "    #     nested = 1",
        "    ### END SOLUTION",
        "    return answer",
    ])
    assert nbtool.blank_out(text).splitlines() == [
        "def f():",
        "    answer = None  # TODO: compute it",
        "        nested = 1",
        "    return answer",
    ]


def test_blank_out_top_level_template_and_several_blocks():
    text = "\n".join(["### BEGIN SOLUTION", "x = [1, 2]", "### TEMPLATE", "# x = None", "### END SOLUTION",
                      "y = 1", "### BEGIN SOLUTION", "z = 3", "### END SOLUTION"])
    out = nbtool.blank_out(text).splitlines()
    assert out[:2] == ["x = None", "y = 1"]
    assert out[2].startswith("# TODO") and out[3].startswith("raise NotImplementedError")


def test_blank_out_without_end_is_an_error():
    with pytest.raises(ValueError, match="END SOLUTION"):
        nbtool.blank_out("### BEGIN SOLUTION\nx = 1\n")


def test_blank_out_leaves_text_without_blocks_alone():
    text = "a = 1\n    b = 2"
    assert nbtool.blank_out(text) == text


# --- notebooks in memory ------------------------------------------------------------------------


def executed(cell, text: str):
    """``cell`` as if it had run and printed ``text``."""
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00"}
    return cell


def tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


def solution_notebook(gpu: bool = False) -> dict:
    cells = [
        new_markdown_cell("# 09_01 title"),
        new_code_cell("# placeholder"),
        executed(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint((2, 10))"), "(2, 10)\n"),
        executed(new_code_cell("print('timing', 1.23)"), "timing 1.23\n"),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        tagged(executed(new_code_cell("check.f(f)"), "✅ OK\n"), "check"),
        tagged(executed(new_code_cell("result = f()"), "1\n"), "needs-solution"),
        executed(new_code_cell("plain = 1"), "1\n"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"state": {}}
    if gpu:
        nb.metadata["accelerator"] = "GPU"
    return json.loads(nbformat.writes(nb))


def test_make_template_blanks_and_tags_cells():
    template = nbtool.make_template(solution_notebook())
    cells = template["cells"]
    sources = [nbtool.source(c) for c in cells]
    assert "return 1" not in sources[4] and "NotImplementedError" in sources[4]
    assert "raises-exception" in nbtool.tags(cells[4])  # the blank itself
    assert set(nbtool.tags(cells[5])) == {"check", "raises-exception"}
    assert set(nbtool.tags(cells[6])) == {"needs-solution", "raises-exception"}
    for i in (4, 5, 6):
        assert cells[i]["outputs"] == [] and cells[i]["execution_count"] is None
    for i in (2, 3, 7):  # untouched: no tag, outputs kept (clean() decides about them)
        assert "raises-exception" not in nbtool.tags(cells[i])
        assert cells[i]["outputs"]


def test_make_template_does_not_change_the_solution():
    solution = solution_notebook()
    before = json.dumps(solution, sort_keys=True)
    nbtool.make_template(solution)
    assert json.dumps(solution, sort_keys=True) == before


def test_make_template_refuses_checked_outputs_in_failing_cells():
    solution = solution_notebook()
    nbtool.set_source(solution["cells"][5], "# NBVAL_CHECK_OUTPUT\ncheck.f(f)")
    with pytest.raises(ValueError, match="cannot check outputs"):
        nbtool.make_template(solution)


def test_clean_keeps_only_checked_outputs():
    cleaned = nbtool.clean(solution_notebook())
    cells = cleaned["cells"]
    assert "".join(cells[2]["outputs"][0]["text"]) == "(2, 10)\n" and cells[2]["execution_count"] == 7
    for i in (3, 5, 6, 7):
        assert cells[i]["outputs"] == [] and cells[i]["execution_count"] is None
    assert all("execution" not in c.get("metadata", {}) for c in cells)
    assert "widgets" not in cleaned["metadata"]
    assert nbtool.clean(cleaned) == cleaned  # idempotent


@pytest.mark.parametrize("gpu", [False, True])
def test_with_setup_replaces_the_first_code_cell(gpu):
    nb = nbtool.with_setup(solution_notebook(gpu=gpu))
    first = nb["cells"][1]
    assert nbtool.source(first) == nbtool.setup_source(nb)
    assert "setup" in nbtool.tags(first)
    assert f"need_gpu={gpu}" in nbtool.source(first)
    assert nb["cells"][0]["cell_type"] == "markdown"  # markdown before it is kept
    compile(nbtool.source(first), "<setup>", "exec")


# --- build on a temporary tree -------------------------------------------------------------------


def course_files(root: Path) -> None:
    """What build reads besides the notebooks: the settings (pyproject.toml) and the package's version."""
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "MyModules").symlink_to(REPO / "MyModules")  # the notebooks' setup cells find it next to them


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A throw-away repository with one solution notebook; ``nbtool.ROOT`` points at it."""
    solutions = tmp_path / "Exercise09" / "solutions"
    solutions.mkdir(parents=True)
    (solutions / "09_01_x.ipynb").write_text(nbtool.dump(solution_notebook()), encoding="utf-8")
    course_files(tmp_path)
    monkeypatch.setattr(nbtool, "ROOT", tmp_path)
    return tmp_path


def test_build_writes_templates_then_check_is_clean(tree, capsys):
    template = tree / "Exercise09" / "09_01_x.ipynb"
    assert nbtool.build(check=True) > 0  # nothing generated yet
    assert not template.exists()  # --check never writes
    nbtool.main(["build"])
    assert template.exists()
    assert nbtool.build(check=True) == 0
    assert nbtool.main(["build", "--check"]) == 0
    nb = json.loads(template.read_text(encoding="utf-8"))
    assert "NotImplementedError" in nbtool.source(nb["cells"][4])
    assert "setup" in nbtool.tags(nb["cells"][1])


def test_build_check_reports_a_stale_template(tree, capsys):
    nbtool.build(check=False)
    solution = tree / "Exercise09" / "solutions" / "09_01_x.ipynb"
    template = tree / "Exercise09" / "09_01_x.ipynb"
    before = template.read_text(encoding="utf-8")
    nb = json.loads(solution.read_text(encoding="utf-8"))
    nb["cells"].append(json.loads(nbformat.writes(new_notebook(cells=[new_markdown_cell("new")])))["cells"][0])
    solution.write_text(nbtool.dump(nb), encoding="utf-8")
    capsys.readouterr()
    assert nbtool.main(["build", "--check"]) == 1
    out = capsys.readouterr().out
    assert "out of date: " + str(Path("Exercise09") / "09_01_x.ipynb") in out
    assert template.read_text(encoding="utf-8") == before  # reported, not rewritten


def test_build_check_reports_a_hand_edited_template(tree, capsys):
    nbtool.build(check=False)
    template = tree / "Exercise09" / "09_01_x.ipynb"
    template.write_text(template.read_text(encoding="utf-8").replace("NotImplementedError", "pass  #"),
                        encoding="utf-8")
    assert nbtool.build(check=True) == 1
    assert "09_01_x.ipynb" in capsys.readouterr().out


def test_build_strips_unchecked_outputs_of_a_solution(tree):
    nbtool.build(check=False)
    solution = json.loads((tree / "Exercise09" / "solutions" / "09_01_x.ipynb").read_text(encoding="utf-8"))
    assert solution["cells"][2]["outputs"]  # NBVAL_CHECK_OUTPUT kept
    assert solution["cells"][3]["outputs"] == []  # timing dropped


# --- the committed notebooks ----------------------------------------------------------------------


def committed_solutions() -> list[Path]:
    return sorted((REPO).glob("Exercise*/solutions/*.ipynb"))


@pytest.mark.parametrize("solution", committed_solutions(), ids=lambda p: p.name)
def test_committed_template_is_what_the_generator_makes(solution):
    """The generator reproduces each committed template from its solution (as CI's ``build --check``)."""
    expected_solution = nbtool.dump(nbtool.clean(nbtool.with_setup(nbtool.load(solution))))
    assert solution.read_text(encoding="utf-8") == expected_solution, \
        f"{solution.relative_to(REPO)} is not clean: run python tools/notebooks.py build"
    expected = nbtool.dump(nbtool.clean(nbtool.make_template(json.loads(expected_solution))))
    template = nbtool.template_path(solution)
    assert template.read_text(encoding="utf-8") == expected, \
        f"{template.relative_to(REPO)} is out of date: run python tools/notebooks.py build"
