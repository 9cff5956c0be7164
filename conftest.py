"""pytest setup for the whole repository.

* Every test and every notebook kernel runs in test mode (``COURSE_TEST_MODE=1``) with a throw-away
  course folder, and imports MyModules from this checkout.
* The suite runs on every core (``-n auto --dist loadfile`` in pyproject.toml): each worker has its
  own course folder and its share of the cores; ``-n 0`` runs it in one process.
* Solutions run under nbval (``--nbval-lax``: only cells marked ``# NBVAL_CHECK_OUTPUT`` compare outputs)
  in a local kernel that imports MyModules from this checkout.
* What students open in Colab (``ExerciseNN/<name>.ipynb``: templates and stand-alone notebooks) runs
  in an emulated Colab instead (:class:`ColabRun`, ``tests/support/colab.py``): MyModules only on the
  emulated Drive, a real FUSE mount, the flush at the end. A template must fail only in its blanks,
  its ``needs-solution`` cells and its self-checks (each with ``CheckFailed``); a stand-alone notebook
  must not fail and must print its stored checked outputs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_TMP: list[str] = []


def pytest_configure(config):
    os.environ["COURSE_TEST_MODE"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:  # the one pytest process, or the controller of pytest -n
        if "COURSE_DIR" not in os.environ:
            _TMP.append(tempfile.mkdtemp(prefix="course-test-"))
            os.environ["COURSE_DIR"] = _TMP[-1]
        os.environ["_COURSE_DIR_OF_TESTS"] = os.environ["COURSE_DIR"]
    elif os.environ.get("_COURSE_DIR_OF_TESTS") == os.environ.get("COURSE_DIR"):
        # pytest -n: each worker its own course folder (studies, runs) inside the controller's, also
        # when the user chose that folder (tools/mutate.py does); processes a test starts keep it.
        os.environ["COURSE_DIR"] = str(Path(os.environ["COURSE_DIR"]) / worker)
    _share_cores_between_workers()
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def _share_cores_between_workers() -> None:
    """pytest -n N: each worker, and every process it starts, uses its share of the cores.

    torch starts one compute thread per core in every process. Two workers on two cores then run four
    busy threads that wait on each other: measured here, ``-n 2`` took 348 s against 305 s for one
    process, and about 190 s once each worker had one thread. A value the user set is kept.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // workers))


def pytest_unconfigure(config):
    for path in _TMP:
        shutil.rmtree(path, ignore_errors=True)


def is_template(path: Path) -> bool:
    return path.suffix == ".ipynb" and (path.parent / "solutions" / path.name).exists()


def is_student_notebook(path: Path) -> bool:
    """What students open in Colab: ``ExerciseNN/<name>.ipynb`` (templates and stand-alone notebooks)."""
    return path.suffix == ".ipynb" and path.parent.name.startswith("Exercise") and path.parent.parent == ROOT


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path, parent):
    outcome = yield
    path = Path(file_path)
    if is_student_notebook(path):
        # Students run these in Colab: run them in the emulated Colab (tests/support/colab.py) instead of
        # nbval's local kernel. Templates' blanks fail on purpose; stand-alone notebooks must not fail.
        kept = [c for c in outcome.get_result() if type(c).__name__ != "IPyNbFile"]
        outcome.force_result([*kept, ColabNotebook.from_parent(parent, path=path)])


class ColabNotebook(pytest.File):
    def collect(self):
        yield ColabRun.from_parent(self, name="template" if is_template(self.path) else "colab")


def template_problems(nb) -> list[str]:
    """A template's rules: only blanks, needs-solution cells and self-checks fail, checks with CheckFailed."""
    problems = []
    checks = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        tags = set(cell.metadata.get("tags", []))
        if "check" in tags:
            checks += 1
            if not errors:
                problems.append(f"cell {i}: the self-check passed on the blank template")
            elif errors[0].ename != "CheckFailed" or not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", errors[0].evalue):
                problems.append(f"cell {i}: self-check failed with {errors[0].ename}: {errors[0].evalue!r}, "
                                "expected CheckFailed with a Japanese message")
        elif errors and "raises-exception" not in tags:
            problems.append(f"cell {i}: unexpected {errors[0].ename}: {errors[0].evalue}")
    if checks == 0:
        problems.append("template has no self-check cell")
    return problems


class ColabRun(pytest.Item):
    """Run a student notebook top to bottom in the emulated Colab, as "Run all" does.

    A template must fail only where it should (``template_problems``); a stand-alone notebook must not
    fail at all and print the stored output of its checked cells. Both must keep the promises of
    ``colab_problems``: Drive mounted once, MyModules from Drive, everything written on Drive after the
    last cell (which flushes), no bytecode or links in Drive.
    """

    def runtest(self):
        import json

        from tests.support import colab

        with tempfile.TemporaryDirectory(prefix="colab-") as tmp:
            runtime = colab.EmulatedColab(Path(tmp))
            try:
                nb = runtime.run(self.path)
                problems = colab.colab_problems(runtime, nb)
            finally:
                runtime.close()
        if is_template(self.path):
            problems += template_problems(nb)
        else:
            problems += [f"cell {i}: {e.ename}: {e.evalue}" for i, cell in enumerate(nb.cells)
                         for e in colab.errors(cell)]
            problems += colab.checked_output_problems(json.loads(self.path.read_text(encoding="utf-8")), nb)
        if problems:
            raise AssertionError("\n".join(problems))

    def reportinfo(self):
        return self.path, 0, f"colab {self.path.name}"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A data folder holding ``--dataset synthetic`` at its real (not test-mode) size, generated once.

    Command-line tests that leave test mode pass it as ``--data-root``, so they do not each spend
    seconds generating the same 10,000 images.
    """
    from MyModules.data import load_dataset

    root = tmp_path_factory.mktemp("synthetic-data")
    load_dataset("synthetic", root, test_mode=False)
    return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """The generated test-mode ``synthetic`` set (2,500 / 500 learnable images), made once per worker."""
    from MyModules import data

    return data.load_dataset("synthetic", tmp_path_factory.mktemp("data"), test_mode=True)


@pytest.fixture(scope="session")
def course_dataset():
    """Test-mode CIFAR-10 in this worker's course folder: generated once, before any process that a test
    starts (a tuning worker, the command line) would otherwise generate it at the same time."""
    from MyModules import data, env

    return data.load_dataset("cifar10", env.setup(verbose=False).data_dir)
