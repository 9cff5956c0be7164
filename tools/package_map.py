"""The map of MyModules, written from the modules' own docstrings (so it cannot go stale).

    python tools/package_map.py          # rewrite the map in MyModules/__init__.py and README.md
    python tools/package_map.py --check  # CI: exit 1 if either disagrees with the modules

The layers are listed here, lowest first; a module may import only from its own layer and the
layers before it (tests/test_package_map.py checks every import). Every module of the package must
be in exactly one layer: a new module is an error until it is placed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "MyModules"

#: (title, modules): the layers, lowest first. Module names are relative to MyModules.
LAYERS: list[tuple[str, list[str]]] = [
    ("ground floor: where we run, how we fail, how we write files", ["env", "errors", "atomic", "seeding", "interrupt"]),
    ("data: files on disk -> uint8 tensors -> batches on the device", ["formats", "data", "loader"]),
    ("the training engine", ["models", "metrics", "checkpoint", "run_folder", "distributed", "train", "speed"]),
    ("viz/ (session 2): seeing training", ["viz", "viz.hooks", "viz.tensorboard", "viz.summary", "viz.plots"]),
    ("tuning/ (session 3): Optuna", ["tuning", "tuning.space", "tuning.storage", "tuning.objective",
                                     "tuning.results"]),
    ("quant/ (session 4): custom autograd operations", ["quant", "quant.functions", "quant.layers",
                                                       "quant.networks"]),
    ("runs/: after a run (new images, inspection, export)", ["runs", "runs.inference", "runs.inspect",
                                                           "runs.export"]),
    ("on top: the command line, the self-checks, old names", ["__main__", "checks", "checks.ex01", "checks.ex02",
                                                             "checks.ex03", "checks.ex04", "_old_names"]),
]

START, END = "<!-- package-map:start -->", "<!-- package-map:end -->"
INIT_HEAD = '"""MyModules: the shared code of the lab\'s PyTorch course.\n'


def module_files() -> dict[str, Path]:
    """``{"tuning.storage": path}`` for every module of the package (``__init__`` as the package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def summary(path: Path) -> str:
    """The first line of a module's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        raise SystemExit(f"{path.relative_to(ROOT)} has no docstring: its first line is its entry in the map")
    return doc.splitlines()[0].rstrip(".")


def layer_problems() -> list[str]:
    files = module_files()
    listed = [m for _, modules in LAYERS for m in modules]
    problems = [f"{m} is in two layers" for m in set(listed) if listed.count(m) > 1]
    problems += [f"MyModules/{files[m].relative_to(PACKAGE)} is in no layer of tools/package_map.py"
                 for m in files if m and m not in listed]
    problems += [f"tools/package_map.py lists {m}, which does not exist" for m in listed if m not in files]
    return problems


def map_lines() -> list[str]:
    files = module_files()
    lines = []
    for title, modules in LAYERS:
        lines.append(f"{title}:")
        width = max(len(m) for m in modules)
        lines += [f"  {m:<{width}}  {summary(files[m])}" for m in modules]
    return lines


def init_text() -> str:
    text = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    body = text[text.index('"""', 3) + 3:]  # what follows the docstring
    doc = [INIT_HEAD.rstrip("\n"), "",
           "Notebooks import from here instead of copying helpers around: one concern per module, in layers,",
           "lowest first; a module imports only from its own layer and the ones above it. Written by",
           "tools/package_map.py from each module's docstring; CI checks it.", "", *map_lines(), '"""']
    return "\n".join(doc) + body


def readme_text() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    if START not in text:
        raise SystemExit(f"README.md needs the markers {START} and {END} around the package map")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    block = "\n".join(["```", "MyModules/  (python tools/package_map.py writes this map from the docstrings)",
                       *["  " + line for line in map_lines()], "```"])
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is out of date (exit 1)")
    args = parser.parse_args(argv)
    problems = layer_problems()
    if problems:
        print("\n".join(problems))
        return 1
    stale = 0
    for path, text in ((PACKAGE / "__init__.py", init_text()), (ROOT / "README.md", readme_text())):
        if path.read_text(encoding="utf-8") != text:
            stale += 1
            if args.check:
                print(f"out of date: {path.relative_to(ROOT)} (run: python tools/package_map.py)")
            else:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
