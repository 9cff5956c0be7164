"""The package map: every module in one layer, imports going one way, the map written from the modules.

``tools/package_map.py`` lists MyModules' layers, lowest first. A module may import only from its own
layer and the layers before it: the ground floor knows nothing of training, the engine nothing of the
sessions, and nothing in the package imports the command line or the self-checks.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course_package_map", REPO / "tools" / "package_map.py")
package_map = importlib.util.module_from_spec(spec)
spec.loader.exec_module(package_map)


def layer_of() -> dict[str, int]:
    return {m: i for i, (_, modules) in enumerate(package_map.LAYERS) for m in modules}


def imports_of(module: str, path: Path) -> set[str]:
    """The package's modules that ``module`` imports (relative and absolute ``MyModules`` imports)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == "MyModules":
                base = []
            else:
                continue
            target = [*base, *((node.module or "").split(".") if node.level else node.module.split(".")[1:])]
            target = [t for t in target if t]
            for alias in node.names:  # `from . import env` imports the module env
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in layer_of() else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "MyModules":
                    found.add(".".join(alias.name.split(".")[1:]))
    return {m for m in found if m and m != module}


def test_every_module_is_in_exactly_one_layer():
    assert package_map.layer_problems() == []


@pytest.mark.parametrize("module", sorted(m for m in package_map.module_files() if m))  # "": the package itself
def test_a_module_imports_only_from_its_layer_and_below(module):
    layers = layer_of()
    path = package_map.module_files()[module]
    above = {m for m in imports_of(module, path) if m in layers and layers[m] > layers[module]}
    assert not above, f"{module} (layer {layers[module]}) imports {sorted(above)} from a higher layer"


def test_the_import_finder_sees_relative_and_absolute_imports():
    files = package_map.module_files()
    assert {"env", "checkpoint", "tuning.space", "tuning.storage"} <= imports_of("tuning.objective",
                                                                              files["tuning.objective"])


def test_the_map_in_the_package_and_the_readme_is_up_to_date():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "package_map.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_map_names_every_module_with_its_docstring():
    init = (REPO / "MyModules" / "__init__.py").read_text(encoding="utf-8")
    for module, path in package_map.module_files().items():
        if module:
            assert f"  {module} " in init and package_map.summary(path) in init


OLD = __import__("MyModules._old_names", fromlist=["OLD_NAMES"]).OLD_NAMES


@pytest.mark.parametrize("module", sorted(m for m in package_map.module_files() if m and m != "_old_names"))
def test_the_package_itself_never_uses_version_0_1_names(module):
    """Old names are for students' saved notebooks only; inside the package each would print the note."""
    path = package_map.module_files()[module]
    old = {m for m in imports_of(module, path) if m in OLD}
    assert not old, f"{module} imports the old name(s) {sorted(old)}: use {[OLD[m] for m in sorted(old)]}"
