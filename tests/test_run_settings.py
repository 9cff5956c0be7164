"""One place for a run's settings: one file per run folder (run.json), one reader (which understands
v0.1's three files too), and one resume check for ``fit(resume=True)`` and ``train --resume`` alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from MyModules import run_folder
from MyModules.__main__ import main
from MyModules.checkpoint import SLOTS, load_checkpoint
from MyModules.errors import ConfigError
from MyModules.loader import make_loaders
from MyModules.models import Net
from MyModules.run_folder import RunSettings, read_settings, resume_conflicts
from MyModules.train import TrainConfig, fit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1"
V0_1_RUN = FIXTURES / "run" / "runs" / "net-synthetic-killed"
V0_1_TRIAL = FIXTURES / "journal" / "runs" / "study-cifar10-test-94333982" / "trial-0000"
QUICK = ["--dataset", "synthetic", "--no-progress", "--no-plots", "--no-tensorboard", "--max-steps", "2"]
CONFIG = TrainConfig(epochs=1, max_steps_per_epoch=2)


def settings_files(run_dir: Path) -> list[str]:
    """The files of ``run_dir`` that record settings: run.json, and v0.1's config.json if it is there."""
    return sorted(p.name for p in run_dir.iterdir() if p.name in (run_folder.SETTINGS_FILE, "config.json"))


def cli_run(run_dir: Path, *extra: str) -> None:
    assert main(["train", *QUICK, "--epochs", "1", "--out", str(run_dir), *extra]) == 0


def fit_run(dataset, run_dir: Path, config: TrainConfig = CONFIG, resume: bool = False, **kwargs):
    train_loader, test_loader = make_loaders(dataset, 64, "cpu")
    return fit(Net(), train_loader, test_loader, config, "cpu", run_dir=run_dir, resume=resume, progress=False,
               **kwargs)


# --- one file, written once ----------------------------------------------------------------------------

def test_a_run_from_fit_has_one_settings_file_and_a_summary_without_settings(dataset, tmp_path):
    result = fit_run(dataset, tmp_path / "run", info={"model": "net", "dataset": "synthetic"})
    run = tmp_path / "run"
    assert settings_files(run) == ["run.json"]
    settings = read_settings(run)
    assert settings.source == "run.json" and settings.command_line is None  # nothing asked on a command line
    assert settings.config["augment"] == "crop-flip"  # as fit resolved it ("auto" was asked)
    assert settings.config["epochs"] == 1 and settings.info == {"model": "net", "dataset": "synthetic"}
    summary = json.loads((run / "summary.json").read_text())
    assert "config" not in summary and summary == result.summary
    assert summary["test_accuracy"] == result.history[-1]["test_accuracy"]


def test_a_run_from_the_command_line_has_one_settings_file_with_what_was_asked_and_resolved(tmp_path):
    run = tmp_path / "run"
    cli_run(run, "--momentum", "0.8")
    assert settings_files(run) == ["run.json"]
    saved = json.loads((run / "run.json").read_text())
    assert set(saved) == {"format", "command_line", "config", "info"}
    asked, resolved = saved["command_line"], saved["config"]
    assert asked["momentum"] == resolved["momentum"] == 0.8 and asked["dataset"] == "synthetic"
    assert (asked["augment"], resolved["augment"]) == ("auto", "crop-flip")
    assert "out" not in asked and "resume" not in asked  # the folder itself and this invocation
    assert saved["info"] == {"model": "net", "dataset": "synthetic"}
    assert "config" not in json.loads((run / "summary.json").read_text())


def test_resume_rewrites_run_json_only_when_an_allowed_setting_changed(dataset, tmp_path):
    run = tmp_path / "run"
    fit_run(dataset, run, TrainConfig(epochs=2, max_steps_per_epoch=2))
    before = (run / "run.json").read_bytes()
    (run / "run.json").touch()
    stamp = (run / "run.json").stat().st_mtime_ns
    fit_run(dataset, run, TrainConfig(epochs=2, max_steps_per_epoch=2), resume=True)
    assert (run / "run.json").read_bytes() == before and (run / "run.json").stat().st_mtime_ns == stamp
    fit_run(dataset, run, TrainConfig(epochs=2, max_steps_per_epoch=2, log_every=7), resume=True)
    assert read_settings(run).config["log_every"] == 7  # allowed, and recorded


# --- one reader, both layouts ----------------------------------------------------------------------------

def test_the_reader_reads_a_v0_1_command_line_run(tmp_path):
    run = Path(shutil.copytree(V0_1_RUN, tmp_path / "run"))
    settings = read_settings(run, load_checkpoint(run))
    assert settings.source == "v0.1 files"
    assert settings.command_line["max_steps_per_epoch"] is None and "max_steps" not in settings.command_line
    assert settings.command_line["model"] == "net" and settings.command_line["dataset"] == "synthetic"
    assert (settings.config["epochs"], settings.config["batch_size"], settings.config["amp"]) == (2, 32, False)
    # v0.1 recorded augment="auto" as asked and never finished (no summary): the rule by dataset says what it did.
    assert settings.config["augment"] == "crop-flip"
    assert settings.info == {"model": "net", "dataset": "synthetic"}  # fit's info, from the checkpoint


def test_the_reader_reads_a_v0_1_trial_and_a_checkpoint_alone(tmp_path):
    trial = Path(shutil.copytree(V0_1_TRIAL, tmp_path / "trial"))
    settings = read_settings(trial, load_checkpoint(trial))
    assert settings.source == "v0.1 files" and settings.command_line is None
    assert settings.config["batch_size"] == 16 and settings.config["augment"] == "crop-flip"  # from summary.json
    assert settings.info["study"] == "study-cifar10-test-94333982" and settings.info["trial"] == 0
    alone = tmp_path / "alone"  # what an Optuna retry starts from: the newest checkpoint only
    alone.mkdir()
    shutil.copy(trial / SLOTS[0], alone / SLOTS[0])
    assert read_settings(alone) is None  # nothing to read without the checkpoint
    settings = read_settings(alone, load_checkpoint(alone))
    assert settings.source == "checkpoint" and settings.config["batch_size"] == 16
    assert "augment" not in settings.config  # v0.1's "auto" says what was asked, not what was done


def test_the_reader_reads_todays_layout_and_refuses_a_damaged_file(dataset, tmp_path):
    run = tmp_path / "run"
    fit_run(dataset, run, info={"dataset": "synthetic"})
    assert read_settings(run) == RunSettings(read_settings(run).config, {"dataset": "synthetic"}, None)
    (run / "run.json").write_text("{not json")
    with pytest.raises(run_folder.RunFolderError, match="run.json.*damaged"):
        read_settings(run)
    assert read_settings(tmp_path / "empty-folder") is None


def test_resuming_a_v0_1_run_leaves_one_settings_file(tmp_path, monkeypatch):
    course = Path(shutil.copytree(FIXTURES / "run", tmp_path / "course"))
    monkeypatch.setenv("COURSE_DIR", str(course))
    run = course / "runs" / "net-synthetic-killed"
    assert settings_files(run) == ["config.json", "run.json"]
    assert main(["train", "--resume", "--out", str(run), "--no-progress", "--no-plots", "--no-tensorboard"]) == 0
    assert settings_files(run) == ["run.json"]
    settings = read_settings(run)
    assert settings.source == "run.json" and settings.config["batch_size"] == 32
    assert settings.command_line["max_steps_per_epoch"] is None and settings.command_line["model"] == "net"


# --- one resume check ------------------------------------------------------------------------------------

def test_resume_conflicts_compares_what_both_sides_recorded_except_what_may_change():
    saved = RunSettings({"epochs": 2, "momentum": 0.9, "log_every": 50}, {"model": "net", "trial": 0},
                        {"epochs": 2, "device": None, "data_root": "/data"})
    same = RunSettings({"epochs": 2, "momentum": 0.9, "log_every": 5}, {"model": "net", "trial": 4},
                       {"device": "cuda"})
    assert resume_conflicts(saved, same) == []
    changed = RunSettings({"epochs": 3, "momentum": 0.8}, {"model": "widenet"}, {"data_root": "/elsewhere"})
    assert [(c.part, c.key, c.saved, c.now) for c in resume_conflicts(saved, changed)] == [
        ("command_line", "data_root", "/data", "/elsewhere"), ("config", "epochs", 2, 3),
        ("config", "momentum", 0.9, 0.8), ("info", "model", "net", "widenet")]
    assert resume_conflicts(RunSettings({}), changed) == []  # nothing recorded: nothing to refuse


def test_fit_resume_refuses_a_changed_plan_key_and_allows_an_allowed_one(dataset, tmp_path):
    run = tmp_path / "run"
    fit_run(dataset, run)
    with pytest.raises(ConfigError, match=r"batch_size=128 \(now 64\).*same settings"):
        fit_run(dataset, run, TrainConfig(epochs=1, max_steps_per_epoch=2, batch_size=64), resume=True)
    with pytest.raises(ConfigError, match=r"momentum=0.9 \(now 0.5\)"):  # not the plan, but what each step does
        fit_run(dataset, run, TrainConfig(epochs=1, max_steps_per_epoch=2, momentum=0.5), resume=True)
    fit_run(dataset, run, TrainConfig(epochs=1, max_steps_per_epoch=2, log_every=3), resume=True)


def test_cli_resume_refuses_a_changed_plan_key_and_allows_an_allowed_one(tmp_path, capsys):
    run = tmp_path / "run"
    cli_run(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--lr", "0.1", "--no-progress"]) == 2
    assert "run was started with --lr 0.015 (given 0.1)" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(run), "--no-fast", "--workers", "0", "--device", "cpu",
                 "--no-progress", "--no-plots"]) == 0
    assert read_settings(run).command_line["fast"] is False  # allowed, and recorded


def test_one_table_decides_for_fit_and_for_the_command_line(dataset, tmp_path, monkeypatch):
    """RESUME_MAY_CHANGE is the only table: let it allow another momentum, and both ways of resuming do."""
    monkeypatch.setattr(run_folder, "RESUME_MAY_CHANGE", run_folder.RESUME_MAY_CHANGE | {"momentum"})
    fit_run(dataset, tmp_path / "fit", TrainConfig(epochs=2, max_steps_per_epoch=2))
    fit_run(dataset, tmp_path / "fit", TrainConfig(epochs=2, max_steps_per_epoch=2, momentum=0.5), resume=True)
    assert read_settings(tmp_path / "fit").config["momentum"] == 0.5
    cli_run(tmp_path / "cli")
    assert main(["train", "--resume", "--out", str(tmp_path / "cli"), "--momentum", "0.5", "--no-progress",
                 "--no-plots", "--no-tensorboard"]) == 0
    assert read_settings(tmp_path / "cli").command_line["momentum"] == 0.5
