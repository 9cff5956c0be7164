"""Old module names (version 0.1, one flat folder) keep working for this version, with a note.

Notebooks that students saved from 0.1 import ``from MyModules import study_results`` or
``from MyModules.plots import ...``. Each old name is the module at its new place (the same object),
and the first use prints, in Japanese, the name to use from now on. Functions renamed inside a
module (:data:`OLD_ATTRIBUTES`, e.g. ``plots.predict``) answer to their old name the same way: the
module gets a ``__getattr__`` when it is imported (the module itself never imports this one).
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
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

#: module (under MyModules) -> {old attribute name: new name}: functions renamed in this version
OLD_ATTRIBUTES = {
    # Softmax probabilities of uint8 images; runs.inference.predict (a run's model on image files) is another job.
    "viz.plots": {"predict": "class_probabilities"},
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


def old_attribute(module, name: str):
    """``module.<old name>`` (a module's ``__getattr__``): the attribute at its new name, after a note
    (once per name); any other missing name is the usual AttributeError."""
    new = OLD_ATTRIBUTES.get(module.__name__.partition(".")[2], {}).get(name)
    if new is None:
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
    old = f"{module.__name__}.{name}"
    if old not in _NOTED:
        _NOTED.add(old)
        short = module.__name__.rsplit(".", 1)[1]
        warnings.warn(f"{old} は {module.__name__}.{new} になりました。この版では古い名前も使えますが、"
                      f"`{short}.{new}` に書き換えてください。", FutureWarning, stacklevel=2)
    return getattr(module, new)


class _WithOldAttributes(importlib.abc.Loader):
    """A module's own loader, plus a module ``__getattr__`` that answers the module's old attribute names."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_source, get_filename, ...: the module's own loader answers
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        module.__getattr__ = functools.partial(old_attribute, module)


class _OldNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import MyModules.plots`` and ``from MyModules.plots import x``: the module at its new place.
    A module with renamed attributes (:data:`OLD_ATTRIBUTES`) is found as usual and loaded with them."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix != __package__:
            return None
        if old in OLD_NAMES:
            return importlib.util.spec_from_loader(fullname, self)
        if old in OLD_ATTRIBUTES:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _WithOldAttributes(spec.loader)
            return spec
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
