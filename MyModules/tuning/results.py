"""Looking at a study: the trials table (DataFrame / CSV) and Optuna's matplotlib plots.

    table = trials_table(study)          # number, state, value, duration, run_dir, one column per parameter
    figures = plot_study(study)          # history, importance, parallel coordinates, slice, intermediate values
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pandas as pd

from .storage import recorded_run_dir

TABLE_COLUMNS = ("number", "state", "value", "duration_s", "epochs", "num_parameters", "retry_of", "fail_reason",
                 "run_dir", "params")


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: ``number, state, value`` (final test accuracy, %), ``duration_s``, ``epochs``
    (trained before it finished or was pruned), ``num_parameters``, ``retry_of`` (the trial a retry
    repeats), ``fail_reason``, ``run_dir`` (the trial's run folder), ``params`` (dict), then one
    ``param_<name>`` column per parameter (empty where a trial did not use it, e.g. SGD's momentum)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "duration_s": round(duration, 3) if duration is not None else None,
               "epochs": len(t.intermediate_values), "num_parameters": t.user_attrs.get("num_parameters"),
               "retry_of": t.user_attrs.get("retry_of"), "fail_reason": t.user_attrs.get("fail_reason"),
               "run_dir": recorded_run_dir(t),
               "params": dict(t.params)}
        row.update({f"param_{k}": v for k, v in sorted(t.params.items())})
        rows.append(row)
    table = pd.DataFrame(rows, columns=None if rows else list(TABLE_COLUMNS))
    return table.set_index("number", drop=False).rename_axis(None) if rows else table


def save_trials_csv(study: optuna.Study, path: str | Path) -> Path:
    """Write :func:`trials_table` as CSV (atomically: a worker may be killed at any moment)."""
    from ..atomic import write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, trials_table(study).to_csv(index=False))


PLOTS = {
    "history": "plot_optimization_history",  # best value so far, trial by trial
    "importance": "plot_param_importances",  # which parameters mattered (fANOVA on complete trials)
    "parallel": "plot_parallel_coordinate",  # one line per trial through every parameter to its value
    "slice": "plot_slice",  # value against each parameter (the most important ones)
    "intermediate": "plot_intermediate_values",  # accuracy per epoch: pruned curves stop early
}
MAX_WIDTH_INCHES = 12.0  # at 100 dpi: 1200 px, readable in Colab and in the docs without scrolling
SLICE_PARAMS = 4  # parameters in the slice plot (optuna draws one panel, 4 inches wide, per parameter)


def top_params(study: optuna.Study, k: int) -> list[str]:
    """The ``k`` parameters that mattered most (importance; alphabetical while too few trials)."""
    names = sorted({name for t in study.get_trials(deepcopy=False) for name in t.params})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ranked = list(optuna.importance.get_param_importances(study))
        names = ranked + [n for n in names if n not in ranked]
    except (ValueError, RuntimeError, ZeroDivisionError):
        pass
    return names[:k]


def plot_study(study: optuna.Study, which: tuple[str, ...] = tuple(PLOTS), out_dir: str | Path | None = None) -> dict:
    """Optuna's matplotlib plots of ``study``, by name; with ``out_dir`` also saved as PNG.

    Every figure is at most :data:`MAX_WIDTH_INCHES` wide (the slice plot shows the
    :data:`SLICE_PARAMS` most important parameters). A plot that needs more trials than the study
    has (importance needs two complete trials with the same parameters) is left out with a printed
    note instead of an error.
    """
    from optuna.visualization import matplotlib as ovm

    figures = {}
    for name in which:
        with warnings.catch_warnings():
            # Experimental API notes, and matplotlib's notes on single-valued axes of small studies.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            kwargs = {"params": top_params(study, SLICE_PARAMS)} if name == "slice" else {}
            try:
                result = getattr(ovm, PLOTS[name])(study, **kwargs)
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                print(f"{name}: not plotted yet ({e})")
                continue
            axes = result.flatten()[0] if hasattr(result, "flatten") else result
            figure = axes.figure
            width, height = figure.get_size_inches()
            if width > MAX_WIDTH_INCHES:
                figure.set_size_inches(MAX_WIDTH_INCHES, max(height * MAX_WIDTH_INCHES / width, 3.5))
            figure.tight_layout()
        figures[name] = figure
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            figure.savefig(Path(out_dir) / f"{study.study_name}-{name}.png", dpi=100)
    return figures
