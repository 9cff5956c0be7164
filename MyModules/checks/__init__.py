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
    """A self-check found a wrong or missing answer; the message (Japanese) says what to fix.

    In a notebook it shows as its message alone: IPython renders an exception through its
    ``_render_traceback_`` when it has one, so a student sees what to fix, not a red traceback of
    the check's own code. The cell still ends in an error, so "Run all" stops there.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"CheckFailed: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


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
        fail(f"{what}を実行するとエラーになりました: {type(e).__name__}: {e}", known_mistake(e)
             or "エラーメッセージの最後の行を読んで、形 (shape) や引数を確かめてください。")
    return None


def known_mistake(error: BaseException) -> str | None:
    """Japanese words for a PyTorch error whose cause students get wrong in the same few ways, or None."""
    text = str(error)
    if isinstance(error, RuntimeError) and "Unexpected key(s) in state_dict" in text and '"model"' in text:
        return ("load_state_dict にチェックポイント全体 (辞書) を渡しています。チェックポイントにはオプティマイザや"
                "エポックも入っているので、重みの部分 state['model'] を渡してください。")
    if isinstance(error, RuntimeError) and "size mismatch for" in text:
        return ("作ったモデルの形が、読み込もうとしている重みと違います。重みを保存したときと同じ設定 "
                "(試行なら FixedTrial(best.params)) でモデルを作ってから load_state_dict してください。")
    if isinstance(error, RuntimeError) and "Expected all tensors to be on the same device" in text:
        return "モデルとデータが別の装置 (CPU と GPU) にあります。どちらも .to(device) で同じ装置に移してください。"
    return None


def require_defined(value: Any, name: str) -> None:
    """Fail when the student left a placeholder (``None`` or ``...``)."""
    if value is None or value is Ellipsis:
        fail(f"{name} がまだ設定されていません ({value!r} のままです)。",
             f"TODO の部分で {name} を作ってください。")


def layer_mismatch(module: Any, input_shape: tuple[int, ...]) -> str | None:
    """Japanese words for why ``module`` cannot take an input of ``input_shape``, or None.

    Covers the layer-size mistakes students make most (the library's own message is English and
    names no line of their code): BatchNorm1d on images, BatchNorm2d or Conv2d whose channel count
    is not the one coming in, Linear whose ``in_features`` is not what the previous layer gives.
    """
    from torch import nn

    name = type(module).__name__
    dims = len(input_shape)
    if isinstance(module, nn.BatchNorm1d) and dims == 4:
        return (f"{name}({module.num_features}) に画像の形 {input_shape} (B, C, H, W) が入っています。"
                "画像 (畳み込みの出力) には nn.BatchNorm2d を使います。BatchNorm1d は全結合層の出力 (B, 特徴数) 用です。")
    if isinstance(module, nn.BatchNorm2d) and dims == 2:
        return (f"{name}({module.num_features}) に全結合層の出力の形 {input_shape} (B, 特徴数) が入っています。"
                "全結合層 (nn.Linear) の後には nn.BatchNorm1d を使います。BatchNorm2d は画像 (B, C, H, W) 用です。")
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and dims >= 2 and input_shape[1] != module.num_features:
        return (f"{name}(num_features={module.num_features}) に {input_shape[1]} チャンネルの入力が入っています。"
                f"num_features は直前の層の出力チャンネル数 (Conv2d の out_channels、Linear の out_features) と"
                f"同じ {input_shape[1]} にします。")
    if isinstance(module, nn.Conv2d) and dims == 4 and input_shape[1] != module.in_channels:
        return (f"Conv2d(in_channels={module.in_channels}, out_channels={module.out_channels}) に "
                f"{input_shape[1]} チャンネルの入力が入っています。in_channels は直前の畳み込みの out_channels "
                "(最初の層だけは RGB の 3) です。ループで層を作るときは、層を 1 つ足すたびに "
                "in_channels = c と更新するのを忘れていませんか。")
    if isinstance(module, nn.Linear) and dims > 2:
        return (f"Linear に {input_shape} の {dims} 次元のまま入っています。"
                "torch.flatten(x, 1) で (B, C×H×W) に平らにするのを忘れていませんか。")
    if isinstance(module, nn.Linear) and dims == 2 and input_shape[1] != module.in_features:
        return (f"Linear(in_features={module.in_features}) に {input_shape[1]} 個の数が入ってきました。"
                "in_features は直前の (チャンネル数 × 高さ × 幅) と同じにします。")
    return None
