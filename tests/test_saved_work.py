"""Saved work survives: a run folder, a journal study and a PostgreSQL study written by v0.1 of the
course (``tests/fixtures/v0_1``, see its README) load, resume and reload their best trial with
today's code, through the commands and functions users call.

Every test works on a copy in its own temporary folder (the fixtures are never written to). The
studies' trials recorded absolute run-folder paths of the machine that made them, which do not exist
here: their checkpoints are found again in the copied course folder (``tuning.relocate_run_dir``).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from MyModules import env, tuning
from MyModules.checkpoint import has_checkpoint
from MyModules.data import CIFAR10_CLASSES, load_dataset
from MyModules.errors import TuningError
from MyModules.runs.inference import load_model, predict
from MyModules.train import TrainConfig
from MyModules.tuning import results as study_results
from MyModules.tuning.storage import (
    OLD_RUN_DIR_ATTR,
    RESUME_FROM_ATTR,
    RETRY_OF_ATTR,
    RUN_DIR_ATTR,
    StorageConfig,
    enqueue_retry,
    open_storage,
    recorded_run_dir,
)
from tests.support.pg import find_client, postgres_server  # noqa: F401  (pytest fixture)
from tests.support.runs import in_process, native_test_images, trained_run, write_pngs
from tests.support.tuning import TINY, TINY_ARGS

optuna.logging.set_verbosity(optuna.logging.WARNING)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1"
RUN = "net-synthetic-killed"  # run/runs/<RUN>: 2 epochs planned, SIGKILL during epoch 2
STUDY = "study-cifar10-test-94333982"  # the name `tune` derived from the search (the same in both studies)


def course_copy(name: str, tmp_path: Path) -> Path:
    """A copy of the fixture course folder ``name`` (run, journal, postgres) to work on."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(path, encoding="utf-8")))


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The test-mode data folder of this worker (generated data, identical to the fixtures' own)."""
    return env.setup(verbose=False).data_dir


@pytest.fixture(scope="module")
def dataset(data_dir):
    return load_dataset("cifar10", data_dir)


def test_v0_1_run_folder_inspects_predicts_and_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    whole = trained_run("synthetic")  # the same command (net, synthetic, 2 epochs, batch 32, --no-amp), not killed
    course = course_copy("run", tmp_path)
    monkeypatch.setenv("COURSE_DIR", str(course))  # the user's course folder is the copied one
    run = course / "runs" / RUN
    saved = rows(run / "metrics.csv")
    assert [r["epoch"] for r in saved] == ["1"] and not (run / "summary.json").exists()

    result = in_process("inspect", run, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["state"] == "interrupted" and (info["epochs_done"], info["epochs_planned"]) == (1, 2)
    assert (info["model"], info["dataset"], info["classes"]) == ("net", "synthetic", list(CIFAR10_CLASSES))
    assert info["num_parameters"] == 62006 and info["precision"] == "fp32"

    # The epoch-1 weights, through the preprocessing of the test set: image files give the model's
    # answers on the test tensors, and the test set gives the accuracy fit measured after epoch 1.
    loaded = load_model(run)
    assert loaded.epoch == 1 and loaded.classes == list(CIFAR10_CLASSES)
    test = load_dataset("synthetic", None).test
    probabilities = loaded.probabilities(test.images)
    accuracy = 100.0 * (probabilities.argmax(1) == test.labels).double().mean().item()
    assert accuracy == pytest.approx(float(saved[0]["test_accuracy"]), abs=1e-4)
    paths = write_pngs(tmp_path / "images", native_test_images("synthetic")[0][:16])
    predicted = [p.top[0][0] for p in predict(loaded, paths)]
    assert predicted == [loaded.classes[i] for i in probabilities[:16].argmax(1).tolist()]

    result = in_process("train", "--resume", "--out", run, "--no-progress", "--no-plots")
    assert result.returncode == 0, result.stderr
    assert f"resuming {RUN} after epoch 1/2" in result.stdout
    resumed, reference = rows(run / "metrics.csv"), rows(whole / "metrics.csv")
    assert resumed[0] == saved[0]  # epoch 1 kept as it was written
    # Resuming repeats the uninterrupted run exactly (RNG states in the checkpoint): the same numbers.
    for mine, theirs in zip(resumed, reference, strict=True):
        for key in ("train_loss", "test_loss"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-3), (key, mine, theirs)
        for key in ("train_accuracy", "test_accuracy"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), abs=0.25), (key, mine, theirs)  # 1 image
    info = json.loads(in_process("inspect", run, "--json").stdout)
    assert info["state"] == "finished" and info["epochs_done"] == 2 and len(info["history"]) == 2


def check_study(study: optuna.Study, course: Path, dataset) -> None:
    """The v0.1 study as it was written, and every trial's model back from its relocated run folder."""
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:  # v0.1 recorded the run folder as "checkpoint"; today's trials write "run_dir"
        assert OLD_RUN_DIR_ATTR == "checkpoint" and RUN_DIR_ATTR not in t.user_attrs
        recorded = Path(t.user_attrs[OLD_RUN_DIR_ATTR])
        assert not recorded.exists() and recorded.parts[-2:] == (STUDY, f"trial-{t.number:04d}")
        assert recorded_run_dir(t) == str(recorded)
    # The trials table of today's code says what v0.1's table said.
    written = rows(course / "studies" / f"{STUDY}-trials.csv")
    table = study_results.trials_table(study)
    assert [(int(r["number"]), r["state"], float(r["value"])) for r in written] == [
        (int(n), s, float(v)) for n, s, v in zip(table["number"], table["state"], table["value"])]
    assert list(table["run_dir"]) == [t.user_attrs[OLD_RUN_DIR_ATTR] for t in trials]  # the old attribute, read
    best = tuning.best_trial(study)
    assert best.number == max(trials, key=lambda t: t.value).number
    assert tuning.recorded_run_dir(best) == best.user_attrs[OLD_RUN_DIR_ATTR]  # found via the old attribute
    for t in trials:  # the best one and the others: each model scores what its trial reported
        model = tuning.load_trial_model(t, dataset.num_classes, space=TINY, device="cpu")
        assert tuning.evaluate_trial_model(model, dataset, "cpu") == pytest.approx(t.value, abs=1e-9)


def test_v0_1_journal_study_opens_and_its_trials_models_reload_and_score_their_values(tmp_path, monkeypatch,
                                                                                        dataset):
    course = course_copy("journal", tmp_path)
    monkeypatch.setenv("COURSE_DIR", str(course))  # the Drive folder, downloaded to another machine
    storage = open_storage(course / "studies" / f"{STUDY}.journal")
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [STUDY]
    check_study(optuna.load_study(study_name=STUDY, storage=storage), course, dataset)


def test_the_same_tune_command_continues_the_v0_1_journal_study(tmp_path, monkeypatch, data_dir):
    """A student who lost the runtime runs the same command again after a course update: it must find
    the same study (the name is derived from the search), which already holds its 3 trials."""
    course = course_copy("journal", tmp_path)
    monkeypatch.setenv("COURSE_DIR", str(course))
    result = in_process("tune", "--dataset", "cifar10", "--epochs", "2", *TINY_ARGS, "--data-root", data_dir)
    assert result.returncode == 0, result.stderr
    assert f"study {STUDY} (journal: {course / 'studies' / STUDY}.journal)" in result.stdout
    assert f"{STUDY}: 3/3 trials finished; this worker ran 0" in result.stdout


def test_v0_1_postgres_dump_restores_into_a_fresh_server_and_its_trials_reload(tmp_path, monkeypatch, dataset,
                                                                               postgres_server):  # noqa: F811
    psql = find_client("psql")
    if psql is None:
        pytest.skip("psql is not installed (Debian: apt-get install postgresql-client)")
    course = course_copy("postgres", tmp_path)
    monkeypatch.setenv("COURSE_DIR", str(course))
    connect = [str(psql), "-v", "ON_ERROR_STOP=1", "-q", "-h", "127.0.0.1", "-p", str(postgres_server.port),
               "-U", "postgres"]
    for command in (["-d", "postgres", "-c", "CREATE DATABASE v0_1"], ["-d", "v0_1", "-f", str(course / "study.sql")]):
        done = subprocess.run(connect + command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    storage = open_storage(postgres_server.url.rsplit("/", 1)[0] + "/v0_1")
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [STUDY]
    check_study(optuna.load_study(study_name=STUDY, storage=storage), course, dataset)


def test_a_copied_study_finds_its_run_folders_or_names_the_missing_one(tmp_path, monkeypatch, dataset):
    """Relocation: the recorded folder, else ``<study>/trial-NNNN`` under runs_dir (e.g. next to the
    journal) or the course folder's runs/; else one message naming the folder and where it looked."""
    course = course_copy("journal", tmp_path)
    empty = tmp_path / "another-course"
    monkeypatch.setenv("COURSE_DIR", str(empty))  # the study was copied, the course folder is elsewhere
    study = optuna.load_study(study_name=STUDY, storage=open_storage(course / "studies" / f"{STUDY}.journal"))
    best = tuning.best_trial(study)
    with pytest.raises(TuningError) as caught:
        tuning.load_trial_model(best, dataset.num_classes, space=TINY)
    message = str(caught.value)
    assert best.user_attrs[OLD_RUN_DIR_ATTR] in message and best.user_attrs["host"] in message
    assert str(empty / "runs" / STUDY / f"trial-{best.number:04d}") in message and "runs_dir=" in message
    journal = course / "studies" / f"{STUDY}.journal"
    model = tuning.load_trial_model(best, dataset.num_classes, space=TINY, runs_dir=journal.parent.parent / "runs")
    assert tuning.evaluate_trial_model(model, dataset, "cpu") == pytest.approx(best.value, abs=1e-9)
    # A checkpoint recorded as a file (studies of versions before v0.1) is relocated with its folder.
    file = Path(best.user_attrs[OLD_RUN_DIR_ATTR]) / "checkpoint-b.pt"
    assert tuning.relocate_run_dir(file, (course / "runs",)) == course / "runs" / STUDY / file.parent.name / file.name

    # A retry queued in the copied study continues from the earlier attempt's relocated checkpoint:
    # trial 0 had finished both epochs, so its retry trains nothing and reports trial 0's curve.
    monkeypatch.setenv("COURSE_DIR", str(course))
    first = study.trials[0]
    assert enqueue_retry(study, first, StorageConfig.default(), "copied to another machine")
    assert study.trials[-1].user_attrs[RESUME_FROM_ATTR] == first.user_attrs[OLD_RUN_DIR_ATTR]  # read the old name
    objective = tuning.Objective(dataset, "cpu", course / "runs", base=TrainConfig(epochs=2, seed=0), space=TINY)
    study.optimize(objective, n_trials=1)  # the queued retry first
    retry = study.trials[-1]
    assert retry.user_attrs[RETRY_OF_ATTR] == 0 and retry.state == TrialState.COMPLETE
    assert retry.intermediate_values == first.intermediate_values and retry.value == first.value
    assert has_checkpoint(course / "runs" / STUDY / f"trial-{retry.number:04d}")  # its own copy
    assert retry.user_attrs[RUN_DIR_ATTR] == str(course / "runs" / STUDY / f"trial-{retry.number:04d}")  # new name
