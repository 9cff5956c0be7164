"""The course's own exception types: problems a user can fix, with a message that says how.

Library code raises these where bad input enters (argument parsing, dataset readers, checkpoint
loading, storage URLs). Each message is one English sentence or two that names the file or value and
says what to do next. The command line prints ``error: <message>`` and exits with ``exit_code``;
notebooks show the same line with a short Japanese explanation instead of a wall of traceback
(:func:`show_in_notebooks`). Anything that is *not* a ``CourseError`` is a bug and keeps its traceback.

The command line's exit codes, the one table (``python -m MyModules`` returns only these):

====  ====================  ===================================================================
code  name                  meaning
====  ====================  ===================================================================
0     ``EXIT_OK``           done
1     ``EXIT_FAILED``       done, but part of the work failed (``predict``: an image could not be
                            read; ``export``: the exported file does not match PyTorch), or a bug
                            (its traceback, as Python itself exits after one)
2     ``EXIT_USAGE``        a problem you can fix (:class:`CourseError`, :class:`UsageError`: a bad
                            argument, missing or damaged data, checkpoint or folder); the line says
                            what to do
3     ``EXIT_DIVERGED``     training diverged (:class:`DivergenceError`: the loss became NaN,
                            infinite or huge)
130   ``EXIT_INTERRUPTED``  interrupted (Ctrl-C; the last complete epoch is kept, continue with
                            ``--resume``). The process then ends killed by SIGINT
                            (``MyModules.__main__.run``), which a shell shows as status 130
====  ====================  ===================================================================
"""

from __future__ import annotations

import errno
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell shows for a process Ctrl-C ended
#: Every exit code of the command line (the table in this module's docstring says what each means).
EXIT_CODES = (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED)


class CourseError(Exception):
    """A problem the user can fix; the message names the file or value and what to do."""

    exit_code = EXIT_USAGE  # the command line's exit status for this kind of problem (one of EXIT_CODES)
    hint_ja = "メッセージに書かれた対処をしてから、このセルをもう一度実行してください。"


class UsageError(CourseError):
    """A command-line argument or option that cannot work (an unknown option, a --resume without a run,
    a changed plan); the command line prints its message as one line."""


class ConfigError(CourseError, ValueError):
    """A setting out of range (epochs 0, negative lr, unknown model...)."""

    hint_ja = "設定の値を見直してください (ハイパーパラメータのセル)。"


class DeviceError(CourseError, ValueError):
    """The requested device does not exist here (``cuda`` without a GPU, ``cuda:7`` on a 1-GPU machine)."""

    hint_ja = ("GPU を使うには、メニュー「ランタイム」→「ランタイムのタイプを変更」で「T4 GPU」を選んで保存し、"
               "セットアップのセルから実行し直してください。")


class DatasetError(CourseError, RuntimeError):
    """A dataset is missing, unreadable or cannot be downloaded."""

    hint_ja = "データセットのフォルダと中身を確認してください (メッセージにフォルダ名があります)。"


class CheckpointError(CourseError, RuntimeError):
    """A checkpoint is missing, damaged, or belongs to another model or dataset."""

    hint_ja = ("続きから再開できません。別の run フォルダを指定するか、resume=False で最初から学習してください。")


class RunFolderError(CourseError, OSError):
    """An output, run or course folder cannot be created or written."""

    hint_ja = "保存先のフォルダ (Drive がマウントされているか、書き込めるか) を確認してください。"


class DriveError(RunFolderError):
    """Google Drive is not there: its mount died ("Transport endpoint is not connected") or is unmounted."""

    hint_ja = ("Google Drive との接続が切れています。セットアップのセルをもう一度実行してください (マウントし直します)。"
               "それでも駄目なときは、メニュー「ランタイム」→「ランタイムを接続解除して削除」を選んでから、"
               "セットアップのセルから実行し直してください。")


def is_dead_mount(error: BaseException) -> bool:
    """True for the OSError of a FUSE mount whose daemon is gone (Colab's Drive after a disconnect):
    ENOTCONN for every operation after its death, ECONNABORTED for one in flight when it died."""
    return isinstance(error, OSError) and error.errno in (errno.ENOTCONN, errno.ECONNABORTED)


def dead_mount_error(error: OSError) -> DriveError:
    """The course's words for a dead Drive mount, naming the path that failed."""
    where = f" ({error.filename})" if error.filename else ""
    return DriveError(f"Google Drive is not connected{where}: its mount died (Transport endpoint is not "
                      "connected). Re-run the setup cell (it mounts Drive again), or choose Runtime > Disconnect "
                      "and delete runtime and run the notebook from the setup cell")


class TuningError(CourseError, RuntimeError):
    """A problem with an Optuna study or its storage."""

    hint_ja = "study の保存先 (storage) と study 名を確認してください。"


class DivergenceError(CourseError, FloatingPointError):
    """The loss became NaN, infinite or huge: training stopped instead of going on at chance level."""

    exit_code = EXIT_DIVERGED
    hint_ja = ("損失が NaN / 無限大 (または極端に大きな値) になり、学習が発散しました。学習率 (lr) を 1/10 にする、"
               "混合精度を切る (amp=False) などを試してください。")


def one_line(error: BaseException) -> str:
    """The error's message on one line (no traceback), as the command line prints it."""
    return " ".join(str(error).split()) or type(error).__name__


def show_in_notebooks(shell=None) -> bool:
    """Make IPython show a :class:`CourseError` as its message and a Japanese hint, not a traceback.

    A dead Drive mount (an ``OSError`` "Transport endpoint is not connected", raised wherever a file on
    Drive is touched) is shown the same way, as a :class:`DriveError`; other errors keep their traceback.
    Called by ``env.setup()``; does nothing outside IPython. Returns True when installed.
    """
    if shell is None:
        # Every IPython kernel has imported IPython already; importing it here would only cost each
        # command-line run 0.2 s.
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False

    def _handler(self, etype, value, tb, tb_offset=None):
        if not isinstance(value, CourseError):
            if not is_dead_mount(value):
                self.showtraceback((etype, value, tb), tb_offset=tb_offset)
                return None
            etype, value = DriveError, dead_mount_error(value)
        print(f"{etype.__name__}: {one_line(value)}\n→ {getattr(value, 'hint_ja', CourseError.hint_ja)}")
        return None

    shell.set_custom_exc((CourseError, OSError), _handler)
    return True
