"""Notebooks saved from version 0.1 (one flat package) keep working: each old name is the module (or function) at its
new place, and its first use says the new name in Japanese."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from MyModules import _old_names

SCRIPT = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("always")
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        from MyModules import study_results                       # from-import of an old module
        import MyModules.plots                                    # import of an old dotted name
        from MyModules.study_storage import open_storage          # from an old module, a name
        from MyModules.inference import load_model
        import MyModules
        same = [study_results is MyModules.tuning.results, MyModules.plots is MyModules.viz.plots,
                open_storage is MyModules.tuning.storage.open_storage,
                load_model is MyModules.runs.inference.load_model, MyModules.quant_models is MyModules.quant.networks]
    notes = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    print(json.dumps({"same": same, "notes": notes}))
""")


def test_old_names_are_the_modules_at_their_new_place_with_a_japanese_note():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] == [True] * 5
    notes = "\n".join(result["notes"])
    for old in ("study_results", "plots", "study_storage", "inference", "quant_models"):
        new = _old_names.OLD_NAMES[old]
        assert f"MyModules.{old} は MyModules.{new} になりました" in notes


def test_every_old_name_points_at_a_module_that_exists():
    import importlib

    for new in _old_names.OLD_NAMES.values():
        importlib.import_module(f"MyModules.{new}")


def test_an_unknown_name_is_still_an_attribute_error():
    import MyModules

    try:
        MyModules.no_such_module  # noqa: B018
    except AttributeError as e:
        assert "no_such_module" in str(e)
    else:
        raise AssertionError("MyModules.no_such_module did not raise")


ATTRIBUTE_SCRIPT = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        from MyModules.viz import plots
        from MyModules.viz.plots import predict                   # from-import of a renamed function
        same = [predict is plots.class_probabilities, plots.predict is plots.class_probabilities]
        try:
            plots.no_such_function
            missing = None
        except AttributeError as e:
            missing = str(e)
    notes = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    where = [w.filename for w in caught if issubclass(w.category, FutureWarning)]
    print(json.dumps({"same": same, "notes": notes, "where": where, "missing": missing}))
""")


def test_a_renamed_function_answers_to_its_old_name_with_a_japanese_note():
    done = subprocess.run([sys.executable, "-c", ATTRIBUTE_SCRIPT], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] == [True, True]
    assert result["notes"] == ["MyModules.viz.plots.predict は MyModules.viz.plots.class_probabilities になりました。"
                               "この版では古い名前も使えますが、`plots.class_probabilities` に書き換えてください。"]
    assert result["where"] == ["<string>"]  # the note points at the line that used the old name (once per name)
    assert result["missing"] == "module 'MyModules.viz.plots' has no attribute 'no_such_function'"


def test_every_renamed_function_exists_under_its_new_name_only():
    import importlib

    for module, names in _old_names.OLD_ATTRIBUTES.items():
        loaded = importlib.import_module(f"MyModules.{module}")
        for old, new in names.items():
            assert callable(vars(loaded)[new]) and old not in vars(loaded), (module, old)
