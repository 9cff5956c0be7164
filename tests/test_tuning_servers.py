"""Session 3 on real database servers: PostgreSQL stopped for ~6 s under two workers, a trial that
died before its first heartbeat row, and workers sharing a study on MariaDB (``.[mysql]``)."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from MyModules import env, tuning
from MyModules.train import TrainConfig
from MyModules.tuning.storage import HEARTBEAT_ATTR, RETRY_OF_ATTR, StorageConfig, open_storage
from tests.support.pg import mysql_url, postgres_server  # noqa: F401  (pytest fixtures)
from tests.support.tuning import TINY, counts, wait_for, worker

optuna.logging.set_verbosity(optuna.logging.WARNING)




def check_shared_study(study: optuna.Study, n_trials: int, course_dataset) -> dict[str, int]:
    c = counts(study)
    assert c["COMPLETE"] + c["PRUNED"] == n_trials and c["RUNNING"] == 0 and c["WAITING"] == 0, c
    # Only a trial that lost the race for the last slot may fail; none was ever retried (run twice).
    assert all(t.user_attrs.get(tuning.SURPLUS_ATTR) for t in study.trials if t.state == TrialState.FAIL), c
    assert not [t.number for t in study.trials if RETRY_OF_ATTR in t.user_attrs]
    assert [t.number for t in study.trials] == list(range(len(study.trials)))
    best = tuning.best_trial(study)
    model = tuning.load_trial_model(best, course_dataset.num_classes, space=TINY, device="cpu")
    assert tuning.evaluate_trial_model(model, course_dataset, "cpu") == pytest.approx(best.value, abs=1e-9)
    return c


def test_postgres_stopped_for_six_seconds_under_two_workers(postgres_server, course_dataset, tmp_path):  # noqa: F811
    n_trials = env.TEST_MODE_LIMITS.trials
    args = ["--storage", postgres_server.url, "--study", "blip-test", "--n-trials", str(n_trials),
            "--pruner", "none", "--course-dir", str(tmp_path)]
    workers = [worker(args, epochs=2) for _ in range(2)]
    storage = open_storage(postgres_server.url)
    try:
        def both_inside_a_trial():
            study = optuna.load_study(study_name="blip-test", storage=storage)
            return len([t for t in study.get_trials() if t.state == TrialState.RUNNING
                        and HEARTBEAT_ATTR in t.user_attrs]) >= 2

        wait_for(both_inside_a_trial, "two running trials", timeout=180, poll=0.02)
        started = time.time()
        assert postgres_server.stop("fast").returncode == 0
        time.sleep(6)
        assert postgres_server.start().returncode == 0
        outage = time.time() - started
        outputs = [w.communicate(timeout=240)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    assert not any("resuming" in out for out in outputs), "\n".join(outputs)  # no trial started over elsewhere
    study = optuna.load_study(study_name="blip-test", storage=open_storage(postgres_server.url))
    c = check_shared_study(study, n_trials, course_dataset)
    print(f"server down {outage:.1f} s under 2 workers; both finished; {c}")


def test_trial_without_a_heartbeat_row_on_postgres_is_failed_and_retried(postgres_server, course_dataset, tmp_path):  # noqa: F811
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=1), space=TINY)
    study = tuning.study_for(objective, course_dir=tmp_path, storage=postgres_server.url,
                             study_name="silent-pg", pruner=optuna.pruners.NopPruner())
    dead = study.ask()  # a worker that got its trial and died before the first heartbeat row
    objective.make_config(dead)
    objective.make_model(dead)
    config = StorageConfig.default()
    time.sleep(config.grace_period + 0.5)
    report = tuning.run_worker(study, objective, n_trials=1, verbose=False, config=config)
    assert report.finished == 1
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and HEARTBEAT_ATTR not in trials[0].user_attrs
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == 0]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[0].params


def test_workers_on_mariadb_finish_exactly_the_requested_trials(mysql_url, course_dataset, tmp_path):  # noqa: F811
    n_trials = env.TEST_MODE_LIMITS.trials
    args = ["--storage", mysql_url, "--study", "mysql-test", "--n-trials", str(n_trials),
            "--course-dir", str(tmp_path)]
    workers = [worker(args) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    study = optuna.load_study(study_name="mysql-test", storage=open_storage(mysql_url))
    c = check_shared_study(study, n_trials, course_dataset)
    print(f"MariaDB, 2 workers: {c}")
