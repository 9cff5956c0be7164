"""Old module names (version 0.1, one flat folder) keep working for this version, with a note.

Notebooks that students saved from 0.1 import ``from MyModules import study_results`` or
``from MyModules.plots import ...``. Each old name is the module at its new place (the same object),
and the first use prints, in Japanese, the name to use from now on.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old name -> new name, both under MyModules
OLD_NAMES = {
    "hooks": "viz.hooks",
    "tb_logging": "viz.tensorboard",
    "summary": "viz.summary",
    "plots": "viz.plots",
    "search_space": "tuning.space",
    "study_storage": "tuning.storage",
    "study_results": "tuning.results",
    "quant_models": "quant.networks",
    "inference": "runs.inference",
    "inspect_run": "runs.inspect",
    "export": "runs.export",
}


_NOTED: set[str] = set()


def new_module(old: str):
    """The module an old name stands for, after a note (once per name) saying the new name."""
    new = OLD_NAMES[old]
    if old in _NOTED:
        return importlib.import_module(f"{__package__}.{new}")
    _NOTED.add(old)
    warnings.warn(f"MyModules.{old} は MyModules.{new} になりました。この版では古い名前も使えますが、"
                  f"`from MyModules.{new.rsplit('.', 1)[0]} import {new.rsplit('.', 1)[1]}` に書き換えてください。",
                  FutureWarning, stacklevel=3)
    return importlib.import_module(f"{__package__}.{new}")


class _OldNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import MyModules.plots`` and ``from MyModules.plots import x``: the module at its new place."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix == __package__ and old in OLD_NAMES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return new_module(spec.name.partition(".")[2])

    def exec_module(self, module) -> None:
        pass  # the module at its new place is already executed


def install() -> None:
    # First: it answers only for the old names, which no other finder must resolve (an editable install
    # of an older checkout would find the old file itself).
    if not any(isinstance(f, _OldNameFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldNameFinder())
