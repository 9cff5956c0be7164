"""Test mode: every number in ``env.TestModeLimits``, decided once by ``env.test_limits()``, each cap applied once.

Test mode (``COURSE_TEST_MODE=1``, set by conftest) only shrinks data, steps and waits. The modules that
ask whether it is on are listed here, each with its reason; the statements that depend on it hold no
number of their own (they read the limits object); and a cap that two layers could apply (a trial's
steps: the objective's and fit's) is applied by one of them.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import optuna
import pytest
import torch

from MyModules import env, speed, train
from MyModules.data import load_dataset
from MyModules.models import Net
from MyModules.train import TrainConfig
from MyModules.tuning import objective as objective_module
from MyModules.tuning.space import SearchSpace
from MyModules.tuning.storage import StorageConfig

PACKAGE = Path(__file__).resolve().parents[1] / "MyModules"
CONSULT = {"test_mode", "test_limits", "TEST_MODE_LIMITS"}  # env's names that answer "is test mode on?"

#: Where the package asks ``env`` whether test mode is on, and why there (``module.function``).
ALLOWED = {
    "data.load_dataset": "how much data: generated sizes, real data cut to them",
    "train.fit": "caps epochs and steps of every run (apply_test_mode), once per run",
    "train._summary": "records in summary.json whether the run was a test-mode run",
    "speed.loader_epoch_seconds": "fewer timed passes",
    "speed.training_throughput": "fewer timed steps",
    "tuning.objective.Objective": "reads the limits once: a study's identity and its trials agree",
    "tuning.objective.run_worker": "fewer trials per study",
    "tuning.objective.evaluate_trial_model": "the same test images the trials were scored on",
    "tuning.storage.StorageConfig.default": "short heartbeats and waits",
    "runs.inference.run_dataset": "the data folder of a run that did not record whether it was a test run",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_sources() -> dict[str, str]:
    """Every module of the package but ``env`` (which holds the limits and decides)."""
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
            if "__pycache__" not in p.parts and p.relative_to(PACKAGE).as_posix() != "env.py"}


def package_trees() -> dict[str, ast.Module]:
    return {module: ast.parse(source) for module, source in package_sources().items()}


def scopes(tree: ast.Module, prefix: str) -> dict[str, ast.AST]:
    """``{"module.Class.function": node}`` for the module itself, every class and every function."""
    found: dict[str, ast.AST] = {prefix: tree}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[f"{name}.{child.name}"] = child
                visit(child, f"{name}.{child.name}")
            else:
                visit(child, name)

    visit(tree, prefix)
    return found


def own_nodes(scope: ast.AST):
    """The nodes of ``scope`` outside its nested functions and classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def is_consultation(node: ast.AST) -> bool:
    """``env.test_mode()``, ``env.test_limits``, ``env.TEST_MODE_LIMITS`` (called or not)."""
    return (isinstance(node, ast.Attribute) and node.attr in CONSULT and isinstance(node.value, ast.Name)
            and node.value.id == "env")


def consulting_scopes(trees: dict[str, ast.Module]) -> set[str]:
    return {name for module, tree in trees.items() for name, scope in scopes(tree, module).items()
            if any(is_consultation(n) for n in own_nodes(scope))}


def reads_test_mode(node: ast.AST, tainted: set[str]) -> bool:
    """Asks ``env``, reads a ``.test_limits`` attribute, or a name bound to the limits."""
    return (is_consultation(node) or (isinstance(node, ast.Attribute) and node.attr == "test_limits")
            or (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in tainted))


def is_the_answer(value: ast.AST | None, tainted: set[str]) -> bool:
    """``value`` evaluates to test mode's answer itself (the limits, or whether it is on), not to
    something computed from it."""
    if isinstance(value, ast.Call):
        value = value.func
    if isinstance(value, ast.IfExp):
        return is_the_answer(value.body, tainted) or is_the_answer(value.orelse, tainted)
    return value is not None and reads_test_mode(value, tainted)


def tainted_names(scope: ast.AST, nodes: list[ast.AST]) -> set[str]:
    """Parameters annotated ``TestModeLimits`` and names bound to test mode's answer."""
    args = getattr(scope, "args", None)
    tainted = {a.arg for a in ([*args.args, *args.kwonlyargs] if args else [])
               if a.annotation is not None and "TestModeLimits" in ast.unparse(a.annotation)}
    for n in nodes:  # in source order: ``limits = env.test_limits()`` comes before its uses
        if isinstance(n, (ast.Assign, ast.NamedExpr, ast.AnnAssign)) and is_the_answer(n.value, tainted):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            tainted |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    return tainted


def region_of(node: ast.AST) -> ast.AST:
    """What depends on ``node``: its statement; an ``if`` whose test it is, with what it guards; one
    value of a dict literal."""
    child, parent = node, node.parent
    while not isinstance(parent, (ast.stmt, ast.Dict)):  # a conditional expression: all of it
        child, parent = parent, parent.parent
    if isinstance(parent, (ast.If, ast.While)) and child is parent.test:
        return parent
    if isinstance(parent, ast.Dict) or isinstance(parent, (ast.For, ast.With, ast.Try, ast.FunctionDef, ast.ClassDef)):
        return child
    return parent


def numbers_of_test_mode(source: str) -> list[tuple[int, object]]:
    """``(line, number)`` of every number in a statement that depends on test mode, anywhere in ``source``.

    A statement depends on test mode when it asks ``env``, reads ``.test_limits`` or a name bound to
    either (``limits = env.test_limits()``, a parameter annotated ``TestModeLimits``); an ``if`` or a
    conditional expression whose test does so, with everything it guards. Subscripts (``sizes[0]``)
    are not numbers of test mode.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    found = set()
    for scope in [tree, *(n for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]:
        nodes = sorted(own_nodes(scope), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        tainted = tainted_names(scope, nodes)
        for region in {region_of(n) for n in nodes if reads_test_mode(n, tainted)}:
            subscripts = {id(s) for sub in ast.walk(region) if isinstance(sub, ast.Subscript)
                          for s in ast.walk(sub.slice)}
            found |= {(c.lineno, c.value) for c in ast.walk(region)
                      if isinstance(c, ast.Constant) and type(c.value) in (int, float) and id(c) not in subscripts}
    return sorted(found)


def test_only_the_listed_places_ask_whether_test_mode_is_on():
    assert consulting_scopes(package_trees()) == set(ALLOWED)


def test_no_module_reads_the_variable_or_imports_the_answer_by_name():
    for module, tree in package_trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "env":
                assert not {a.name for a in node.names} & (CONSULT | {"TEST_MODE_VAR"}), module
            assert not (isinstance(node, ast.Attribute) and node.attr == "TEST_MODE_VAR"), module


def test_no_test_mode_number_outside_the_test_mode_object():
    problems = {module: numbers for module, source in package_sources().items()
                if (numbers := numbers_of_test_mode(source))}
    assert problems == {}, "test-mode numbers belong in env.TestModeLimits: " + repr(problems)


@pytest.mark.parametrize("source, numbers", [
    ("def f(loader, repeats=2):\n    if env.test_mode():\n        repeats = 1\n    return repeats", [1]),
    ("def f(steps, warmup):\n    limits = env.test_limits()\n    if limits:\n"
     "        steps, warmup = min(steps, limits.speed_steps), min(warmup, 1)", [1]),
    ("def default(cls):\n    return cls(heartbeat_interval=1, grace_period=4) if env.test_mode() else cls()", [1, 4]),
    ("def cap(config, limits: env.TestModeLimits | None):\n    x = [3][0]\n"
     "    return min(limits.steps, max(2, limits.images // config.batch_size))", [2]),
    ("SIZE = env.TEST_MODE_LIMITS.train_size * 2", [2]),
    ("def f(sizes):\n    limits = env.test_limits()\n    return {'a': round(0.5, 1), 'b': limits is None, 'c': sizes[0]}", []),
])
def test_the_number_finder_sees_the_numbers_of_version_0_2(source, numbers):
    """The shapes test-mode numbers had before they moved into TestModeLimits are all found."""
    assert [value for _, value in numbers_of_test_mode(source)] == numbers


def test_every_limit_is_read_by_the_package():
    read = {n.attr for tree in package_trees().values() for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    unused = [f.name for f in dataclasses.fields(env.TestModeLimits) if f.name not in read]
    assert unused == []


def test_test_limits_decides_once_from_the_variable_or_the_caller(monkeypatch):
    monkeypatch.setenv(env.TEST_MODE_VAR, "1")
    assert env.test_limits() is env.TEST_MODE_LIMITS and env.test_limits(False) is None
    monkeypatch.setenv(env.TEST_MODE_VAR, "0")
    assert env.test_limits() is None and env.test_limits(True) is env.TEST_MODE_LIMITS


# --- each cap applied once, from the limits object -------------------------------------------------

def test_a_trials_caps_are_applied_once(tmp_path, monkeypatch):
    """The objective applies a trial's own caps (batch, steps); fit applies the caps of every run, once."""
    calls = []
    original = train.apply_test_mode

    def counting(config, *args, **kwargs):
        calls.append((config.epochs, config.batch_size, config.max_steps_per_epoch))
        return original(config, *args, **kwargs)

    monkeypatch.setattr(train, "apply_test_mode", counting)
    monkeypatch.setattr(objective_module, "apply_test_mode", counting, raising=False)  # where 0.2 called it too
    limits = env.test_limits()
    dataset = load_dataset("synthetic", tmp_path / "data")
    space = SearchSpace(widths=(8,), conv_blocks=(1, 1), layers_per_block=(1, 1), fc_layers=(0, 0),
                        batch_sizes=(64,), optimizers=("sgd",))
    study = optuna.create_study(direction="maximize")
    objective = objective_module.Objective(dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=5), space=space)
    study.optimize(objective, n_trials=1)
    assert calls == [(5, limits.trial_batch_size, limits.trial_steps)]  # the trial's config, not yet capped by fit
    assert study.trials[0].user_attrs["epochs"] == limits.epochs


def test_changing_a_limit_changes_what_test_mode_does(monkeypatch):
    """The numbers are read from env.TEST_MODE_LIMITS at the time, not copied elsewhere."""
    changed = dataclasses.replace(env.TEST_MODE_LIMITS, heartbeat_interval=0.5, grace_period=1.5, storage_timeout=3,
                                  loader_passes=3, speed_steps=4, speed_warmup=2)
    monkeypatch.setattr(env, "TEST_MODE_LIMITS", changed)
    assert StorageConfig.default() == StorageConfig(heartbeat_interval=0.5, grace_period=1.5, storage_timeout=3)

    class Batches:
        """A loader that counts what is drawn from it."""

        def __init__(self):
            self.passes = self.batches = 0

        def __len__(self):
            return 100

        def __iter__(self):
            self.passes += 1
            for _ in range(len(self)):
                self.batches += 1
                yield torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.int64)

    loader = Batches()
    speed.loader_epoch_seconds(loader, "cpu", repeats=5)
    assert loader.passes == 1 + changed.loader_passes  # one warm-up pass, then the timed ones
    loader = Batches()
    speed.training_throughput(Net(), loader, "cpu")
    assert loader.batches == changed.speed_warmup + changed.speed_steps


def test_outside_test_mode_nothing_is_capped(monkeypatch):
    monkeypatch.setenv(env.TEST_MODE_VAR, "0")
    assert StorageConfig.default() == StorageConfig()
    assert objective_module.capped_trials(100, env.test_limits()) == 100
    config = TrainConfig(epochs=7, batch_size=256)
    assert objective_module.trial_config(config, env.test_limits()) == config
