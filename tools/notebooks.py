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
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The repository name every file is written with until an instructor publishes the course
#: (README: "Publishing the course"); while it is set, the setup cell says so instead of installing.
PLACEHOLDER_REPOSITORY = "your-lab/pytorch-course"
#: Distributions the setup cell never installs or upgrades: Colab ships its own build (CUDA), and a
#: reinstall would download gigabytes and break the runtime's other packages.
NEVER_INSTALLED = ("torch", "torchvision")

BEGIN, TEMPLATE, END = "### BEGIN SOLUTION", "### TEMPLATE", "### END SOLUTION"
CHECK_TAG, NEEDS_TAG, RAISES_TAG = "check", "needs-solution", "raises-exception"
CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
SETUP_TAG, FINISH_TAG = "setup", "finish"


@dataclass(frozen=True)
class CourseSettings:
    """What the generated files are written from: pyproject.toml and ``MyModules.__version__``."""

    repository: str  # GitHub "OWNER/NAME" students open the notebooks from ([tool.course] repository)
    branch: str  # the branch the badges and the install line point at ([tool.course] branch)
    version: str  # MyModules.__version__: the version the notebooks are built for
    requires: tuple[str, ...]  # [project] dependencies the setup cell checks (all but NEVER_INSTALLED)
    external: tuple[str, ...] = ()  # other GitHub repositories the course text links to

    @property
    def published(self) -> bool:
        return self.repository != PLACEHOLDER_REPOSITORY


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _requirement_name(text: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", text.strip(), maxsplit=1)[0].lower().replace("_", "-")


def load_settings(root: Path | None = None) -> CourseSettings:
    """Read the course settings of the tree at ``root`` (default: this repository)."""
    root = ROOT if root is None else root
    pyproject = _toml(root / "pyproject.toml")
    course = pyproject.get("tool", {}).get("course", {})
    repository, branch = course.get("repository", ""), course.get("branch", "")
    if not re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repository) or not branch:
        raise SystemExit(f"pyproject.toml: [tool.course] needs repository = \"OWNER/NAME\" and a branch, "
                         f"got repository={repository!r}, branch={branch!r}")
    init = (root / "MyModules" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if version is None:
        raise SystemExit("MyModules/__init__.py must set __version__ = \"X.Y.Z\" (the one place of the version)")
    requires = tuple(r for r in pyproject["project"]["dependencies"] if _requirement_name(r) not in NEVER_INSTALLED)
    return CourseSettings(repository, branch, version.group(1), requires, tuple(course.get("external", ())))


SETUP_CELL = """\
# @title セットアップ (最初に 1 回実行してください。何度実行しても大丈夫です)
# tools/notebooks.py build が pyproject.toml から書くセルです。手で直さず、直すときは build してください。
import os
import sys
from pathlib import Path

COURSE = {{
    "repository": "{repository}",  # この講座の GitHub (pyproject.toml の [tool.course])
    "published": {published},  # False: まだ仮の名前 (MyModules は Drive に置いたものを使う)
    "branch": "{branch}",
    "version": "{version}",  # このノートブックが使う MyModules の版
    "requires": {requires},  # Colab に無ければ入れるもの (torch は Colab のもの)
}}
IN_COLAB = "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules
if IN_COLAB:  # Drive に __pycache__ を書かない (ここから起動するプログラムも)
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
DRIVE = Path(os.environ.get("COURSE_COLAB_CONTENT", "/content")) / "drive"  # Colab の Drive のマウント先
ON_DRIVE = DRIVE / "MyDrive" / "pytorch-course"  # Drive の講座のフォルダ (docs/01 の 1.7 節)
REPO_URL = f"https://github.com/{{COURSE['repository']}}"


class SetupStopped(Exception):
    \"\"\"Setup cannot go on: show one sentence saying what to do, no traceback.\"\"\"

    def _render_traceback_(self):
        return [f"⛔ {{self}}"]


def mount_drive():
    from google.colab import drive

    try:
        os.statvfs(DRIVE / "MyDrive")  # stat は切れたあともしばらくキャッシュから答えるので statvfs で確かめる
        return  # マウント済み
    except FileNotFoundError:
        remount = False
    except OSError:  # 切れたマウント: "Transport endpoint is not connected"
        print("Google Drive との接続が切れていたので、マウントし直します")
        remount = True
    try:
        drive.mount(str(DRIVE), force_remount=remount)
        os.statvfs(DRIVE / "MyDrive")
    except Exception:
        raise SetupStopped("Google Drive をマウントできませんでした。メニュー「ランタイム」→「ランタイムを接続解除して削除」を"
                           "選んでから、このセルをもう一度実行し、Google アカウントを選んで許可してください。") from None


def pip_install(args, what):
    import subprocess
    import time

    start = time.monotonic()
    print(f"インストールします: {{what}} (1 分ほどかかることがあります)", flush=True)
    pip = subprocess.Popen([sys.executable, "-m", "pip", "install", "--progress-bar", "off", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in pip.stdout:
        lines.append(line)
        if line.startswith(("Collecting", "Installing collected", "Successfully installed")):
            print(f"  {{time.monotonic() - start:3.0f}} 秒: {{line.strip()[:110]}}", flush=True)
    if pip.wait() != 0:
        return "".join(lines[-15:])
    print(f"インストールが終わりました ({{time.monotonic() - start:.0f}} 秒)")
    return None


def use_folder(place):
    sys.path.insert(0, str(place))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(place), *filter(None, [os.environ.get("PYTHONPATH")])])


def find_mymodules():
    import importlib.util
    import shutil

    if IN_COLAB and os.path.isfile(ON_DRIVE / "MyModules" / "__init__.py"):
        # Drive の MyModules を Colab のディスクに写して使う: Python は import のたびに sys.path のフォルダを
        # 調べるので、Drive のフォルダが入っていると、Drive が切れたあと全部の import が失敗する
        local = DRIVE.parent / ".mymodules"
        shutil.rmtree(local / "MyModules", ignore_errors=True)
        shutil.copytree(ON_DRIVE / "MyModules", local / "MyModules", ignore=shutil.ignore_patterns("__pycache__"))
        return use_folder(local)
    for place in [Path.cwd(), *Path.cwd().parents]:  # このノートブックのあるリポジトリ (ローカル)
        if os.path.isfile(place / "MyModules" / "__init__.py"):
            return use_folder(place)
    if importlib.util.find_spec("MyModules") is not None:
        return  # pip install 済み
    if not COURSE["published"]:
        raise SetupStopped(f"この講座はまだ GitHub で公開されていない (仮の名前 {{COURSE['repository']}} のまま) ので、"
                           f"講師から受け取った MyModules フォルダを Drive の {{ON_DRIVE}} にコピーしてから、このセルを"
                           "もう一度実行してください (docs/01 の 1.7 節)。")
    failed = pip_install([f"git+{{REPO_URL}}@{{COURSE['branch']}}"], f"MyModules ({{REPO_URL}})")
    if failed:
        raise SetupStopped(f"MyModules を {{REPO_URL}} からインストールできませんでした。ブラウザでそのページが開けるか確かめるか、"
                           f"MyModules フォルダを Drive の {{ON_DRIVE}} にコピーしてから、このセルをもう一度実行してください。\\n"
                           + failed)
    importlib.invalidate_caches()


def install_missing():
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ModuleNotFoundError:
        from pip._vendor.packaging.requirements import Requirement
    missing, upgraded = [], set()
    for text in COURSE["requires"]:
        need = Requirement(text)
        try:
            have = metadata.version(need.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if not need.specifier.contains(have, prereleases=True):
            missing.append(text)
            upgraded.add(need.name.lower().replace("_", "-"))
    if not missing:
        return
    if not IN_COLAB:
        print("足りないパッケージがあります: " + ", ".join(missing)
              + "\\n→ リポジトリのフォルダで python -m pip install -e . を実行してください")
        return
    failed = pip_install(missing, ", ".join(missing))
    if failed:
        raise SetupStopped("パッケージをインストールできませんでした。このセルをもう一度実行してください。\\n" + failed)
    loaded = {{dist.lower().replace("_", "-") for name, dists in metadata.packages_distributions().items()
              if name in sys.modules for dist in dists}}
    if upgraded & loaded:
        raise SetupStopped(f"新しい版に入れ替えた {{', '.join(sorted(upgraded & loaded))}} を読み込み直すため、メニュー"
                           "「ランタイム」→「セッションを再起動」を選んでから、このセルをもう一度実行してください。")


def check_version():
    import MyModules

    have, need = MyModules.__version__, COURSE["version"]
    if have == need:
        return
    where = Path(MyModules.__file__).parent
    older = [int(p) for p in have.split(".")] < [int(p) for p in need.split(".")]
    if not older:
        print(f"⚠ このノートブックは MyModules {{need}} 用です ({{where}} は新しい {{have}})。動かないセルがあれば、"
              f"ノートブックを {{REPO_URL}} から開き直してください。")
        return
    if where.parent.name == ".mymodules":  # Drive のもの (の写し)
        how = (f"Drive の {{ON_DRIVE / 'MyModules'}} を新しい MyModules フォルダ ({{REPO_URL}}) で置き換え、メニュー「ランタイム」→"
               "「セッションを再起動」を選んでから")
    else:
        how = (f"新しいセルで %pip install --force-reinstall --no-deps git+{{REPO_URL}}@{{COURSE['branch']}} を実行し、"
               "メニュー「ランタイム」→「セッションを再起動」を選んでから")
    raise SetupStopped(f"MyModules {{have}} は、このノートブックが使う {{need}} より古い版です。{{how}}、"
                       "このセルをもう一度実行してください。")


if IN_COLAB:
    mount_drive()
find_mymodules()
install_missing()
check_version()

from MyModules import env  # noqa: E402

course = env.setup(need_gpu={need_gpu})
device = course.device"""

FINISH_CELL = """\
# 終わり: ここまでに Drive に書いたもの (データ、学習の結果、study) を確実に保存します (Colab では必ず実行)
env.finish(course)"""

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


def _python_list(items: tuple[str, ...], indent: str = "        ") -> str:
    """``items`` as a Python list literal, wrapped below 100 columns."""
    lines, line = [], ""
    for item in (json.dumps(i, ensure_ascii=False) + "," for i in items):
        if line and len(indent) + len(line) + 1 + len(item) > 96:
            lines.append(indent + line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(indent + line)
    return "[\n" + "\n".join(lines) + "\n    ]"


def setup_source(nb: dict, settings: CourseSettings | None = None) -> str:
    s = settings or load_settings()
    return SETUP_CELL.format(repository=s.repository, published=s.published, branch=s.branch, version=s.version,
                             requires=_python_list(s.requires), need_gpu=needs_gpu(nb))


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


def with_setup(nb: dict, settings: CourseSettings | None = None) -> dict:
    """The canonical first and last code cells (setup, finish), Colab metadata, and course links."""
    s = settings or load_settings()
    nb = copy.deepcopy(nb)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not code:
        raise ValueError("notebook has no code cell")
    first = code[0]
    set_source(first, setup_source(nb, s))
    first.setdefault("metadata", {})["tags"] = sorted(set(tags(first)) | {SETUP_TAG})
    first["metadata"]["cellView"] = "form"  # Colab shows the title only; "Show code" opens it
    first["outputs"], first["execution_count"] = [], None
    last = code[-1] if len(code) > 1 and FINISH_TAG in tags(code[-1]) else None
    if last is None:
        last = {"cell_type": "code", "execution_count": None, "metadata": {"tags": [FINISH_TAG]}, "outputs": [],
                "source": []}
        if "id" in first:
            last["id"] = "finish"
        nb["cells"].append(last)
    set_source(last, FINISH_CELL)
    last["outputs"], last["execution_count"] = [], None
    for cell in nb["cells"]:
        set_source(cell, rewrite_links(source(cell), s))
    _colab_metadata(nb)
    return nb


def _colab_metadata(nb: dict) -> None:
    """A notebook that trains on the GPU opens in Colab with a T4 runtime (free tier), others on the CPU."""
    meta = nb.setdefault("metadata", {})
    colab = meta.setdefault("colab", {})
    colab.setdefault("provenance", [])
    if needs_gpu(nb):
        colab["gpuType"] = "T4"
    else:
        colab.pop("gpuType", None)


# A link into a GitHub repository: github.com/OWNER/NAME[...] or Colab's colab.research.google.com/github/OWNER/NAME.
_GITHUB_LINK = re.compile(
    r"(?P<host>colab\.research\.google\.com/github/|github\.com/)(?P<repo>[A-Za-z0-9-]+/[A-Za-z0-9_.-]*[A-Za-z0-9_-])"
    r"(?P<git>\.git)?(?P<ref>/(?:blob|tree)/[A-Za-z0-9_.-]+|@[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")


def rewrite_links(text: str, settings: CourseSettings) -> str:
    """Point every link to the course's repository at ``settings`` (repository and branch).

    Every GitHub link is a link to the course unless its repository is in ``[tool.course] external``;
    Colab links (``colab.research.google.com/github/...``) always are.
    """
    def course_link(match: re.Match) -> str:
        host, repo, git, ref = match["host"], match["repo"], match["git"] or "", match["ref"] or ""
        if repo.endswith(".git"):  # the name's characters include "." (a-b.c/d.e is a valid name)
            repo, git = repo[:-4], ".git"
        if host == "github.com/" and repo in settings.external:
            return match[0]
        if ref.startswith("/"):
            ref = ref[: ref.index("/", 1) + 1] + settings.branch
        elif ref:
            ref = "@" + settings.branch
        return f"{host}{settings.repository}{git}{ref}"

    return _GITHUB_LINK.sub(course_link, text)


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


def badge_table(notebooks: dict[Path, dict], settings: CourseSettings, base: str = "") -> str:
    """A table of student notebooks with their Colab badges (``base``: the path from the page to ROOT)."""
    rows = ["| ノートブック | 内容 | Colab |", "| --- | --- | --- |"]
    for path in sorted(notebooks):
        nb = notebooks[path]
        title = next((source(c).splitlines()[0].lstrip("# ").strip() for c in nb["cells"]
                      if c["cell_type"] == "markdown" and source(c).strip()), path.stem)
        rel = path.relative_to(ROOT).as_posix()
        url = f"https://colab.research.google.com/github/{settings.repository}/blob/{settings.branch}/{rel}"
        badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
        rows.append(f"| [`{rel}`]({base}{rel}) | {title} | {badge} |")
    return "\n".join(rows)


TABLE_START, TABLE_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


def update_page(text: str, notebooks: dict[Path, dict], settings: CourseSettings, base: str = "") -> str:
    """A Markdown page with its notebook table (between the markers, if it has them) and links regenerated."""
    if TABLE_START in text:
        head, rest = text.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        text = f"{head}{TABLE_START}\n{badge_table(notebooks, settings, base)}\n{TABLE_END}{tail}"
    return rewrite_links(text, settings)


def update_readme(text: str, notebooks: dict[Path, dict] | None = None,
                  settings: CourseSettings | None = None) -> str:
    if notebooks is None:
        notebooks = {path: load(path) for path in student_notebooks()}
    return update_page(text, notebooks, settings or load_settings())


def session_of(page: Path) -> str | None:
    """``docs/03_optuna.md`` -> ``"03"``: the session whose notebooks a guide's table lists."""
    match = re.match(r"(\d\d)_", page.name)
    return match.group(1) if match else None


def build(check: bool) -> int:
    """Write (or with ``check``, compare) every generated file; returns the number out of date."""
    settings = load_settings()
    expected: dict[Path, str] = {}
    for path in all_notebooks():
        if path.parent.name == "solutions" or not (path.parent / "solutions" / path.name).exists():
            expected[path] = dump(clean(with_setup(load(path), settings)))
    for sol in solutions():
        expected[template_path(sol)] = dump(clean(make_template(json.loads(expected[sol]))))
    # List the templates this build writes too (a new solution's template is not on disk yet).
    students = {p: load(p) for p in student_notebooks()}
    students.update({p: json.loads(text) for p, text in expected.items() if p.parent.parent == ROOT})
    readme = ROOT / "README.md"
    if readme.exists():
        expected[readme] = update_page(readme.read_text(encoding="utf-8"), students, settings)
    for page in sorted((ROOT / "docs").glob("*.md")):
        session = session_of(page)
        mine = {p: nb for p, nb in students.items() if session and p.parent.name == f"Exercise{session}"}
        expected[page] = update_page(page.read_text(encoding="utf-8"), mine, settings, base="../")
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
