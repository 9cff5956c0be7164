"""Environment: course folder, device choice, the GPU warning, safe to call twice."""

import pytest
import torch

from MyModules import env


def test_setup_twice_is_harmless_and_uses_course_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DIR", str(tmp_path / "course"))
    first = env.setup()
    second = env.setup()
    assert first == second
    assert first.course_dir == tmp_path / "course" and first.runs_dir.is_dir() and first.data_dir.is_dir()
    assert first.test_mode and first.data_dir.name == "data-test"  # conftest turns test mode on
    assert "torch " in capsys.readouterr().out


def test_local_default_folder_is_in_home(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DIR", raising=False)
    monkeypatch.setattr(env, "LOCAL_COURSE_DIR", tmp_path / "home-course")
    monkeypatch.setattr(env, "in_colab", lambda: False)
    assert env.course_dir() == tmp_path / "home-course"


def test_colab_mounts_drive_only_once(monkeypatch, tmp_path):
    calls = []
    mount_point = tmp_path / "drive"

    def fake_mount(point, force_remount=False):
        calls.append((point, force_remount))
        (mount_point / "MyDrive").mkdir(parents=True, exist_ok=True)

    import sys
    import types

    fake_colab = types.ModuleType("google.colab")
    fake_colab.drive = types.SimpleNamespace(mount=fake_mount)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", fake_colab)
    assert env.in_colab()
    env.mount_drive(mount_point)
    env.mount_drive(mount_point)
    assert calls == [(str(mount_point), False)]


def test_missing_gpu_warns_loudly_in_japanese(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the warning is for machines without one")
    with pytest.warns(UserWarning, match="no GPU"):
        env.setup(need_gpu=True)
    assert "ランタイムのタイプを変更" in capsys.readouterr().out


def test_pick_device_explains_an_unavailable_device():
    assert env.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="GPU"):
            env.pick_device("cuda")
    assert env.pick_device().type in {"cpu", "cuda", "mps"}


def test_test_mode_reads_the_variable(monkeypatch):
    monkeypatch.setenv(env.TEST_MODE_VAR, "0")
    assert not env.test_mode()
    monkeypatch.setenv(env.TEST_MODE_VAR, "1")
    assert env.test_mode()
