"""``python -m MyModules tune`` with bad inputs (one line, exit 2), storage URLs and their messages,
plots at readable sizes, and a diverging trial."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from MyModules import tuning
from MyModules.__main__ import main
from MyModules.errors import ConfigError, TuningError
from MyModules.train import TrainConfig
from MyModules.tuning.results import MAX_WIDTH_INCHES, plot_study
from MyModules.tuning.space import SearchSpace
from MyModules.tuning.storage import FAIL_REASON_ATTR, driver_advice, hide_password, open_storage
from tests.support.tuning import TINY, TINY_ARGS

optuna.logging.set_verbosity(optuna.logging.WARNING)




def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_storage_naming_a_folder_is_refused_in_one_line(tmp_path, capsys):
    assert main(["tune", "--storage", str(tmp_path), "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
    err = one_line_error(capsys)
    assert "is a folder" in err and f"{tmp_path}/study.journal" in err


def test_conv_blocks_that_do_not_fit_are_refused_before_any_trial(tmp_path, capsys, course_dataset):
    args = ["tune", "--conv-blocks", "9", "9", "--course-dir", str(tmp_path), "--storage",
            str(tmp_path / "s.journal"), "--device", "cpu"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "32x32" in err and "at most 5 blocks" in err
    assert not (tmp_path / "s.journal").exists() or not optuna.get_all_study_summaries(
        open_storage(tmp_path / "s.journal"))  # refused before the study was even created
    with pytest.raises(ConfigError):
        tuning.Objective(course_dataset, "cpu", tmp_path, space=SearchSpace(conv_blocks=(1, 6)))
    tuning.Objective(course_dataset, "cpu", tmp_path, space=SearchSpace(conv_blocks=(1, 5)))  # 32 -> 1 pixel fits


def test_sqlite_is_refused_as_a_path_and_as_a_url(tmp_path, capsys):
    for storage in (str(tmp_path / "x.db"), f"sqlite:///{tmp_path}/x.db", "sqlite:///:memory:"):
        assert main(["tune", "--storage", storage, "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
        err = one_line_error(capsys)
        assert "SQLite" in err and "journal" in err
    with pytest.raises(TuningError):
        open_storage(f"sqlite:///{tmp_path}/y.sqlite3")


def test_unreachable_servers_end_with_one_line_and_never_show_the_password(tmp_path, capsys):
    for url in ("postgresql+psycopg2://u:secret@127.0.0.1:1/x", "mysql+pymysql://u:secret@127.0.0.1:1/x"):
        assert main(["tune", "--storage", url, "--storage-timeout", "1", "--course-dir", str(tmp_path),
                     *TINY_ARGS]) == 2
        err = one_line_error(capsys)
        assert "cannot open the study database" in err and "secret" not in err and "u:***@127.0.0.1:1" in err
        assert "pip install" not in err  # the drivers are installed: the server is what is missing
    # A plain postgresql:// is psycopg 3 for SQLAlchemy 2.1: say so, instead of "install psycopg2".
    assert main(["tune", "--storage", "postgresql://u:secret@127.0.0.1:1/x", "--storage-timeout", "1",
                 "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
    err = one_line_error(capsys)
    import sqlalchemy.dialects.postgresql as pg

    wanted = pg.dialect.driver if hasattr(pg, "dialect") else "psycopg2"
    if wanted == "psycopg2":  # an older SQLAlchemy: a plain URL means psycopg2, which is installed
        assert "cannot open the study database" in err
    else:
        assert "postgresql+psycopg2://" in err and "pip install psycopg2" not in err
    assert "secret" not in err
    # '@' inside a password: masked whole, and the hint says how to write it.
    url = "postgresql+psycopg2://u:p@ss:w@rd@127.0.0.1:1/x"
    assert main(["tune", "--storage", url, "--storage-timeout", "1", "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
    err = one_line_error(capsys)
    assert "ss" not in err.replace("address", "").replace("pass", "") and "%40" in err


def test_password_masking_and_driver_advice_per_url_form():
    assert hide_password("postgresql://u:p@ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert hide_password("mysql+pymysql://root@h/db") == "mysql+pymysql://root@h/db"
    assert hide_password("postgresql://u:a/b@h/db") == "postgresql://u:***@h/db"
    assert "psycopg2-binary" in driver_advice("postgresql://h/db")
    assert "psycopg[binary]" in driver_advice("postgresql+psycopg://h/db")
    assert "pymysql" in driver_advice("mysql+pymysql://h/db")
    assert "mysqlclient" in driver_advice("mysql://h/db")


def test_missing_driver_names_the_package_to_install(tmp_path, capsys):
    pytest.importorskip("sqlalchemy")
    try:
        import pg8000  # noqa: F401
        pytest.skip("pg8000 is installed here")
    except ImportError:
        pass
    assert main(["tune", "--storage", "postgresql+pg8000://u:secret@127.0.0.1:1/x", "--storage-timeout", "1",
                 "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
    err = one_line_error(capsys)
    assert "pip install pg8000" in err and "secret" not in err


def test_plots_include_parallel_coordinates_at_readable_sizes(tmp_path, course_dataset):
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=1), space=SearchSpace(
        widths=(8,), conv_blocks=(1, 2), layers_per_block=(1, 2), fc_layers=(0, 1), fc_units=(32,)))
    study = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    tuning.run_worker(study, objective, n_trials=3, verbose=False)
    figures = plot_study(study, out_dir=tmp_path / "plots")
    assert {"history", "parallel", "slice", "intermediate"} <= set(figures)
    from PIL import Image

    for name in figures:
        width, height = Image.open(tmp_path / "plots" / f"{study.study_name}-{name}.png").size
        assert width <= MAX_WIDTH_INCHES * 100 and height >= 250, (name, width, height)
    assert len(figures["slice"].axes) <= 4 + 1  # the four most important parameters (+ a colour bar)


def test_a_diverging_trial_fails_with_its_reason_and_the_search_goes_on(tmp_path, course_dataset):
    # An SGD learning rate of 1e4 makes the loss overflow in the first steps.
    space = SearchSpace(lr=(1e4, 1e4), optimizers=("sgd",), widths=(8,), conv_blocks=(1, 1),
                        layers_per_block=(1, 1), fc_layers=(0, 0))
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=1), space=space)
    study = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    report = tuning.run_worker(study, objective, n_trials=1, verbose=False, timeout=3)  # every trial fails
    first = study.trials[0]
    assert first.state == TrialState.FAIL, (first.state, first.value)
    assert "diverged" in first.user_attrs[FAIL_REASON_ATTR]
    assert report.trials_run >= 1


def test_tiny_search_space_study_still_opens(tmp_path, course_dataset):
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=1), space=TINY)
    assert tuning.study_for(objective, course_dir=tmp_path).study_name.startswith("study-cifar10-test-")
