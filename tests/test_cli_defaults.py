"""The command line's defaults are the dataclasses' own: ``train``'s from TrainConfig, ``tune``'s search space
from SearchSpace, field by field. The options are built from the fields, so changing a field's default
changes the option's default and its --help; an option that wrote a default of its own fails here."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re

import pytest

from MyModules import __main__ as cli
from MyModules.train import TrainConfig
from MyModules.tuning.space import SearchSpace

# Another valid-looking default for each field the command line sets (a literal default would not follow).
OTHER_TRAIN_DEFAULTS = {"epochs": 11, "batch_size": 129, "lr": 0.0151, "optimizer": "adam", "momentum": 0.91,
                        "weight_decay": 6e-4, "augment": "crop", "seed": 7, "max_steps_per_epoch": 3, "amp": False,
                        "compile": True}


def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def help_text(command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse(command, "--help")
    return " ".join(out.getvalue().split())  # argparse wraps lines


def test_train_defaults_are_train_configs_field_by_field():
    args = parse("train")
    on_the_command_line = set(cli.train_options()) | {"amp", "compile"}
    for f in dataclasses.fields(TrainConfig):
        if f.name in on_the_command_line:
            assert getattr(args, f.name) == f.default, f.name
        else:
            assert f.name in cli.NOT_ON_THE_COMMAND_LINE, f"TrainConfig.{f.name} is neither an option nor listed"
    assert set(cli.NOT_ON_THE_COMMAND_LINE) == {f.name for f in dataclasses.fields(TrainConfig)} - on_the_command_line
    assert cli.train_config(args) == TrainConfig()


def test_tune_search_space_defaults_are_search_spaces_field_by_field():
    args = parse("tune")
    for f in dataclasses.fields(SearchSpace):  # every field of the space is an option
        assert getattr(args, f.name) == f.default, f.name
    assert cli.search_space(args) == SearchSpace()
    assert args.seed == TrainConfig.seed


def test_a_changed_default_in_the_dataclass_changes_the_option_and_its_help(monkeypatch):
    """What a literal ``default=10`` in __main__ would fail: the option must follow the dataclass."""
    assert set(OTHER_TRAIN_DEFAULTS) == set(cli.train_options()) | {"amp", "compile"}
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)} | {
        f"space.{f.name}": f for f in dataclasses.fields(SearchSpace)}
    for name, value in OTHER_TRAIN_DEFAULTS.items():
        monkeypatch.setattr(fields[name], "default", value)
    space = {f.name: tuple(reversed(f.default)) for f in dataclasses.fields(SearchSpace)}
    for name, value in space.items():
        monkeypatch.setattr(fields[f"space.{name}"], "default", value)
    args = parse("train")
    for name, value in OTHER_TRAIN_DEFAULTS.items():
        assert getattr(args, name) == value, f"--{name} does not take TrainConfig.{name}'s default"
    assert "passes over the training set; a resumed run keeps the number it started with (default: 11)" in \
        help_text("train")
    args = parse("tune")
    for name, value in space.items():
        assert getattr(args, name) == value, f"tune's --{name} does not take SearchSpace.{name}'s default"
    assert "(default: 256 128 64)" in help_text("tune")  # batch sizes, as they are typed


@pytest.mark.parametrize("command, cls", [("train", TrainConfig), ("tune", SearchSpace)])
def test_help_says_what_each_field_means_in_the_dataclass_words(command, cls):
    shown = help_text(command)
    comments = cli.field_comments(cls)
    options = cli.train_options() if command == "train" else cli.space_options()
    assert set(options) <= set(comments), "a field without a comment has no help text"
    for name in options:
        assert " ".join(comments[name].split()) in shown, name
    assert not re.search(r"default: \(", shown)  # defaults as they are typed, not as Python tuples
