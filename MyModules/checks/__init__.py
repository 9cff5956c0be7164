"""Self-checks that students run right after filling in a blank.

Each session has its own module (``checks.ex01`` ...). A check either prints a short Japanese
"OK" line or raises :class:`CheckFailed` whose message says, in Japanese, what is wrong and gives a
hint. It never reads notebook globals: the student's answer is passed in.

    from MyModules.checks import ex01 as check
    check.vgg11(VGG11)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CheckFailed(AssertionError):
    """A self-check found a wrong or missing answer; the message (Japanese) says what to fix."""


def fail(problem: str, hint: str | None = None) -> None:
    """Raise :class:`CheckFailed` with a problem statement and an optional hint."""
    message = f"❌ {problem}"
    if hint:
        message += f"\n   ヒント: {hint}"
    raise CheckFailed(message)


def ok(message: str) -> None:
    print(f"✅ OK: {message}")


def call_student(fn: Callable[..., Any], *args: Any, what: str = "このコード", **kwargs: Any) -> Any:
    """Call the student's code; turn "not written yet" and crashes into a CheckFailed with a hint."""
    try:
        return fn(*args, **kwargs)
    except CheckFailed:
        raise
    except NotImplementedError:
        fail(f"{what}はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して、自分のコードを書いてから、そのセルをもう一度実行してください。")
    except Exception as e:  # noqa: BLE001 - any crash in student code becomes a hint
        fail(f"{what}を実行するとエラーになりました: {type(e).__name__}: {e}",
             "エラーメッセージの最後の行を読んで、形 (shape) や引数を確かめてください。")
    return None


def require_defined(value: Any, name: str) -> None:
    """Fail when the student left a placeholder (``None`` or ``...``)."""
    if value is None or value is Ellipsis:
        fail(f"{name} がまだ設定されていません ({value!r} のままです)。",
             f"TODO の部分で {name} を作ってください。")
