"""Session 3: Optuna search (search space, objective, storage, workers).

The storage tests run real worker processes (``python -m MyModules tune``): one killed with SIGKILL
in the middle of a trial, and several sharing one study on a real PostgreSQL server.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState

from MyModules import env, tuning
from MyModules.__main__ import main
from MyModules.checkpoint import load_checkpoint
from MyModules.train import TrainConfig
from MyModules.tuning import objective
from MyModules.tuning.results import plot_study, save_trials_csv, trials_table
from MyModules.tuning.space import (
    ConvNet,
    SearchSpace,
    model_from_params,
    suggest_config,
    suggest_model,
)
from MyModules.tuning.storage import (
    StorageConfig,
    StudyMismatchError,
    default_study_name,
    open_storage,
    open_study,
)
from tests.support.pg import postgres_server, postgres_url  # noqa: F401  (pytest fixtures)
from tests.support.tuning import TINY, TINY_ARGS, counts, worker

optuna.logging.set_verbosity(optuna.logging.WARNING)




# --- search space -------------------------------------------------------------------------------

def test_model_from_best_params_has_the_trained_architecture():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(5):
        trial = study.ask()
        model = suggest_model(trial, SearchSpace(), num_classes=7)
        rebuilt = model_from_params(trial.params, SearchSpace(), num_classes=7)
        assert isinstance(rebuilt, ConvNet) and rebuilt.shape == model.shape
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
        rebuilt.load_state_dict(model.state_dict())  # the checkpoint of that trial fits
        assert rebuilt(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
        assert ("fc_units" in trial.params) == (trial.params["fc_layers"] > 0)


def test_suggest_config_log_lr_and_each_optimiser_its_own_parameter():
    base = TrainConfig(epochs=3, seed=5)
    study = optuna.create_study()
    trial = study.ask()
    config = suggest_config(trial, SearchSpace(), base)
    assert trial.distributions["lr"].log and config.epochs == 3 and config.seed == 5
    sgd = suggest_config(optuna.trial.FixedTrial({"lr": 0.01, "optimizer": "sgd", "momentum": 0.85,
                                                  "batch_size": 64}), SearchSpace(), base)
    adam = suggest_config(optuna.trial.FixedTrial({"lr": 0.001, "optimizer": "adam", "adam_weight_decay": 1e-4,
                                                   "batch_size": 128}), SearchSpace(), base)
    assert (sgd.optimizer, sgd.momentum, sgd.batch_size) == ("sgd", 0.85, 64)
    assert (adam.optimizer, adam.weight_decay, adam.momentum) == ("adam", 1e-4, base.momentum)
    with pytest.raises(ValueError):
        SearchSpace(lr=(0.0, 0.1))


# --- study names and storage ---------------------------------------------------------------------

def test_default_study_name_follows_the_search_and_a_reused_name_is_refused(tmp_path, course_dataset):
    a = tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=2), space=TINY)
    b = tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=2), space=SearchSpace(widths=(8, 16)))
    c = tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=3), space=TINY)
    names = {default_study_name(o.identity()) for o in (a, b, c)}
    assert len(names) == 3 and default_study_name(a.identity()) == default_study_name(
        tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=2), space=TINY).identity())
    storage = open_storage(tmp_path / "s.journal")
    open_study(storage, "mine", a.identity())
    open_study(storage, "mine", a.identity())  # the same search continues
    with pytest.raises(StudyMismatchError, match="別の探索設定") as e:
        open_study(storage, "mine", b.identity())
    assert "space" in str(e.value)


def test_sqlite_file_and_unreachable_server_end_with_one_line(tmp_path, capsys):
    assert main(["tune", "--storage", str(tmp_path / "x.db"), "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "journal" in err and len(err.splitlines()) == 1
    url = "postgresql+psycopg2://u:secret@127.0.0.1:1/x"
    assert main(["tune", "--storage", url, "--storage-timeout", "1", "--course-dir", str(tmp_path), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot open the study database" in err and "secret" not in err and len(err.splitlines()) == 1


def test_surplus_trial_is_the_one_that_asked_last():
    study = optuna.create_study()
    first, second, third = study.ask(), study.ask(), study.ask()
    study.tell(first, 1.0)
    # Two slots: trials 0 (complete) and 1 (running) fill them; 2 asked last and steps back.
    assert not objective._is_surplus(study, second.number, 2)
    assert objective._is_surplus(study, third.number, 2)
    study.tell(second, state=TrialState.FAIL)  # a failed trial frees its slot
    assert not objective._is_surplus(study, third.number, 2)


# --- objective, resume, reload --------------------------------------------------------------------

def test_study_continues_and_best_checkpoint_gives_recorded_accuracy(tmp_path, course_dataset):
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=2), space=TINY)
    study = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    tuning.run_worker(study, objective, n_trials=2, verbose=False)
    # A new process (a new Colab runtime) opens the same name and storage and continues.
    again = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    assert again.study_name == study.study_name and len(again.trials) == 2
    tuning.run_worker(again, objective, n_trials=3, verbose=False)
    assert counts(again)["COMPLETE"] == 3 and len(again.trials) == 3
    best = tuning.best_trial(again)
    model = tuning.load_trial_model(best, course_dataset.num_classes, space=TINY, device="cpu")
    assert tuning.evaluate_trial_model(model, course_dataset, "cpu") == pytest.approx(best.value, abs=1e-9)
    assert list(best.intermediate_values) == [1, 2] and best.intermediate_values[2] == best.value

    table = trials_table(again)
    assert list(table["number"]) == [0, 1, 2] and set(table["state"]) == {"COMPLETE"}
    assert {"value", "duration_s", "run_dir", "params", "param_lr"} <= set(table.columns)
    csv = pd.read_csv(save_trials_csv(again, tmp_path / "t.csv"))
    assert list(csv["value"]) == pytest.approx(list(table["value"]))
    assert {"history", "parallel", "slice", "intermediate"} <= set(plot_study(again))


def test_pruned_trial_keeps_its_checkpoint(tmp_path, course_dataset):
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=2), space=TINY)
    study = tuning.study_for(objective, course_dir=tmp_path, pruner=tuning.make_pruner("threshold", lower=101.0))
    tuning.run_worker(study, objective, n_trials=1, verbose=False)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
    state = load_checkpoint(trial.user_attrs["run_dir"])
    assert state["epoch"] == 1


def test_test_mode_caps_a_study():
    limits = env.test_limits()
    assert limits is env.TEST_MODE_LIMITS  # conftest turns test mode on
    assert (tuning.capped_trials(100, limits), tuning.capped_trials(2, limits)) == (limits.trials, 2)
    assert tuning.capped_trials(100, None) == 100  # outside test mode


# --- worker processes --------------------------------------------------------------------------------

def test_killed_worker_trial_is_failed_retried_and_the_study_completes(tmp_path, course_dataset):
    journal = tmp_path / "kill.journal"
    # Wider layers than TINY's: an epoch takes long enough (~1 s) to be caught between two reports.
    args = ["--storage", str(journal), "--study", "kill-test", "--n-trials", "3", "--pruner", "none",
            "--widths", "128"]
    first = worker(args)
    storage = open_storage(journal, config=StorageConfig.default())
    killed = None
    deadline = time.time() + 180
    while killed is None and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
        try:
            study = optuna.load_study(study_name="kill-test", storage=storage)
        except KeyError:
            continue
        if not any(t.state == TrialState.RUNNING and t.intermediate_values for t in study.get_trials()):
            continue
        # Freeze the worker, then kill it only if it is still inside that trial and not writing the journal.
        os.kill(first.pid, signal.SIGSTOP)
        running = [t for t in study.get_trials() if t.state == TrialState.RUNNING and t.intermediate_values]
        if running and not Path(f"{journal}.lock").exists():
            os.kill(first.pid, signal.SIGKILL)
            killed = running[0]
        else:
            os.kill(first.pid, signal.SIGCONT)
    first.wait(timeout=30)
    assert killed is not None, f"the first worker never got to a trial's second epoch:\n{first.stdout.read()}"
    assert counts(study)["RUNNING"] == 1  # the dead worker's trial, as a runtime loss leaves it

    second = worker(args)
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 0, out
    study = optuna.load_study(study_name="kill-test", storage=storage)
    c = counts(study)
    assert c["RUNNING"] == 0 and c["WAITING"] == 0 and c["COMPLETE"] + c["PRUNED"] == 3, (c, out)
    assert study.trials[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == killed.number]
    assert retry.state in tuning.FINISHED and retry.params == killed.params
    # The retry continued the dead trial's run from its checkpoint, keeping epoch 1's report.
    assert retry.user_attrs["resume_from"] == killed.user_attrs["run_dir"]
    assert retry.intermediate_values[1] == killed.intermediate_values[1]
    assert f"resuming trial-{retry.number:04d} after epoch" in out  # in its own folder
    print(f"killed in trial {killed.number} after epoch {max(killed.intermediate_values)}; retried as trial "
          f"{retry.number} ({retry.state.name}, {retry.duration.total_seconds():.1f} s); final {c}")


def test_workers_on_postgres_finish_exactly_the_requested_trials(postgres_url, course_dataset):  # noqa: F811
    n_workers, n_trials = 3, env.TEST_MODE_LIMITS.trials
    args = ["--storage", postgres_url, "--study", "parallel-test", "--n-trials", str(n_trials)]
    workers = [worker(args) for _ in range(n_workers)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * n_workers, "\n".join(outputs)
    storage = open_storage(postgres_url)
    study = optuna.load_study(study_name="parallel-test", storage=storage)
    c = counts(study)
    assert c["COMPLETE"] + c["PRUNED"] == n_trials and c["RUNNING"] == 0 and c["WAITING"] == 0, c
    # A trial that lost the race for the last slot is marked, never counted; no other failures.
    assert all(t.user_attrs.get(tuning.SURPLUS_ATTR) for t in study.trials if t.state == TrialState.FAIL)
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))  # no trial lost or written twice
    best = tuning.best_trial(study)
    model = tuning.load_trial_model(best, course_dataset.num_classes, space=TINY, device="cpu")
    assert tuning.evaluate_trial_model(model, course_dataset, "cpu") == pytest.approx(best.value, abs=1e-9)
