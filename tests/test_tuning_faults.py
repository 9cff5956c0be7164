"""Session 3 under real faults on the journal storage: a torn journal, a frozen worker (SIGSTOP past
the grace period, then SIGCONT), a trial that died before its first heartbeat, Ctrl-C (SIGINT) and a
restart, and two identical commands that must give identical trials.

Worker processes are real ``python -m MyModules tune`` processes in test mode (heartbeat 1 s, grace 4 s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from MyModules import env, tuning
from MyModules.data import load_dataset
from MyModules.train import TrainConfig
from MyModules.tuning.space import suggest_config, suggest_model
from MyModules.tuning.storage import (
    FAIL_REASON_ATTR,
    HEARTBEAT_ATTR,
    RETRY_OF_ATTR,
    Heartbeat,
    StorageConfig,
    default_study_name,
    fail_stale_trials,
    open_storage,
    open_study,
)
from tests.support.tuning import ROOT, TINY, counts, wait_for, worker

optuna.logging.set_verbosity(optuna.logging.WARNING)




def load(journal: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(journal))


def running_with_epochs(journal: Path, name: str, epochs: int = 1):
    """The RUNNING trials that have reported at least ``epochs`` epochs."""
    study = load(journal, name)
    return [t for t in study.get_trials() if t.state == TrialState.RUNNING and len(t.intermediate_values) >= epochs]


def test_torn_journal_tail_is_set_aside_and_every_complete_operation_stays(tmp_path, course_dataset, capfd):
    objective = tuning.Objective(course_dataset, "cpu", tmp_path / "runs", base=TrainConfig(epochs=1), space=TINY)
    study = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    tuning.run_worker(study, objective, n_trials=2, verbose=False)
    journal = tmp_path / "studies" / f"{study.study_name}.journal"
    whole = journal.read_bytes()
    lines = whole.splitlines(keepends=True)
    # A worker killed while appending (or a full disk) leaves the first part of a line, no newline.
    torn = lines[-1][: len(lines[-1]) // 2]
    journal.write_bytes(whole + torn)
    capfd.readouterr()
    again = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    err = capfd.readouterr().err
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 2
    assert [t.value for t in again.trials] == [t.value for t in study.trials]
    report = [line for line in err.splitlines() if "torn" in line]
    assert len(report) == 1 and str(journal) in report[0] and f"{len(torn)} bytes" in report[0], err
    repaired = journal.read_bytes()  # cut back to the last complete operation, then appended to
    assert repaired.startswith(whole) and all(json.loads(line) for line in repaired.splitlines())
    assert Path(f"{journal}.torn").read_bytes() == torn + b"\n"  # kept aside, not thrown away
    # The study goes on, and Optuna's own reader (what optuna-dashboard uses) opens the file too.
    tuning.run_worker(again, objective, n_trials=3, verbose=False)
    plain = optuna.load_study(study_name=study.study_name,
                              storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal))))
    assert counts(plain)["COMPLETE"] == 3

    # A torn line another (older) writer appended after: the glued complete operation is kept.
    whole = journal.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    glued = whole[: -len(last)] + b'{"op_code":5,"worker_id":"x' + last
    journal.write_bytes(glued)
    capfd.readouterr()
    third = tuning.study_for(objective, course_dir=tmp_path, pruner=optuna.pruners.NopPruner())
    assert "torn" in capfd.readouterr().err
    assert journal.read_bytes().startswith(whole) and counts(third)["COMPLETE"] == 3


WIDE = dataclasses.replace(TINY, widths=(128,))  # the space of the workers given --widths 128


def test_frozen_worker_wakes_up_and_cannot_touch_the_retry_results(tmp_path, course_dataset):
    journal, name = tmp_path / "zombie.journal", "zombie-test"
    # Wider layers than TINY's: an epoch then takes long enough (~1 s) to be caught between two reports.
    args = ["--storage", str(journal), "--study", name, "--n-trials", "2", "--pruner", "none",
            "--course-dir", str(tmp_path / "course"), "--widths", "128"]
    first = worker(args, epochs=2)
    frozen = None
    try:
        while frozen is None:
            (trial,) = wait_for(lambda: running_with_epochs(journal, name), "a trial's first epoch", process=first)
            os.kill(first.pid, signal.SIGSTOP)  # a frozen Colab tab: alive, silent
            if Path(f"{journal}.lock").exists():  # frozen while appending: let it finish the line
                os.kill(first.pid, signal.SIGCONT)
                time.sleep(0.01)
                continue
            frozen = load(journal, name).trials[trial.number]
        second = worker(args, epochs=2)
        retry = wait_for(lambda: [t for t in load(journal, name).get_trials()
                                  if t.user_attrs.get(RETRY_OF_ATTR) == frozen.number and t.state.is_finished()],
                         "the retry of the frozen trial to finish", timeout=180, process=second)[0]
        os.kill(first.pid, signal.SIGCONT)  # wakes up past the grace period, mid-epoch of a dead trial
        out_second, _ = second.communicate(timeout=180)
        out_first, _ = first.communicate(timeout=60)
    finally:
        for p in (first, *(locals().get("second"),)):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    study = load(journal, name)
    assert study.trials[frozen.number].state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE and retry.params == frozen.params
    assert retry.user_attrs["run_dir"] != frozen.user_attrs["run_dir"]  # its own folder
    assert sorted(retry.intermediate_values) == [1, 2]  # the whole curve, the start from the frozen attempt
    assert all(retry.intermediate_values[e] == v for e, v in frozen.intermediate_values.items())
    # The woken worker saw that the trial is no longer its own, and wrote nothing into the retry.
    assert "declared dead by another worker" in out_first, out_first
    best = tuning.best_trial(study)
    course = env.setup(verbose=False)
    data = load_dataset("cifar10", course.data_dir)
    for trial in (retry, best):
        model = tuning.load_trial_model(trial, data.num_classes, space=WIDE, device="cpu")
        assert tuning.evaluate_trial_model(model, data, "cpu") == pytest.approx(trial.value, abs=1e-9)
    c = counts(study)
    assert c["COMPLETE"] + c["PRUNED"] == 2 and c["RUNNING"] == 0 and c["WAITING"] == 0, c
    print(f"frozen trial {frozen.number} after epoch 1; retry {retry.number} reloads at {retry.value:.2f} % "
          f"(recorded {retry.value:.2f} %); best {best.number} at {best.value:.2f} %; final {c}")


def test_trial_that_died_before_its_first_heartbeat_is_failed_and_retried(tmp_path):
    # A process (in Japan: local time 9 h ahead of UTC) creates a trial and dies before any heartbeat.
    journal, name = tmp_path / "silent.journal", "silent-test"
    tz = {**os.environ, "TZ": "Asia/Tokyo"}
    code = ("import optuna, sys; from MyModules.tuning.storage import open_storage;"
            "s = optuna.create_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]), direction='maximize');"
            "t = s.ask(); t.suggest_float('lr', 1e-4, 1e-1, log=True); print(t.number)")
    done = subprocess.run([sys.executable, "-c", code, str(journal), name], cwd=ROOT, env=tz,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (silent,) = load(journal, name).trials
    assert silent.state == TrialState.RUNNING and HEARTBEAT_ATTR not in silent.user_attrs
    time.sleep(StorageConfig.default().grace_period + 0.5)
    # The worker checking it also runs in Japan: datetime_start is local time, not UTC.
    code = ("import optuna, sys; from MyModules.tuning.storage import open_storage, fail_stale_trials, StorageConfig;"
            "s = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]));"
            "print(fail_stale_trials(s, StorageConfig.default()))")
    done = subprocess.run([sys.executable, "-c", code, str(journal), name], cwd=ROOT, env=tz,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith("[0]"), done.stdout + done.stderr
    study = load(journal, name)
    assert study.trials[0].state == TrialState.FAIL
    (retry,) = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == 0]
    assert retry.state == TrialState.WAITING and retry.params == {} and retry.user_attrs["retries"] == 1


def test_ctrl_c_then_the_same_command_retries_the_interrupted_trial(tmp_path, course_dataset):
    journal, name = tmp_path / "int.journal", "interrupt-test"
    # Wider layers than TINY's: an epoch then takes long enough (~1 s) to be caught between two reports.
    args = ["--storage", str(journal), "--study", name, "--n-trials", "2", "--pruner", "none",
            "--course-dir", str(tmp_path / "course"), "--widths", "128"]
    first = worker(args, epochs=2)
    (trial,) = wait_for(lambda: running_with_epochs(journal, name), "a trial's first epoch", process=first)
    first.send_signal(signal.SIGINT)  # Ctrl-C in a terminal
    out, _ = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGINT, out  # as Python ends a Ctrl-C: a shell stops its script
    said = [line for line in out.splitlines() if line.startswith("interrupted")]
    assert len(said) == 1 and "continue with: python -m MyModules tune" in said[0] and str(journal) in said[0], out
    stopped = load(journal, name).trials[trial.number]
    assert stopped.state == TrialState.FAIL and "interrupted" in stopped.user_attrs[FAIL_REASON_ATTR]

    second = worker(args, epochs=2)
    out, _ = second.communicate(timeout=180)
    assert second.returncode == 0, out
    study = load(journal, name)
    (retry,) = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == trial.number]
    assert retry.state == TrialState.COMPLETE and retry.params == stopped.params
    assert sorted(retry.intermediate_values) == [1, 2]  # the whole history, no gap
    for epoch, value in stopped.intermediate_values.items():
        assert retry.intermediate_values[epoch] == value
    assert f"resuming trial-{retry.number:04d} after epoch" in out
    c = counts(study)
    assert c["COMPLETE"] == 2 and c["FAIL"] == 1 and c["RUNNING"] == c["WAITING"] == 0, c


def test_two_identical_commands_on_fresh_storages_give_identical_trials(tmp_path):
    runs = []
    for k in range(2):
        args = ["--storage", str(tmp_path / f"r{k}.journal"), "--study", "repro", "--n-trials", "3",
                "--seed", "7", "--course-dir", str(tmp_path / f"course{k}")]
        runs.append(worker(args, epochs=2))
    outs = [p.communicate(timeout=240)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], "\n".join(outs)
    studies = [load(tmp_path / f"r{k}.journal", "repro") for k in range(2)]
    seen = [[(t.state, t.params, t.value, t.intermediate_values) for t in s.trials] for s in studies]
    assert seen[0] == seen[1] and len(seen[0]) == 3
    assert len({json.dumps(t.params, sort_keys=True) for t in studies[0].trials}) == 3  # the sampler did sample
    print("values:", [round(t.value, 3) for t in studies[0].trials])


def test_heartbeat_keeps_a_long_trial_alive_and_its_silence_gets_it_retried(tmp_path):
    config = StorageConfig(heartbeat_interval=0.3, grace_period=1.5)
    journal = tmp_path / "hb.journal"
    study = open_study(open_storage(journal, config=config), "hb", {"x": 1})
    trial = study.ask()
    trial.suggest_int("width", 8, 8)
    watcher = optuna.load_study(study_name="hb", storage=open_storage(journal, config=config))
    with Heartbeat(trial, config) as beat:
        time.sleep(2 * config.grace_period)  # a trial longer than the grace period, still alive
        assert fail_stale_trials(watcher, config) == []
        assert watcher.trials[0].state == TrialState.RUNNING
    assert beat.beats >= 4
    time.sleep(config.grace_period + 0.3)  # now silent: its worker is gone
    assert fail_stale_trials(watcher, config) == [0]
    assert fail_stale_trials(watcher, config) == []  # failed once, retried once
    trials = watcher.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert [(t.state, t.user_attrs[RETRY_OF_ATTR]) for t in trials[1:]] == [(TrialState.WAITING, 0)]


def test_run_worker_beats_for_a_trial_that_trains_longer_than_the_grace_period(tmp_path):
    config = StorageConfig(heartbeat_interval=0.3, grace_period=1.5)
    journal = tmp_path / "long.journal"
    study = open_study(open_storage(journal, config=config), "long", {"x": 2})
    watcher = optuna.load_study(study_name="long", storage=open_storage(journal, config=config))

    def objective(trial):  # no epochs, no reports: only the heartbeat thread shows it is alive
        trial.suggest_int("width", 8, 8)
        time.sleep(2.5 * config.grace_period)
        return 1.0

    worker_thread = threading.Thread(target=tuning.run_worker, args=(study, objective, 1),
                                     kwargs={"verbose": False, "config": config})
    worker_thread.start()
    judged = []
    try:
        wait_for(lambda: watcher.get_trials(), "the trial to start", timeout=30)
        for _ in range(3):
            time.sleep(config.grace_period * 0.7)
            judged += fail_stale_trials(watcher, config)
    finally:
        worker_thread.join(timeout=30)
    assert judged == [] and [t.state for t in watcher.get_trials()] == [TrialState.COMPLETE]


def test_study_name_follows_your_own_functions(tmp_path, course_dataset):
    def config_a(trial, base):
        return suggest_config(trial, TINY, base)

    def model(trial, num_classes):
        return suggest_model(trial, TINY, num_classes)

    model_a = model

    def model(trial, num_classes):  # noqa: F811  (the same function, edited)
        # A comment and a docstring do not change the study.
        """Docstring."""
        return suggest_model(trial, TINY, num_classes)

    model_b = model

    def model(trial, num_classes):  # noqa: F811  (edited code: a new study)
        return suggest_model(trial, TINY, num_classes + 0)

    model_c = model

    def name(**kw):
        o = tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=1), space=None,
                             suggest_config=config_a, **kw)
        return default_study_name(o.identity())

    assert name(build_model=model_a) == name(build_model=model_b)
    assert name(build_model=model_a) != name(build_model=model_c)
    default = default_study_name(tuning.Objective(course_dataset, "cpu", tmp_path, base=TrainConfig(epochs=1),
                                                  space=TINY).identity())
    assert default not in (name(build_model=model_a), name(build_model=model_c))
