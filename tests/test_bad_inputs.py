"""Every bad or unlucky input ends in one clear line and a non-zero exit, never a traceback, and
leaves the data and earlier results as they were.

The cases run through ``MyModules.__main__.main`` (what ``python -m MyModules`` calls) in this process
for speed; ``test_the_real_command_line_agrees`` runs a few of them as real processes.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from MyModules import data, formats
from MyModules.__main__ import main
from MyModules.checkpoint import SLOTS, load_checkpoint
from tests.support.fs import read_only_copy, small_disk, snapshot

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--no-progress", "--no-plots", "--no-tensorboard", "--max-steps", "2"]


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb's first bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def image_tree(root: Path, classes=("cat", "dog"), per_class: int = 4) -> Path:
    images, labels = data.make_synthetic(per_class * len(classes) * 2, num_classes=len(classes), seed=5)
    half = len(labels) // 2
    formats.write_image_folder(root, (images[:half], labels[:half]), (images[half:], labels[half:]), list(classes))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A course folder with a finished run, and data folders with one fault each."""
    base = tmp_path_factory.mktemp("bad-inputs")
    course, datas = base / "course", base / "data"
    w = {"course": course, "data": datas, "file": base / "a-file.txt"}
    w["file"].write_text("not a folder")
    assert main(["train", "--dataset", "synthetic", "--course-dir", str(course), "--out", str(course / "runs" / "good"),
                 "--epochs", "1", *QUICK]) == 0
    assert main(["train", "--dataset", "synthetic", "--model", "widenet", "--course-dir", str(course),
                 "--out", str(base / "widenet-run"), "--epochs", "1", *QUICK]) == 0
    good = course / "runs" / "good"
    for name, damage in (("truncated", lambda p: p.write_bytes(p.read_bytes()[:100])),
                         ("empty", lambda p: p.write_bytes(b"")),
                         ("no-run-json", None), ("other-model", None)):
        run = base / "runs" / name
        shutil.copytree(good, run)
        for slot in SLOTS:
            if (run / slot).exists() and damage is not None:
                damage(run / slot)
        w[name] = run
    (w["no-run-json"] / "run.json").unlink()
    for slot in SLOTS:  # the widenet run's checkpoint in a net run's folder
        if (base / "widenet-run" / slot).exists():
            shutil.copy(base / "widenet-run" / slot, w["other-model"] / slot)
    w["no-checkpoint"] = base / "runs" / "no-checkpoint"
    w["no-checkpoint"].mkdir(parents=True)

    cifar = data.generate_test_data("cifar10", datas / "cifar-missing", train_size=50, test_size=10)
    (cifar / "data_batch_3").unlink()
    raw = data.generate_test_data("mnist", datas / "mnist-truncated", train_size=50, test_size=10)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    raw = data.generate_test_data("mnist", datas / "mnist-mismatch", train_size=50, test_size=10)
    labels = raw / "t10k-labels-idx1-ubyte"
    formats.write_idx(datas / "tmp-idx", (np.zeros((5, 4, 4), np.uint8), np.zeros(5, np.uint8)),
                      (np.zeros((7, 4, 4), np.uint8), np.zeros(9, np.uint8)))
    shutil.copy(datas / "tmp-idx" / "t10k-labels-idx1-ubyte", labels)
    shutil.copy(datas / "tmp-idx" / "t10k-images-idx3-ubyte", raw / "t10k-images-idx3-ubyte")
    shutil.rmtree(datas / "tmp-idx")
    (image_tree(datas / "empty-class") / "train" / "bird").mkdir()
    image_tree(datas / "one-class", classes=("cat",))
    (image_tree(datas / "not-an-image") / "train" / "cat" / "notes.png").write_text("this is not a PNG")
    png_header_only(image_tree(datas / "bomb") / "train" / "dog" / "huge.png", 30000, 30000)
    w["before"] = snapshot(datas)
    w["good-hash"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in good.iterdir() if p.is_file()}
    return w


# (name, arguments, words the one-line message must contain); {course}, {data}, {file}, {<run>} are filled in.
CASES = [
    ("epochs zero", ["--epochs", "0"], "--epochs"),
    ("epochs text", ["--epochs", "ten"], "--epochs"),
    ("lr negative", ["--lr", "-1"], "--lr"),
    ("lr zero", ["--lr", "0"], "--lr"),
    ("lr nan", ["--lr", "nan"], "--lr"),
    ("lr inf", ["--lr", "inf"], "--lr"),
    ("batch size zero", ["--batch-size", "0"], "--batch-size"),
    ("weight decay negative", ["--weight-decay", "-0.1"], "--weight-decay"),
    ("momentum negative", ["--momentum", "-0.5"], "--momentum"),
    ("momentum one or more", ["--momentum", "1.5"], "momentum"),
    ("max steps zero", ["--max-steps", "0"], "--max-steps"),
    ("workers negative", ["--workers", "-1"], "--workers"),
    ("seed text", ["--seed", "abc"], "--seed"),
    ("unknown model", ["--model", "resnet"], "--model"),
    ("unknown dataset", ["--dataset", "imagenet"], "--dataset"),
    ("unknown augmentation", ["--augment", "rotate"], "--augment"),
    ("unknown option", ["--learning-rate", "0.1"], "unrecognized"),
    ("device tpu", ["--device", "tpu"], "tpu"),
    ("device gpu", ["--device", "gpu"], "cuda"),
    ("device cuda without CUDA", ["--device", "cuda"], "CUDA is not available"),
    ("device cuda:7", ["--device", "cuda:7"], "cuda:7"),
    ("device mps", ["--device", "mps"], "MPS"),
    ("out is a file", ["--out", "{file}"], "is a file"),
    ("course dir is a file", ["--course-dir", "{file}"], "is a file"),
    ("data root typo", ["--data-root", "{data}/no-such-folder"], "does not exist"),
    ("resume with nothing to resume", ["--resume", "--out", "{no-checkpoint}"], "nothing to resume"),
    ("resume truncated checkpoint", ["--resume", "--out", "{truncated}"], "truncated"),
    ("resume zero-byte checkpoint", ["--resume", "--out", "{empty}"], "0 bytes"),
    ("resume another model's checkpoint", ["--resume", "--out", "{other-model}"], "widenet"),
    ("resume without run.json", ["--resume", "--out", "{no-run-json}"], "run.json"),
    ("resume with other epochs", ["--resume", "--out", "{good}", "--epochs", "5"], "--epochs 1"),
    ("resume with other model", ["--resume", "--out", "{good}", "--model", "widenet"], "--model net"),
    ("cifar batch missing", ["--dataset", "cifar10", "--data-root", "{data}/cifar-missing"], "data_batch_3 missing"),
    ("mnist truncated", ["--dataset", "mnist", "--data-root", "{data}/mnist-truncated"], "truncated"),
    ("mnist label count differs", ["--dataset", "mnist", "--data-root", "{data}/mnist-mismatch"], "9 labels"),
    ("image folder with an empty class", ["--dataset", "imagefolder", "--data-root", "{data}/empty-class"], "bird"),
    ("image folder with one class", ["--dataset", "imagefolder", "--data-root", "{data}/one-class"], "at least 2"),
    ("file that is not an image", ["--dataset", "imagefolder", "--data-root", "{data}/not-an-image"], "notes.png"),
    ("decompression bomb", ["--dataset", "imagefolder", "--data-root", "{data}/bomb"], "huge.png"),
    ("image folder without train/", ["--dataset", "imagefolder", "--data-root", "{data}/cifar-missing"],
     "train does not exist"),
]


def fill(args: list[str], world) -> list[str]:
    names = {k: str(v) for k, v in world.items() if isinstance(v, Path)}
    names["good"] = str(world["course"] / "runs" / "good")
    return [a.format(**names) for a in args]


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    return errors[0]


@pytest.mark.parametrize("name, args, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_ends_in_one_line_and_exit_2(name, args, words, world, capsys):
    argv = ["train", *fill(args, world)]
    if "--course-dir" not in argv:
        argv += ["--course-dir", str(world["course"])]
    code = main(argv + QUICK)
    line = one_error_line(capsys)
    assert code == 2, line
    assert words in line, line
    assert len(line) < 500
    assert snapshot(world["data"]) == world["before"]  # no data folder changed (or was created)
    good = world["course"] / "runs" / "good"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in good.iterdir() if p.is_file()} == \
        world["good-hash"]


def test_there_are_at_least_35_cases():
    assert len(CASES) >= 35


def test_unknown_command_and_help_hint(capsys):
    assert main(["fly"]) == 2
    line = one_error_line(capsys)
    assert "invalid choice" in line and "python -m MyModules --help" in line and "MyModules MyModules" not in line
    assert main(["train", "--epochs", "0"]) == 2
    assert "(see: python -m MyModules train --help)" in one_error_line(capsys)


def test_divergence_exit_code_is_3(world, capsys, tmp_path):
    code = main(["train", "--dataset", "synthetic", "--lr", "1e30", "--course-dir", str(world["course"]),
                 "--out", str(tmp_path / "diverged"), *QUICK])
    line = one_error_line(capsys)
    assert code == 3 and "diverged" in line


def test_read_only_image_folder_trains_and_stays_untouched(world, tmp_path, capsys):
    source = image_tree(tmp_path / "source", per_class=6)
    with read_only_copy(source, tmp_path / "ro") as tree:
        before = snapshot(tree)
        code = main(["train", "--dataset", "imagefolder", "--data-root", str(tree), "--course-dir", str(world["course"]),
                     "--out", str(tmp_path / "run"), "--epochs", "1", *QUICK])
        assert code == 0, capsys.readouterr().err
        assert snapshot(tree) == before
    assert list((world["course"] / "cache").glob("imagefolder-ro-*.pt"))  # the cache went to the course folder


def test_read_only_run_folder_is_one_line(world, tmp_path, capsys):
    with read_only_copy(None, tmp_path / "ro") as folder:
        code = main(["train", "--dataset", "synthetic", "--course-dir", str(world["course"]),
                     "--out", str(folder / "run"), *QUICK])
    line = one_error_line(capsys)
    assert code == 2 and "run folder" in line and "Read-only" in line


def test_read_only_course_folder_is_one_line(tmp_path, capsys):
    with read_only_copy(None, tmp_path / "ro") as folder:
        code = main(["train", "--dataset", "synthetic", "--course-dir", str(folder / "course"), *QUICK])
    line = one_error_line(capsys)
    assert code == 2 and "course folder" in line


def test_disk_full_while_saving_keeps_the_previous_checkpoint(world, tmp_path, capsys):
    # Room for run.json, metrics.csv and the first epoch's checkpoint (~0.5 MB for the tutorial Net), not the second.
    with small_disk(tmp_path / "disk", 700) as disk:
        code = main(["train", "--dataset", "synthetic", "--course-dir", str(world["course"]), "--out", str(disk / "run"),
                     "--epochs", "2", *QUICK])
        line = one_error_line(capsys)
        assert code == 2 and "No space left" in line and "previous checkpoint is kept" in line
        state = load_checkpoint(disk / "run")
        assert state["epoch"] == 1
        assert not [p for p in (disk / "run").iterdir() if ".tmp-" in p.name]


def test_the_real_command_line_agrees(world, tmp_path):
    """A few cases as real processes: same one line, same exit codes, nothing on stderr but the line."""
    for args, code in ((["--epochs", "0"], 2), (["--device", "tpu"], 2),
                       (["--resume", "--out", str(world["truncated"])], 2)):
        proc = subprocess.run([sys.executable, "-m", "MyModules", "train", *args, "--course-dir", str(world["course"]),
                               *QUICK], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        assert [line for line in proc.stderr.splitlines() if line.strip()][-1].startswith("error: ")


def _interrupt(tmp_path: Path, when_saved: bool) -> subprocess.CompletedProcess:
    """Ctrl-C in a terminal during epoch 1, or just after epoch 1 was saved, of a run in a shell script.

    A terminal sends SIGINT to its whole foreground process group: the run and the bash that runs the
    script. Bash ends the script only when the run died of SIGINT; a run that exits with a plain 130
    looks as if it handled Ctrl-C itself, and bash goes on with the next command (bash manual, Signals).
    """
    from MyModules.checkpoint import has_checkpoint

    out = tmp_path / "run"
    env = dict(os.environ, COURSE_TEST_MODE="0", COURSE_DIR=str(tmp_path / "course"))
    # Epoch 1 is long (313 steps of 8 images) when the signal must land in it, short (10 steps) otherwise.
    steps = ["--max-steps", "10", "--epochs", "50"] if when_saved else ["--epochs", "3"]
    run = [sys.executable, "-u", "-m", "MyModules", "train", "--dataset", "synthetic", "--batch-size", "8", *steps,
           "--out", str(out), "--no-progress", "--no-plots", "--no-tensorboard"]
    proc = subprocess.Popen(["bash", "-c", f"{shlex.join(run)}; echo the script went on"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stdout:
        if line.startswith("run folder:"):
            break
    deadline = time.monotonic() + 240
    while when_saved and not has_checkpoint(out) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved(tmp_path):
    result = _interrupt(tmp_path, when_saved=False)
    assert "Traceback" not in result.stderr
    assert "nothing was saved yet" in result.stderr and "--resume" not in result.stderr
    # The run died of SIGINT, so bash ended the script too (a shell shows status 130).
    assert result.returncode == -signal.SIGINT and "the script went on" not in result.stdout


def test_ctrl_c_after_an_epoch_says_how_to_resume(tmp_path):
    result = _interrupt(tmp_path, when_saved=True)
    assert "Traceback" not in result.stderr
    assert "last complete epoch is saved" in result.stderr and f"--resume --out {tmp_path / 'run'}" in result.stderr
    assert result.returncode == -signal.SIGINT and "the script went on" not in result.stdout
