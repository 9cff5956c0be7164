"""One error family, one exit-code table: every code the command line returns is a name of the table in
``MyModules.errors``, every ``CourseError`` maps to one of them, and the table's docstring says what each
means. Also: the command line finds the options written on it without argparse's private API."""

from __future__ import annotations

import ast
import inspect

import pytest

from MyModules import __main__ as cli
from MyModules import errors
from MyModules.errors import EXIT_CODES, EXIT_USAGE, CourseError, UsageError

TABLE = {name: getattr(errors, name) for name in dir(errors) if name.startswith("EXIT_") and name != "EXIT_CODES"}


def subclasses(cls) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *subclasses(sub)}
    return found


def test_the_table_is_the_exit_codes_each_once_and_documented():
    assert sorted(TABLE.values()) == sorted(EXIT_CODES) and len(set(EXIT_CODES)) == len(EXIT_CODES)
    assert errors.EXIT_OK == 0 and errors.EXIT_USAGE == 2 and errors.EXIT_INTERRUPTED == 130  # what shells expect
    rows = {line.split()[1].strip("`"): int(line.split()[0]) for line in errors.__doc__.splitlines()
            if line.split()[:1] and line.split()[0].isdigit()}
    assert rows == TABLE  # the docstring's table: every code, with its name


def test_every_course_error_maps_to_a_code_of_the_table():
    import MyModules.runs.export  # noqa: F401  (import every module that defines CourseErrors)
    import MyModules.runs.inference  # noqa: F401
    import MyModules.tuning.objective  # noqa: F401

    assert issubclass(UsageError, CourseError) and UsageError.exit_code == EXIT_USAGE
    family = subclasses(CourseError) | {CourseError}
    assert {"UsageError", "ConfigError", "DivergenceError", "StudyMismatchError"} <= {c.__name__ for c in family}
    assert {c.__name__: c.exit_code for c in family if c.exit_code not in EXIT_CODES} == {}


def returned(function) -> list[ast.expr]:
    tree = ast.parse(inspect.getsource(function).lstrip())
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Return)]


def test_every_exit_code_the_command_line_returns_comes_from_the_table():
    """``main``, each command's handler and each function whose result they return give a name of the
    table or an error's ``exit_code``; never a number of their own."""
    todo, functions = ["main", *(handler.__name__ for _, _, handler in cli.COMMANDS.values())], {}
    while todo:  # follow `return f(...)` to the functions that make the code
        name = todo.pop()
        if name not in functions:
            functions[name] = getattr(cli, name)
            todo += [v.func.id for v in returned(functions[name])
                     if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and hasattr(cli, v.func.id)]
    assert {"main", "run_train", "_fit_and_report", "run_tune", "run_inspect", "run_predict", "run_export"} <= set(
        functions)

    def from_the_table(value: ast.expr | None) -> bool:
        if isinstance(value, ast.Name):
            return value.id in TABLE and getattr(cli, value.id) is TABLE[value.id]
        if isinstance(value, ast.Attribute):
            return value.attr == "exit_code"  # the error's own code (checked above: one of the table)
        if isinstance(value, ast.IfExp):
            return from_the_table(value.body) and from_the_table(value.orelse)
        if isinstance(value, ast.Call):  # args.func(args) (a handler), or a function followed above
            return isinstance(value.func, ast.Attribute) and value.func.attr == "func" or (
                isinstance(value.func, ast.Name) and value.func.id in functions)
        return False

    wrong = {name: ast.unparse(value) if value else "None" for name, f in functions.items() for value in returned(f)
             if not from_the_table(value)}
    assert wrong == {}
    assert [name for name in vars(cli) if name.startswith("EXIT_") and name not in TABLE] == []  # no codes of its own


def test_a_course_error_from_any_command_is_one_line_with_its_code(tmp_path, capsys):
    """Errors of inspect, predict and export reach main as they are (no conversion): one line, their code."""
    missing = tmp_path / "no-such-run"
    for argv in (["inspect", str(missing)], ["predict", str(missing), str(tmp_path)], ["export", str(missing)]):
        assert cli.main(argv) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and str(missing) in err, err


def test_a_usage_error_prints_its_line_and_exits_with_the_usage_code(capsys):
    assert cli.main(["train", "--epochs", "0"]) == EXIT_USAGE
    assert capsys.readouterr().err == ("error: argument --epochs: must be at least 1, got 0 "
                                       "(see: python -m MyModules train --help)\n")


@pytest.mark.parametrize(("argv", "given"), [
    (["--epochs", "3", "--no-amp"], {"epochs", "amp"}),
    (["--epo", "3", "--lr=0.1"], {"epochs", "lr"}),  # an abbreviation and the = form count too
    (["--epochs", "10"], {"epochs"}),  # written, even when it equals the default
    ([], set()),
])
def test_explicit_options_are_those_written_on_the_command_line(argv, given):
    parser = cli.build_parser()
    args = parser.parse_args(["train", *argv])
    assert cli._explicit(argv, parser.commands["train"], args) == given
    assert set(parser.commands) == set(cli.COMMANDS)


def test_the_readme_lists_the_same_exit_codes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### 終了コード", 1)[1].split("\n#", 1)[0]
    codes = [int(line.split("|")[1]) for line in section.splitlines() if line.startswith("| ") and
             line.split("|")[1].strip().isdigit()]
    assert codes == sorted(EXIT_CODES)
