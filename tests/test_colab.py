"""The student's path in Colab: setup cell, a Drive that dies, old copies of MyModules, the flush.

Every student notebook also runs top to bottom in the emulated Colab (conftest.py, ``ColabRun``).
The tests here run the real setup and finish cells (``tools/notebooks.py``) cell by cell in the
emulated runtime (``tests/support/colab.py``: a real kernel, a real FUSE mount killed with SIGKILL
for a dead Drive, ``google.colab.drive`` as Colab documents it) and check what a student sees.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.support.colab import EmulatedColab, Session, errors, fuse_available, outputs_text, walk

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course_notebooks_tool_colab", REPO / "tools" / "notebooks.py")
nbtool = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = nbtool
spec.loader.exec_module(nbtool)


def test_this_machine_can_mount_the_emulated_drive():
    assert fuse_available(), "the emulated Drive is a FUSE mount: run as root with /dev/fuse (.ci/run installs fuse)"

TRAIN = """\
from MyModules import data, loader, models, train

dataset = data.load_dataset("cifar10", course.data_dir)
train_loader, test_loader = loader.make_loaders(dataset, batch_size=64, device=course.device)
run_dir = train.new_run_dir(course.runs_dir, "colab-test")
result = train.fit(models.Net(), train_loader, test_loader, train.TrainConfig(epochs=2), course.device,
                   run_dir=run_dir, classes=dataset.classes{callbacks})
print("epochs:", len(result.history), "| run:", run_dir.name)"""

# A callback that kills Drive's client in the middle of the first epoch (as a Colab disconnect does).
KILL_DRIVE_IN_EPOCH_1 = """\
import os
import signal


class KillDrive(train.Callback):
    killed = False

    def on_log(self, step, metrics):
        if not self.killed:
            pid = int((Path(os.environ["COLAB_EMULATION_DIR"]) / "drivefs.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            KillDrive.killed = True
"""


def notebook(*cells: str):
    """A notebook of ``cells`` between the course's real setup cell and finish cell."""
    nb = new_notebook(cells=[new_markdown_cell("# 99_01 test"), new_code_cell("# setup"),
                             *[new_code_cell(c) for c in cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    built = nbtool.with_setup(json.loads(nbformat.writes(nb)))
    return nbformat.reads(nbtool.dump(built), as_version=4)


@pytest.fixture
def colab(tmp_path):
    runtime = EmulatedColab(tmp_path)
    yield runtime
    runtime.close()


def mounts(colab) -> list[bool]:
    return [c["force_remount"] for c in colab.calls() if c["call"] == "mount"]


def one_sentence(cell) -> str:
    """The error a cell stopped with, asserting it shows as one line (no traceback)."""
    [error] = errors(cell)
    assert len(error.traceback) == 1 and "Traceback" not in error.traceback[0], error.traceback
    return error.traceback[0]


def test_a_dead_drive_before_the_setup_cell_is_rerun_is_mounted_again(colab):
    nb = notebook(TRAIN.format(callbacks=""))
    with Session(colab, nb) as s:
        s.run(1)
        assert "epochs: 2" in outputs_text(s.run(2))
        colab.kill_drive()
        again = s.run(1)  # the student re-runs the setup cell, as the course tells them to
        assert not errors(again), outputs_text(again)
        assert "マウントし直します" in outputs_text(again)
        assert "epochs: 2" in outputs_text(s.run(2))  # imports and Drive work again
        s.run(3)
    assert mounts(colab) == [False, True]  # force_remount only for the dead mount
    runs = sorted(p for p in (colab.course_on_cloud / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.csv").is_file() and list(r.glob("checkpoint-*.pt")) for r in runs)


def test_a_drive_that_cannot_be_mounted_again_stops_with_one_japanese_sentence(colab):
    nb = notebook("from MyModules import data\ndata.load_dataset('cifar10', course.data_dir)")
    with Session(colab, nb) as s:
        s.run(1)
        colab.kill_drive()
        colab.refuse_mount()
        loading = s.run(2)  # a cell that reads Drive: the course's words, not "OSError [Errno 107]"
        text = outputs_text(loading)
        assert "DriveError" in text and "ランタイムを接続解除して削除" in text and "Traceback" not in text
        again = s.run(1)
        sentence = one_sentence(again)
        assert errors(again)[0].ename == "SetupStopped"
        assert sentence.startswith("⛔ Google Drive をマウントできませんでした") and "ランタイムを接続解除して削除" in sentence
        colab.refuse_mount(False)
        assert not errors(s.run(1))  # after the student's click, the same cell recovers


def test_an_epoch_is_saved_even_when_drive_dies_during_it(colab):
    nb = notebook("from MyModules import train\n" + KILL_DRIVE_IN_EPOCH_1 + "\n"
                  + TRAIN.format(callbacks=", callbacks=[KillDrive()]"))
    with Session(colab, nb) as s:
        s.run(1)
        cell = s.run(2)
        assert not errors(cell), outputs_text(cell)
        text = outputs_text(cell)
        assert "マウントし直します" in text and "epochs: 2" in text, text[-3000:]
        s.run(3)
    assert mounts(colab) == [False, True]
    [run] = (colab.course_on_cloud / "runs").iterdir()
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + both epochs
    assert {p.name for p in run.glob("checkpoint-*.pt")} == {"checkpoint-a.pt", "checkpoint-b.pt"}


def test_without_the_finish_cell_the_last_writes_never_reach_drive(colab):
    """Why every notebook ends with env.finish(): Colab's client uploads later (the emulation: never)."""
    nb = notebook(TRAIN.format(callbacks=""))
    with Session(colab, nb) as s:
        s.run(1)
        trained = outputs_text(s.run(2))
        assert "env.finish(course)" in trained  # fit reminds, once
        assert "env.finish(course)" not in outputs_text(s.run(2))
    assert not (colab.course_on_cloud / "runs").exists()
    assert "flush_and_unmount" not in [c["call"] for c in colab.calls()]


def test_the_finish_cell_says_what_was_saved_and_flushes(colab):
    nb = notebook(TRAIN.format(callbacks=""))
    with Session(colab, nb) as s:
        s.run(1)
        s.run(2)
        finished = outputs_text(s.run(3))
    assert "runs/colab-test-" in finished and "data-test/cifar-10-batches-py" in finished
    assert "Drive を切り離しました" in finished
    assert colab.calls()[-1]["call"] == "flush_and_unmount" and not colab.mounted()
    [run] = (colab.course_on_cloud / "runs").iterdir()
    assert (run / "checkpoint-a.pt").is_file() and (run / "summary.json").is_file()
    assert not [p for p in walk(colab.state) if p.name == "__pycache__" or p.is_symlink()]


def test_writing_after_the_finish_cell_mounts_drive_again_instead_of_the_vm_disk(colab):
    nb = notebook(TRAIN.format(callbacks=""))
    with Session(colab, nb) as s:
        s.run(1)
        s.run(3)  # finish: Drive unmounted
        assert not colab.mounted()
        cell = s.run(2)  # a student who goes on training
        assert not errors(cell), outputs_text(cell)
        assert colab.mounted()  # mounted again: the run went to Drive, not to /content/drive on the VM disk
        s.run(3)
    assert mounts(colab) == [False, False]
    assert len(list((colab.course_on_cloud / "runs").iterdir())) == 1


def with_version(tmp_path: Path, version: str) -> Path:
    package = tmp_path / "other" / "MyModules"
    package.parent.mkdir()
    subprocess.run(["cp", "-r", str(REPO / "MyModules"), str(package)], check=True)
    init = package / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(text.replace(f'__version__ = "{nbtool.load_settings().version}"', f'__version__ = "{version}"'),
                    encoding="utf-8")
    return package


def test_an_old_mymodules_on_drive_is_named_and_the_way_to_update_it_said(tmp_path):
    colab = EmulatedColab(tmp_path / "rt", mymodules=with_version(tmp_path, "0.1.0"))
    try:
        with Session(colab, notebook("print('after setup')")) as s:
            cell = s.run(1)
    finally:
        colab.close()
    sentence = one_sentence(cell)
    need = nbtool.load_settings().version
    assert f"MyModules 0.1.0 は、このノートブックが使う {need} より古い版です" in sentence
    assert "MyDrive/pytorch-course/MyModules を新しい MyModules フォルダ" in sentence
    assert "セッションを再起動" in sentence


def test_a_newer_mymodules_than_the_notebook_warns_and_goes_on(tmp_path):
    colab = EmulatedColab(tmp_path / "rt", mymodules=with_version(tmp_path, "99.0.0"))
    try:
        with Session(colab, notebook("print('after setup')")) as s:
            cell = s.run(1)
            after = s.run(2)
    finally:
        colab.close()
    assert not errors(cell) and "⚠ このノートブックは MyModules" in outputs_text(cell)
    assert "after setup" in outputs_text(after)


def test_no_mymodules_anywhere_while_unpublished_says_to_copy_it_to_drive(tmp_path):
    empty = tmp_path / "nothing" / "MyModules"
    empty.mkdir(parents=True)  # a Drive without MyModules/__init__.py
    colab = EmulatedColab(tmp_path / "rt", mymodules=empty)
    try:
        with Session(colab, notebook("print('after setup')")) as s:
            cell = s.run(1)
    finally:
        colab.close()
    sentence = one_sentence(cell)
    assert "まだ GitHub で公開されていない" in sentence and "MyDrive/pytorch-course" in sentence
    assert "ネット" not in sentence


def make_wheel(tmp_path: Path, name: str, version: str) -> None:
    project = tmp_path / f"{name}-{version}"
    (project / name.replace("-", "_")).mkdir(parents=True)
    (project / name.replace("-", "_") / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "{version}"
        """))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheels"), str(project)], check=True)


def installing_runtime(tmp_path: Path, requires: list[str]):
    """A runtime whose setup cell needs ``requires`` from a local wheel folder (no network), installed into
    a folder on the kernel's path that holds ``course-dummy`` 1.0 already."""
    for name, version in (("course-dummy", "1.0"), ("course-dummy", "2.0"), ("course-extra", "1.0")):
        make_wheel(tmp_path, name, version)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--target", str(site),
                    str(tmp_path / "wheels" / "course_dummy-1.0-py3-none-any.whl")], check=True)
    colab = EmulatedColab(tmp_path / "rt")
    env = colab.kernel_env()
    env.update(PYTHONPATH=f"{env['PYTHONPATH']}:{site}", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "wheels"),
               PIP_TARGET=str(site), PIP_UPGRADE="1")
    colab.kernel_env = lambda: env
    nb = notebook("import course_dummy\nprint('dummy', course_dummy.VERSION)")
    setup = nb.cells[1]
    settings = nbtool.load_settings()
    setup.source = setup.source.replace(nbtool._python_list(settings.requires), json.dumps(requires))
    assert json.dumps(requires) in setup.source
    return colab, nb


def test_the_setup_cell_installs_what_colab_lacks_with_progress_and_no_restart(tmp_path):
    colab, nb = installing_runtime(tmp_path, ["course-extra>=1.0"])
    try:
        with Session(colab, nb) as s:
            cell = s.run(1)
    finally:
        colab.close()
    text = outputs_text(cell)
    assert not errors(cell), text
    assert "インストールします: course-extra>=1.0" in text
    assert " 秒: Successfully installed course-extra-1.0" in text and "インストールが終わりました" in text
    assert "再起動" not in text


def test_upgrading_a_package_already_loaded_asks_for_a_restart(tmp_path):
    colab, nb = installing_runtime(tmp_path, ["course-dummy>=2.0"])
    try:
        with Session(colab, nb) as s:
            s.run(2)  # the old version is loaded (Colab preloads many packages)
            cell = s.run(1)
    finally:
        colab.close()
    assert "Successfully installed course-dummy-2.0" in outputs_text(cell)
    sentence = one_sentence(cell)
    assert "course-dummy" in sentence and "「ランタイム」→「セッションを再起動」" in sentence
