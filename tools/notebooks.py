"""Maintain the course notebooks: setup cell, student templates, stored outputs, README badges.

    python tools/notebooks.py build            # templates from solutions, setup cells, badges, strip outputs
    python tools/notebooks.py build --check    # CI: exit 1 if anything committed is out of date
    python tools/notebooks.py refresh [NB...]  # run notebooks in test mode, keep checked outputs, then build

One source of truth per exercise: ``ExerciseNN/solutions/<name>.ipynb`` is the instructor's
solution. The parts students write sit between ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
an optional ``### TEMPLATE`` line inside the block starts what the template shows instead (each
line with its leading ``# `` removed). Without it the block becomes a TODO comment and
``raise NotImplementedError``. The template ``ExerciseNN/<name>.ipynb`` is generated from it.

Cell tags in a solution notebook:

* ``check``          a self-check cell (``MyModules.checks``): must raise CheckFailed in the template
* ``needs-solution`` a cell that cannot work before the blanks are filled in (e.g. training the
                     student's model); in the template it may fail

In git a notebook keeps only the outputs of cells whose source has ``# NBVAL_CHECK_OUTPUT``
(deterministic: shapes, parameter counts, quantiser values); nbval compares those.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where students get MyModules from in Colab when it is not on their Drive; also the badges' repo.
COURSE_REPO = "your-lab/pytorch-course"
BRANCH = "main"

BEGIN, TEMPLATE, END = "### BEGIN SOLUTION", "### TEMPLATE", "### END SOLUTION"
CHECK_TAG, NEEDS_TAG, RAISES_TAG = "check", "needs-solution", "raises-exception"
CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
SETUP_TAG = "setup"

SETUP_CELL = '''\
# セットアップ: 最初に1回実行してください (何度実行しても大丈夫です)
import importlib
import sys
from pathlib import Path


def pip_install(*args):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("pip install に失敗しました (ネット接続を確認してください):\\n" + done.stderr[-1500:])


try:
    import MyModules  # noqa: F401  (pip install 済み、またはリポジトリの中で開いたとき)
except ModuleNotFoundError:
    here = [Path.cwd(), *Path.cwd().parents]
    if "google.colab" in sys.modules:
        from google.colab import drive

        drive.mount("/content/drive")
        here.insert(0, Path("/content/drive/MyDrive/pytorch-course"))  # Drive に置いた MyModules
    found = [p for p in here if (p / "MyModules" / "__init__.py").is_file()]
    if found:
        sys.path.insert(0, str(found[0]))
        if "google.colab" in sys.modules:  # Colab に入っていないものだけ入れる (torch はそのまま)
            pip_install("torchinfo>=1.8", "optuna>=3.6,<6")
    else:  # どこにもなければ GitHub からインストール (Colab の torch はそのまま使います)
        try:
            pip_install("git+https://github.com/{repo}")
        except RuntimeError as e:
            raise RuntimeError(f"MyModules を入手できませんでした。Drive の MyDrive/pytorch-course/MyModules に "
                               f"置くか、講師に連絡してください。\\n{{e}}") from None
        importlib.invalidate_caches()
from MyModules import env  # noqa: E402

course = env.setup(need_gpu={need_gpu})
device = course.device'''


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def needs_gpu(nb: dict) -> bool:
    return nb.get("metadata", {}).get("accelerator") == "GPU"


def setup_source(nb: dict) -> str:
    return SETUP_CELL.format(repo=COURSE_REPO, need_gpu=needs_gpu(nb))


def has_blank(cell: dict) -> bool:
    return cell["cell_type"] == "code" and BEGIN in source(cell)


def blank_out(text: str) -> str:
    """Replace every solution block of a cell's source by its template text (or a TODO)."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        i += 1
        template: list[str] | None = None
        while i < len(lines) and lines[i].strip() != END:
            if lines[i].strip() == TEMPLATE:
                template = []
            elif template is not None:
                stripped = lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip()
                template.append(indent + (stripped[2:] if stripped.startswith("# ") else stripped.lstrip("#")))
            i += 1
        if i == len(lines):
            raise ValueError(f"{BEGIN} without {END}")
        i += 1  # skip END
        if template is None:
            template = [f"{indent}# TODO: ここにコードを書いてください",
                        f'{indent}raise NotImplementedError("TODO: この部分を実装してください")']
        out.extend(template)
    return "\n".join(out)


def is_checked(cell: dict) -> bool:
    return cell["cell_type"] == "code" and CHECK_MARKER in source(cell)


def clean(nb: dict) -> dict:
    """Drop outputs nbval does not check, execution counts with them, and volatile metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        if not is_checked(cell) or not cell.get("outputs"):
            cell["outputs"] = []
            cell["execution_count"] = None
    nb["metadata"].pop("widgets", None)
    return nb


def with_setup(nb: dict) -> dict:
    """Make the first code cell the canonical setup cell."""
    nb = copy.deepcopy(nb)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not code:
        raise ValueError("notebook has no code cell")
    first = code[0]
    set_source(first, setup_source(nb))
    first.setdefault("metadata", {})["tags"] = sorted(set(tags(first)) | {SETUP_TAG})
    first["outputs"], first["execution_count"] = [], None
    return nb


def make_template(solution: dict) -> dict:
    """The student's notebook: blanks instead of solutions; failing cells tagged, no outputs there."""
    nb = copy.deepcopy(solution)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell_tags = set(tags(cell))
        blank = has_blank(cell)
        if blank:
            set_source(cell, blank_out(source(cell)))
        if blank or cell_tags & {CHECK_TAG, NEEDS_TAG}:
            if is_checked(cell):
                raise ValueError(f"a cell with a blank or tagged {sorted(cell_tags)} cannot check outputs:\n"
                                 + source(cell)[:200])
            cell.setdefault("metadata", {})["tags"] = sorted(cell_tags | {RAISES_TAG})
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def solutions() -> list[Path]:
    return sorted(ROOT.glob("Exercise*/solutions/*.ipynb"))


def template_path(solution: Path) -> Path:
    return solution.parent.parent / solution.name


def all_notebooks() -> list[Path]:
    return sorted(p for p in ROOT.glob("Exercise*/**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def student_notebooks() -> list[Path]:
    return sorted(p for p in ROOT.glob("Exercise*/*.ipynb"))


def badge_table(notebooks: dict[Path, dict] | None = None) -> str:
    """The README's table of student notebooks (``notebooks``: path -> content; default: those on disk)."""
    if notebooks is None:
        notebooks = {path: load(path) for path in student_notebooks()}
    rows = ["| ノートブック | 内容 | Colab |", "| --- | --- | --- |"]
    for path in sorted(notebooks):
        nb = notebooks[path]
        title = next((source(c).splitlines()[0].lstrip("# ").strip() for c in nb["cells"]
                      if c["cell_type"] == "markdown" and source(c).strip()), path.stem)
        rel = path.relative_to(ROOT).as_posix()
        url = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{BRANCH}/{rel}"
        badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
        rows.append(f"| [`{rel}`]({rel}) | {title} | {badge} |")
    return "\n".join(rows)


def update_readme(text: str, notebooks: dict[Path, dict] | None = None) -> str:
    start, end = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
    if start not in text:
        return text
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{badge_table(notebooks)}\n{end}{tail}"


def build(check: bool) -> int:
    """Write (or with ``check``, compare) every generated file; returns the number out of date."""
    expected: dict[Path, str] = {}
    for path in all_notebooks():
        if path.parent.name == "solutions" or not (path.parent / "solutions" / path.name).exists():
            expected[path] = dump(clean(with_setup(load(path))))
    for sol in solutions():
        expected[template_path(sol)] = dump(clean(make_template(json.loads(expected[sol]))))
    readme = ROOT / "README.md"
    if readme.exists():
        # List the templates this build writes too (a new solution's template is not on disk yet).
        students = {p: load(p) for p in student_notebooks()}
        students.update({p: json.loads(text) for p, text in expected.items() if p.parent.parent == ROOT})
        expected[readme] = update_readme(readme.read_text(encoding="utf-8"), students)
    stale = [p for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    for path in stale:
        rel = path.relative_to(ROOT)
        if check:
            print(f"out of date: {rel} (run: python tools/notebooks.py build)")
        else:
            path.write_text(expected[path], encoding="utf-8")
            print(f"wrote {rel}")
    return len(stale) if check else 0


def refresh(paths: list[Path], timeout: int = 600) -> None:
    """Execute notebooks in test mode and store their outputs (build then keeps the checked ones)."""
    import nbformat
    from nbclient import NotebookClient

    env = dict(os.environ, COURSE_TEST_MODE="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.setdefault("COURSE_DIR", str(ROOT / "course-data"))
    os.environ.update(env)
    for path in paths:
        path.write_text(dump(with_setup(load(path))), encoding="utf-8")
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
        nbformat.write(nb, path)
        print(f"executed {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="templates, setup cells, badges, strip outputs")
    b.add_argument("--check", action="store_true", help="only report what is out of date (exit 1)")
    r = sub.add_parser("refresh", help="execute notebooks in test mode, then build")
    r.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if args.command == "refresh":
        paths = [p.resolve() for p in args.paths] or [p for p in all_notebooks()
                                                        if not (p.parent / "solutions" / p.name).exists()]
        refresh(paths)
        return build(check=False)
    return 1 if build(args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
