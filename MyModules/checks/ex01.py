"""Self-checks for Exercise01: a training step, a device move, output sizes, a wider net, BatchNorm, VGG11, AMP.

Each check takes the student's answer (a function, a class, a list), runs it on a small input and
compares what it sees with the reference in :mod:`MyModules.models`. Models are inspected from the
outside (forward hooks on the leaf modules), so any way of writing them passes as long as it builds
the same network: ``nn.Sequential`` or attributes, ``F.relu`` or ``nn.ReLU``.

    from MyModules.checks import ex01 as check
    check.wide_net(MyWideNet)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..models import VGG, VGG_CONFIGS, WideNet, count_parameters
from . import CheckFailed, call_student, fail, layer_mismatch, ok, require_defined

BATCH = 2  # images in the probe batch: >1 so BatchNorm in training mode would work too
IMAGE = (3, 32, 32)  # CIFAR-10 image (C, H, W)


@dataclass
class Layer:
    """One leaf module as it ran in forward: input and output shapes (B, C, H, W)."""

    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input: torch.Tensor | None = None  # copies, taken as the layer ran (an inplace ReLU later
    output: torch.Tensor | None = None  # cannot change them): F.relu between layers shows up here


def _build(model_class: Any, name: str, *args: Any, num_classes: int = 10) -> nn.Module:
    """Instantiate the student's class with ``num_classes``, turning every mistake into a hint."""
    require_defined(model_class, name)
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        fail(f"{name} は nn.Module を継承したクラスにしてください (今は {type(model_class).__name__} です)。",
             f"class {name}(nn.Module): と書き、インスタンスではなくクラスそのものを渡します。")
    try:
        inspect.signature(model_class).bind(*args, num_classes=num_classes)
    except TypeError:
        fail(f"{name}(..., num_classes={num_classes}) と呼べません。",
             "__init__ に引数 num_classes=10 を足して、最後の Linear の出力数に使ってください。")
    try:
        model = model_class(*args, num_classes=num_classes)
    except AttributeError as e:
        if "Module.__init__() call" not in str(e):
            raise
        fail(f"{name} の __init__ で、super().__init__() より前に層を self に登録しています ({e})。",
             "__init__ の最初の行に super().__init__() を書いてください (nn.Module の準備が先に必要です)。")
    except Exception:  # noqa: BLE001 - call_student turns it into the usual hint below
        model = call_student(model_class, *args, num_classes=num_classes, what=f"{name} の __init__")
    if not any(True for _ in model.parameters()):
        fail(f"{name} にパラメータ (層) が 1 つもありません。",
             "__init__ の中で self.conv1 = nn.Conv2d(...) のように層を self に登録してください。")
    return model


def _trace(model: nn.Module, name: str) -> tuple[list[Layer], torch.Tensor | None, str | None]:
    """Run a (BATCH, 3, 32, 32) batch through ``model``; the leaf layers that ran, the output, the error."""
    layers: list[Layer] = []
    entered: list[tuple[nn.Module, tuple[int, ...]]] = []  # the last one is where a crash happened

    def pre_hook(module, inputs):
        if inputs and isinstance(inputs[0], torch.Tensor):
            entered.append((module, tuple(inputs[0].shape)))

    def hook(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            layers.append(Layer(module, tuple(inputs[0].shape), tuple(output.shape),
                                inputs[0].detach().clone(), output.detach().clone()))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves] + [m.register_forward_pre_hook(pre_hook)
                                                                 for m in leaves]
    was_training = model.training
    model.eval()  # no BatchNorm statistics are updated by the probe
    error = None
    output = None
    try:
        with torch.no_grad():
            # random images (fixed seed): a ReLU written as F.relu shows as values >= 0 between layers
            output = model(torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0)))
    except NotImplementedError:
        fail(f"{name} の forward はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して forward を書き、クラスのセルをもう一度実行してください。")
    except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint below
        error = f"{type(e).__name__}: {e}"
        if entered:
            explained = layer_mismatch(*entered[-1])
            if explained:
                error = f"{explained}\n   (PyTorch のエラー: {error})"
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return layers, output, error


def _of(layers: list[Layer], kind: type) -> list[Layer]:
    return [layer for layer in layers if isinstance(layer.module, kind)]


def _modules(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _shrinking_conv(layers: list[Layer]) -> Layer | None:
    """The first conv whose output is smaller than its input (padding forgotten), if any."""
    for layer in _of(layers, nn.Conv2d):
        if layer.output_shape[2:] != layer.input_shape[2:]:
            return layer
    return None


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape[2:])


def _check_runs(layers: list[Layer], output: torch.Tensor | None, error: str | None, name: str,
                num_classes: int, padding_hint: str) -> None:
    """Forward ran and returned (BATCH, num_classes); otherwise say where it went wrong."""
    if error is not None:
        shrunk = _shrinking_conv(layers)
        hint = "エラーメッセージの最後の行を読んで、各層の入出力の形を確かめてください。"
        if "(PyTorch のエラー:" in error:  # layer_mismatch named the layer and the fix
            hint = "上に書いた層の引数 (__init__ の中) を直し、クラスのセルを実行し直してから確認してください。"
        elif shrunk is not None:
            hint = (f"畳み込みで {_size(shrunk.input_shape)} → {_size(shrunk.output_shape)} に縮んでいます。"
                    f"padding を忘れていませんか。{padding_hint}")
        elif "mat1 and mat2" in error or "shapes cannot be multiplied" in error:
            hint = ("Linear の入力数が、その直前の (チャンネル数 × 高さ × 幅) と合っていません。"
                    "print(x.shape) で forward の途中の形を確かめてください。")
        fail(f"{name} に (B, 3, 32, 32) の画像を入れるとエラーになりました: {error}", hint)
    if not isinstance(output, torch.Tensor):
        fail(f"{name} の forward がテンソルを返していません (返り値: {type(output).__name__})。",
             "forward の最後に return x を書いたか確かめてください。")
    expected = (BATCH, num_classes)
    if tuple(output.shape) != expected:
        if output.dim() != 2:
            hint = "全結合層の前に torch.flatten(x, 1) で (B, C×H×W) に平らにしましたか。"
        elif output.shape[0] != BATCH:
            hint = "バッチの次元 (0 番目) を潰しています。flatten は torch.flatten(x, 1) と 1 から始めます。"
        else:
            hint = "最後の Linear の出力数を num_classes にしてください (10 と直接書かないこと)。"
        fail(f"{name} の出力の形が {tuple(output.shape)} です。(B, 3, 32, 32) の入力なら {expected} のはずです。",
             hint)


def _check_logits(output: torch.Tensor, name: str) -> None:
    """The output is logits (any real numbers), not softmax probabilities or ReLU'd scores.

    Random images through a freshly initialised net give logits of both signs, never exactly 0 and
    never rows that sum to 1. ``log_softmax`` passes: CrossEntropyLoss gives it the same loss.
    """
    rows = output.double()
    if bool((rows >= 0).all()) and bool((rows <= 1).all()) and torch.allclose(rows.sum(1), torch.ones(len(rows),
                                                                                  dtype=rows.dtype), atol=1e-4):
        fail(f"{name} の forward が softmax の確率を返しています (出力が 0〜1 で、各行の和が 1 です)。",
             "forward はロジット (softmax の前のスコア) を返します。nn.CrossEntropyLoss が中で softmax するので、"
             "forward でも softmax すると 2 回かかり、学習が進みにくくなります。最後の Linear の出力をそのまま return してください。")
    if bool((rows >= 0).all()) and bool((rows == 0).any()):
        fail(f"{name} の出力がすべて 0 以上で、ちょうど 0 のものがあります。最後の全結合層の後に ReLU をかけていませんか。",
             "ReLU は層と層の間に入れ、最後の Linear の後には入れません (スコアは負にもなれる必要があります)。")


def _check_conv_count(layers: list[Layer], model: nn.Module, name: str, expected: int, hint: str) -> None:
    ran = _of(layers, nn.Conv2d)
    if len(ran) != expected:
        defined = len(_modules(model, nn.Conv2d))
        extra = f" (__init__ では {defined} 個定義されています)" if defined != len(ran) else ""
        fail(f"{name} の forward で使われた畳み込み層 (nn.Conv2d) が {len(ran)} 個です{extra}。"
             f"{expected} 個のはずです。", hint)


def _check_batchnorm(layers: list[Layer], model: nn.Module, name: str) -> None:
    """Every conv is followed (in forward order) directly by a BatchNorm2d of the same width."""
    convs = _of(layers, nn.Conv2d)
    norms = _of(layers, nn.BatchNorm2d)
    if not norms:
        if _modules(model, nn.BatchNorm2d):
            fail(f"{name} は nn.BatchNorm2d を __init__ で作っていますが、forward で使っていません。",
                 "forward で畳み込みの直後に self.bn1(...) のように通してください。")
        other = [type(m).__name__ for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
        hint = ("画像 (B, C, H, W) には nn.BatchNorm2d を使います (1d は全結合用)。" if other else
                "各畳み込みの直後に nn.BatchNorm2d(出力チャンネル数) を入れてください (BatchNorm を忘れています)。")
        fail(f"{name} に BatchNorm2d がありません{' (' + ', '.join(other) + ' はあります)' if other else ''}。", hint)
    for i, conv in enumerate(convs):
        position = layers.index(conv)
        following = layers[position + 1] if position + 1 < len(layers) else None
        if following is None or not isinstance(following.module, nn.BatchNorm2d):
            after = type(following.module).__name__ if following else "何もない"
            fail(f"{i + 1} 番目の畳み込みの直後が BatchNorm2d ではなく {after} です。",
                 "順番は 畳み込み → BatchNorm2d → ReLU → (プーリング) です。すべての畳み込みの後に入れてください。")
        if not torch.equal(following.input, conv.output):
            if torch.equal(following.input, torch.relu(conv.output)):
                fail(f"{i + 1} 番目の畳み込みと BatchNorm2d の間で ReLU が先に計算されています "
                     "(BatchNorm2d に入る値が 0 以上だけです)。",
                     "順番は 畳み込み → BatchNorm2d → ReLU です: F.relu(self.bn1(self.conv1(x))) のように、"
                     "ReLU は BatchNorm の外側に書きます。")
            fail(f"{i + 1} 番目の畳み込みの出力が、そのまま BatchNorm2d に入っていません "
                 f"(間に別の計算があります。形 {conv.output_shape} → {following.input_shape})。",
                 "BatchNorm2d は畳み込みの直後です: self.bn1(self.conv1(x))。プーリングや ReLU はその後です。")
        if following.module.num_features != conv.module.out_channels:
            fail(f"{i + 1} 番目の BatchNorm2d の num_features が {following.module.num_features} ですが、"
                 f"直前の畳み込みの出力チャンネル数は {conv.module.out_channels} です。",
                 "nn.BatchNorm2d(c) の c は直前の Conv2d の out_channels と同じにします。")


def _functional_pools(layers: list[Layer], conv_sizes: list[int], features: int) -> bool:
    """True when no pooling module ran but the sizes show the pools happened (``F.max_pool2d``)."""
    convs, linears = _of(layers, nn.Conv2d), _of(layers, nn.Linear)
    return (not _of(layers, nn.MaxPool2d) and [c.input_shape[2] for c in convs] == conv_sizes
            and bool(linears) and linears[0].input_shape[1:] == (features,))


def _check_activations(layers: list[Layer], name: str) -> None:
    """A ReLU (module or F.relu) runs before every conv but the first and before every Linear after the first."""
    convs, linears = _of(layers, nn.Conv2d), _of(layers, nn.Linear)
    for kind, later, hint in (
            ("畳み込み", convs[1:], "各畳み込み (BatchNorm があればその後) に F.relu(...) か nn.ReLU() を通してください。"),
            ("全結合層", linears[1:], "全結合層の間にも F.relu(...) を入れます (最後の Linear の後には入れません)。")):
        for layer in later:
            if layer.input is not None and bool((layer.input < 0).any()):
                position = (convs if kind == "畳み込み" else linears).index(layer) + 1
                fail(f"{name} の {position} 番目の{kind}に負の値が入っています。その前の ReLU を忘れていませんか。",
                     hint + " ReLU がないと、層を重ねても 1 つの線形変換と同じになってしまいます。")


def _check_num_classes(model_class: Any, name: str, *args: Any) -> None:
    model = _build(model_class, name, *args, num_classes=100)
    _, output, error = _trace(model, name)
    if error is not None or output is None or tuple(output.shape) != (BATCH, 100):
        got = error or (tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__)
        fail(f"{name}(num_classes=100) の出力が (B, 100) になりません ({got})。",
             "最後の Linear の出力数に、10 ではなく引数 num_classes を使ってください。")


def _parameter_difference(model: nn.Module, reference: nn.Module, name: str, hint: str,
                          bias_before_bn: int = 0) -> str:
    """Fail unless the parameter counts agree (or differ only by conv biases before BatchNorm)."""
    got, want = count_parameters(model), count_parameters(reference)
    if got == want:
        return f"パラメータ {got:,} 個"
    if bias_before_bn and got - want == bias_before_bn:
        return (f"パラメータ {got:,} 個 (参考: BatchNorm の直前の畳み込みは bias=False にできます。"
                f"BatchNorm が平均を引くので bias は効かず、{bias_before_bn:,} 個減ります)")
    diff = got - want
    fail(f"{name} のパラメータ数が {got:,} 個です。正解は {want:,} 個で、{abs(diff):,} 個"
         f"{'多すぎ' if diff > 0 else '足りません'}{'ます' if diff > 0 else ''}。", hint)
    return ""


# --- 1. conv_output_size -----------------------------------------------------------------------

# (size, kernel_size, padding, stride) -> output size; the layers of this session
# (7, 2, 0, 2), (9, 2, 0, 2) and (33, 3, 1, 2) do not divide evenly: rounding up (math.ceil) or to the
# nearest (round: 3.5 -> 4) instead of down shows there.
_SIZE_CASES = [(32, 5, 0, 1), (14, 5, 0, 1), (32, 5, 2, 1), (32, 3, 1, 1), (32, 2, 0, 2), (28, 2, 0, 2),
               (7, 3, 0, 2), (9, 3, 1, 2), (7, 2, 0, 2), (9, 2, 0, 2), (33, 3, 1, 2)]


def conv_output_size(fn: Callable[..., Any]) -> None:
    """``fn(size, kernel_size, padding=0, stride=1)`` gives the output size of a conv or pool."""
    require_defined(fn, "conv_output_size")
    for size, kernel, padding, stride in _SIZE_CASES:
        want = (size + 2 * padding - kernel) // stride + 1
        got = call_student(fn, size, kernel, padding=padding, stride=stride, what="conv_output_size")
        if got == want and not isinstance(got, int):
            fail(f"conv_output_size({size}, {kernel}, padding={padding}, stride={stride}) が "
                 f"{got!r} ({type(got).__name__}) です。整数 {want} を返してください。",
                 "割り算は // (切り捨て) を使います。/ だと小数になります。")
        if got != want:
            if got == (size + 2 * padding - kernel) // stride:
                hint = "最後に + 1 を忘れていませんか。"
            elif got == (size - kernel) // stride + 1:
                hint = "padding は上下 (左右) の両側に付くので 2 * padding を足します。"
            elif got == (size + padding - kernel) // stride + 1:
                hint = "padding は片側だけでなく両側に付きます。padding ではなく 2 * padding を足してください。"
            elif got in (-(-(size + 2 * padding - kernel) // stride) + 1, round((size + 2 * padding - kernel) / stride) + 1):
                hint = "割り算は切り上げではなく切り捨てです。// を使ってください (math.ceil や round は使いません)。"
            elif stride > 1 and got == size + 2 * padding - kernel + 1:
                hint = "stride で割るのを忘れていませんか (// stride)。"
            else:
                hint = "式は (size + 2 * padding - kernel_size) // stride + 1 です。"
            fail(f"conv_output_size({size}, {kernel}, padding={padding}, stride={stride}) が {got!r} です。"
                 f"{want} のはずです。", hint)
    ok(f"conv_output_size: {len(_SIZE_CASES)} 通りすべて正解 (例: 32×32 に 5×5 の畳み込み → 28×28、"
       "padding=2 なら 32×32 のまま)")


# --- 2. the wider net with padding ---------------------------------------------------------------

_WIDE_CHANNELS = [32, 64]
_PADDING_HINT_5 = "kernel_size=5 なら padding=2 を付けると大きさが変わりません。"


def _check_wide_convs(layers: list[Layer], name: str) -> None:
    for i, (layer, channels) in enumerate(zip(_of(layers, nn.Conv2d), _WIDE_CHANNELS), start=1):
        conv = layer.module
        if layer.output_shape[2:] != layer.input_shape[2:]:
            fail(f"{i} 番目の畳み込みで {_size(layer.input_shape)} → {_size(layer.output_shape)} に縮んでいます。",
                 f"padding を忘れていませんか。{_PADDING_HINT_5}")
        if conv.out_channels != channels:
            fail(f"{i} 番目の畳み込みの出力チャンネル数が {conv.out_channels} です。{channels} のはずです。",
                 "表のとおり 32 → 64 チャンネルにします (Net の 6 → 16 を広げます)。")
        if conv.kernel_size != (5, 5):
            fail(f"{i} 番目の畳み込みのカーネルが {conv.kernel_size[0]}×{conv.kernel_size[1]} です。5×5 にしてください。",
                 "nn.Conv2d(入力ch, 出力ch, 5, padding=2)")
    pools = _of(layers, nn.MaxPool2d)
    if len(pools) != 2 and not _functional_pools(layers, [32, 16], 64 * 8 * 8):
        fail(f"{name} の forward で使われたプーリングが {len(pools)} 回です。2 回のはずです。",
             "各畳み込み (+ ReLU) の後に 1 回ずつ nn.MaxPool2d(2, 2) を通します: 32→16→8。")


def wide_net(model_class: Any) -> None:
    """``MyWideNet``: conv 3→32 and 32→64 (5×5, padding 2), pools, Linear 4096→256→num_classes."""
    name = "MyWideNet"
    model = _build(model_class, name)
    layers, output, error = _trace(model, name)
    _check_runs(layers, output, error, name, 10, _PADDING_HINT_5)
    _check_logits(output, name)
    _check_conv_count(layers, model, name, 2, "Net と同じく畳み込みは 2 層です (広くするだけ)。")
    _check_wide_convs(layers, name)
    _check_activations(layers, name)
    if _of(layers, nn.BatchNorm2d):
        fail(f"{name} に BatchNorm2d が入っています。", "BatchNorm はこの次の MyBNNet で入れます。ここでは入れません。")
    count = _parameter_difference(
        model, WideNet(batch_norm=False), name,
        "全結合層は Linear(64 * 8 * 8, 256) と Linear(256, num_classes) の 2 つです。"
        "32×32 のまま畳み込み、2 回のプーリングで 8×8 になります。")
    _check_num_classes(model_class, name)
    ok(f"{name}: 出力 (B, 10)、畳み込み 2 層 (32, 64 チャンネル、大きさを保つ)、{count}")


# --- 3. BatchNorm --------------------------------------------------------------------------------


def bn_net(model_class: Any) -> None:
    """``MyBNNet``: ``MyWideNet`` with a BatchNorm2d right after each conv."""
    name = "MyBNNet"
    model = _build(model_class, name)
    layers, output, error = _trace(model, name)
    _check_runs(layers, output, error, name, 10, _PADDING_HINT_5)
    _check_logits(output, name)
    _check_conv_count(layers, model, name, 2, "MyWideNet と同じ 2 層の畳み込みに BatchNorm を足します。")
    _check_wide_convs(layers, name)
    _check_batchnorm(layers, model, name)
    _check_activations(layers, name)
    count = _parameter_difference(
        model, WideNet(batch_norm=True), name,
        "MyWideNet と同じ層に、nn.BatchNorm2d(32) と nn.BatchNorm2d(64) を足したものです "
        "(BatchNorm2d(c) のパラメータは 2c 個)。",
        bias_before_bn=sum(_WIDE_CHANNELS))
    _check_num_classes(model_class, name)
    ok(f"{name}: 畳み込みのすぐ後に BatchNorm2d (32, 64)、出力 (B, 10)、{count}")


# --- 4. VGG11 ------------------------------------------------------------------------------------

VGG11_CONFIG = VGG_CONFIGS["vgg11"]
_VGG_PADDING_HINT = "3×3 の畳み込みには padding=1 を付けると大きさが変わりません。"


def vgg11_config(config: Any) -> None:
    """The VGG11 config list: channels of each 3×3 conv, ``"M"`` for each 2×2 max pool."""
    require_defined(config, "vgg11_config")
    if not isinstance(config, (list, tuple)):
        fail(f"vgg11_config はリストにしてください (今は {type(config).__name__} です)。",
             'たとえば [64, "M", 128, ...] のように書きます。')
    convs = [c for c in config if c != "M"]
    pools = [c for c in config if c == "M"]
    wrong = [c for c in convs if not isinstance(c, int)]
    if wrong:
        fail(f"vgg11_config に整数でも \"M\" でもない要素 {wrong[0]!r} があります。",
             'チャンネル数は整数 (64)、プーリングは大文字の文字列 "M" で書きます。')
    if len(convs) != 8:
        fail(f"畳み込みが {len(convs)} 個あります。VGG11 の畳み込みは 8 個です "
             "(8 畳み込み + 3 全結合 = 11 層。32×32 用では全結合は 1 層にします)。",
             "論文の Table 1 の A 列を上から読んでください。")
    if len(pools) != 5:
        fail(f'"M" (プーリング) が {len(pools)} 個あります。5 個のはずです (32→16→8→4→2→1)。',
             "Table 1 の maxpool の行を数えてください。")
    for i, (got, want) in enumerate(zip(config, VGG11_CONFIG)):
        if got != want:
            fail(f"vgg11_config の {i} 番目 (0 から数えて) が {got!r} です。{want!r} のはずです。",
                 f"正しい並びの最初の {i} 個は {list(VGG11_CONFIG[:i])} です。")
    ok(f"vgg11_config: 畳み込み 8 個 ({', '.join(map(str, convs))})、プーリング 5 個")


def vgg11(model_class: Any) -> None:
    """``VGG11(config, num_classes)``: the VGG11-BN of :class:`MyModules.models.VGG`, built from ``config``."""
    name = "VGG11"
    config = list(VGG11_CONFIG)  # the reference list: this check is about the class, not vgg11_config
    model = _build(model_class, name, config)
    layers, output, error = _trace(model, name)
    if error is not None and not _shrinking_conv(layers) and len(_of(layers, nn.Conv2d)) == 8:
        fail(f"{name} の全結合層でエラーになりました: {error}",
             "32×32 の画像は 5 回のプーリングで 512×1×1 になります。torch.flatten(x, 1) の後は "
             "nn.Linear(512, num_classes) 1 つです (ImageNet 用の 4096 の 3 層ではありません)。")
    _check_runs(layers, output, error, name, 10, _VGG_PADDING_HINT)
    _check_logits(output, name)
    _check_conv_count(layers, model, name, 8,
                      "config の数字 1 つにつき畳み込みを 1 つ作ります。for ループで config を読んでください。")
    for i, layer in enumerate(_of(layers, nn.Conv2d), start=1):
        conv = layer.module
        if conv.kernel_size != (3, 3):
            fail(f"{i} 番目の畳み込みのカーネルが {conv.kernel_size[0]}×{conv.kernel_size[1]} です。"
                 "VGG はすべて 3×3 です。", "nn.Conv2d(in_channels, c, kernel_size=3, padding=1)")
        if layer.output_shape[2:] != layer.input_shape[2:]:
            fail(f"{i} 番目の畳み込みで {_size(layer.input_shape)} → {_size(layer.output_shape)} に縮んでいます。",
                 f"padding を忘れていませんか。{_VGG_PADDING_HINT}")
    channels = [layer.module.out_channels for layer in _of(layers, nn.Conv2d)]
    want_channels = [c for c in config if c != "M"]
    if channels != want_channels:
        fail(f"畳み込みの出力チャンネル数が {channels} です。{want_channels} のはずです。",
             "次の畳み込みの in_channels は、前の畳み込みの out_channels です (最初は 3)。")
    pools = _of(layers, nn.MaxPool2d)
    sizes, side = [], IMAGE[1]
    for item in config:
        if item == "M":
            side //= 2
        else:
            sizes.append(side)
    if len(pools) != 5 and not _functional_pools(layers, sizes, 512 * side * side):
        fail(f"forward で使われたプーリングが {len(pools)} 個です。5 個のはずです。",
             'config の "M" ごとに nn.MaxPool2d(2, 2) を 1 つ作ります。')
    _check_batchnorm(layers, model, name)
    _check_activations(layers, name)
    count = _parameter_difference(
        model, VGG(config, batch_norm=True), name,
        "畳み込みは 3×3 で 8 層、それぞれに BatchNorm2d、最後は nn.Linear(512, num_classes) 1 つです。",
        bias_before_bn=sum(want_channels))
    _check_config_used(model_class, name)
    _check_num_classes(model_class, name, config)
    ok(f"{name}: 畳み込み 8 層 (3×3, padding 1)、すべての後に BatchNorm2d、プーリング 5 回、出力 (B, 10)、{count}")


def _check_config_used(model_class: Any, name: str) -> None:
    """The class builds its layers from ``config`` (not a hard-coded copy of VGG11)."""
    other: Sequence[int | str] = VGG_CONFIGS["vgg13"]
    model = _build(model_class, name, list(other))
    convs = len(_modules(model, nn.Conv2d))
    want = len([c for c in other if c != "M"])
    if convs != want:
        fail(f"{name}(vgg13 の config) の畳み込みが {convs} 個です ({want} 個のはず)。"
             "config を使わずに層を直接書いていませんか。",
             "__init__ の中で for item in config: ... と config を 1 つずつ読んで層を作ってください。")


# ------------------------------------------------------------------------------------------------
# 01_01: one training step by hand; 01_02: the same loop on a device
# ------------------------------------------------------------------------------------------------


def _require_function(fn: Any, name: str) -> None:
    """The student passed the function itself, not what calling it returned (or a placeholder)."""
    require_defined(fn, name)
    if not callable(fn):
        fail(f"check には関数 {name} そのものを渡してください (今は {type(fn).__name__} が渡されています)。",
             f"check.…({name}) と、かっこを付けずに関数の名前だけを渡します ({name}(...) と呼んだ結果ではなく)。")


def _probe_batch(seed: int, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A small batch of "images" (B, 3, 8, 8) and labels (B,): enough to see what a step does."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 8, generator=generator), torch.randint(0, 10, (batch,), generator=generator)


def _probe_net(seed: int = 0) -> nn.Module:
    """A tiny conv net with the tutorial's shape of output: (B, 3, 8, 8) -> (B, 10) logits."""
    with torch.random.fork_rng():  # the student's random state stays as it was
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


class _Events:
    """What happened during one call of the student's step, in order: forward, backward, zero_grad, step."""

    def __init__(self):
        self.names: list[str] = []
        self.grads_at_step: list[list[torch.Tensor | None]] = []
        self.loss_inputs: list[torch.Tensor] = []
        # Whether autocast was on during each backward pass and each optimizer step (both belong outside it).
        self.autocast_in_backward: list[bool] = []
        self.autocast_at_step: list[bool] = []

    def first(self, name: str) -> int:
        return self.names.index(name) if name in self.names else -1


def _autocast_on() -> bool:
    """True inside a ``torch.autocast`` block (the state is per thread; the checks run on the CPU, where
    autograd runs a backward pass in the thread that called it, so a parameter's hook sees it too)."""
    return any(torch.is_autocast_enabled(device_type) for device_type in ("cpu", "cuda"))


class _SpySGD(torch.optim.SGD):
    """Plain SGD that writes zero_grad and step (with the gradients it found) into ``events``."""

    def __init__(self, params, lr: float):
        super().__init__(params, lr=lr)
        self.events = _Events()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.events.names.append("zero_grad")
        super().zero_grad(set_to_none)

    def step(self, closure=None):
        self.events.names.append("step")
        self.events.autocast_at_step.append(_autocast_on())
        self.events.grads_at_step.append([None if p.grad is None else p.grad.detach().clone()
                                          for group in self.param_groups for p in group["params"]])
        return super().step(closure)


class _SpyLoss(nn.CrossEntropyLoss):
    """CrossEntropyLoss that notes what it was given (a softmax before it, arguments swapped)."""

    def __init__(self, events_of: Callable[[], _Events]):
        super().__init__()
        self.events_of = events_of

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's names
        if isinstance(input, torch.Tensor) and not input.is_floating_point():
            fail("criterion の引数の順番が逆です (最初の引数に整数のラベルが入っています)。",
                 "criterion(outputs, labels) の順です: 先にモデルの出力 (ロジット)、次に正解のラベル。")
        self.events_of().loss_inputs.append(input.detach())
        return super().forward(input, target)


def _is_probabilities(x: torch.Tensor) -> bool:
    """Rows in [0, 1] that sum to 1: what softmax gives, never what logits look like."""
    x = x.double()
    return bool((x >= 0).all() and (x <= 1).all()) and torch.allclose(x.sum(-1), torch.ones_like(x[..., 0]),
                                                                      atol=1e-4)


def _expected_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    """The loss and the gradient of each parameter that one right step computes (on a hook-free copy)."""
    copy_ = _probe_net()
    copy_.load_state_dict(model.state_dict())
    loss = nn.functional.cross_entropy(copy_(images), labels)
    loss.backward()
    return loss.item(), [p.grad.detach().clone() for p in copy_.parameters()]


def _close(got: list[torch.Tensor | None], want: list[torch.Tensor], scale: float = 1.0) -> bool:
    return all(g is not None and torch.allclose(g, w * scale, rtol=1e-3, atol=1e-6) for g, w in zip(got, want))


_STEP_ERRORS = [  # (part of PyTorch's message, what it means for a training step)
    ("does not require grad", "学習のステップを torch.no_grad() の中で計算していませんか。no_grad は評価のときだけ使います"
                              " (中で計算した損失からは勾配を計算できません)。"),
    ("backward through the graph a second time", "loss.backward() を 2 回呼んでいませんか。1 ステップに 1 回です。"),
]


def _run_step(fn: Callable[..., Any], model: nn.Module, images, labels, criterion, optimizer, what: str) -> Any:
    """Call the student's step; PyTorch errors a step typically makes get their Japanese meaning."""
    try:
        return fn(model, images, labels, criterion, optimizer)
    except CheckFailed:
        raise
    except NotImplementedError:
        fail(f"{what}はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して自分のコードを書き、その関数のセルをもう一度実行してから、このセルを実行してください。")
    except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint
        for text, hint in _STEP_ERRORS:
            if text in str(e):
                fail(f"{what}を実行するとエラーになりました: {type(e).__name__}: {e}", hint)
        fail(f"{what}を実行するとエラーになりました: {type(e).__name__}: {e}",
             "エラーメッセージの最後の行を読んで、どの行で何が起きたかを確かめてください。")
    return None


def _check_step_order(events: _Events) -> None:
    """forward → backward → step happened, each once, in this order, with no zero_grad in between."""
    if "forward" not in events.names:
        fail("渡された model で順伝播 (model(images)) をしていません。",
             "関数の引数の model を使ってください (ノートブックの別の変数 net や models.Net() ではなく)。")
    if "backward" not in events.names:
        fail("loss.backward() を呼んでいません (勾配が計算されていません)。",
             "損失を計算したら loss.backward() で勾配を計算し、それから optimizer.step() で更新します。")
    steps = events.names.count("step")
    if steps == 0:
        fail("optimizer.step() を呼んでいません (重みが更新されていません)。",
             "loss.backward() の後に optimizer.step() を書いてください。引数の optimizer を使います。")
    if steps > 1:
        fail(f"1 回の呼び出しで optimizer.step() が {steps} 回呼ばれています。",
             "1 ステップで更新は 1 回です。")
    backward, step = events.first("backward"), events.first("step")
    if step < backward:
        fail("optimizer.step() を loss.backward() より前に呼んでいます。",
             "順番は zero_grad → 順伝播と損失 → loss.backward() → optimizer.step() です。"
             "step は backward が計算した勾配を使うので、backward の後に呼びます。")
    if "zero_grad" in events.names[backward:step]:
        fail("loss.backward() と optimizer.step() の間で zero_grad() を呼んでいます (勾配が消えてから更新しています)。",
             "zero_grad() はステップの最初 (順伝播の前) に呼びます。")


def _spied_net() -> tuple[nn.Module, _SpySGD]:
    """The probe net and its SGD; forward and backward passes are noted in ``optimizer.events`` too."""
    model = _probe_net()
    optimizer = _SpySGD(model.parameters(), lr=0.1)
    model.register_forward_hook(lambda *_: optimizer.events.names.append("forward"))

    def backward_hook(grad):
        optimizer.events.names.append("backward")
        optimizer.events.autocast_in_backward.append(_autocast_on())

    next(model.parameters()).register_hook(backward_hook)
    return model, optimizer


def train_step(fn: Callable[..., Any]) -> None:
    """``fn(model, images, labels, criterion, optimizer)``: one SGD step on a batch; returns the loss tensor.

    Runs the student's step twice on a small net (two batches) with an SGD that records its calls, and
    compares each step's gradients and loss with a right step computed on a copy of the model.
    """
    _require_function(fn, "train_step")
    model, optimizer = _spied_net()
    criterion = _SpyLoss(lambda: optimizer.events)
    for call, seed in enumerate((1, 2), start=1):
        images, labels = _probe_batch(seed)
        optimizer.events = _Events()
        want_loss, want_grads = _expected_step(model, images, labels)
        left_over = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
        result = _run_step(fn, model, images, labels, criterion, optimizer, "train_step ")
        events = optimizer.events
        _check_step_order(events)
        if events.loss_inputs and _is_probabilities(events.loss_inputs[-1]):
            fail("criterion に softmax した確率を渡しています。",
                 "nn.CrossEntropyLoss は中で softmax をするので、model(images) の出力 (ロジット) をそのまま渡します。")
        grads = events.grads_at_step[0]
        if not _close(grads, want_grads):
            if call == 2 and all(o is not None for o in left_over) and _close(
                    [None if g is None else g - o for g, o in zip(grads, left_over)], want_grads):
                fail("2 回目のステップの勾配に、1 回目の勾配が足されています。optimizer.zero_grad() を忘れていませんか。",
                     "勾配は .grad に足し算されていくので、毎ステップの最初に optimizer.zero_grad() で消します。")
            fail("optimizer.step() のときの勾配が、このミニバッチの損失 criterion(model(images), labels) の勾配と違います。",
                 "zero_grad → outputs = model(images) → loss = criterion(outputs, labels) → loss.backward() → "
                 "optimizer.step() の順に、引数の images と labels で計算しているか確かめてください。")
        _check_returned_loss(result, want_loss)
    ok("train_step: zero_grad → 順伝播と損失 → backward → step の順で、勾配も損失も正しい (2 ステップで確認)")


def _check_returned_loss(result: Any, want: float) -> None:
    if result is None:
        fail("train_step が何も返していません。", "最後に return loss を書いてください (ループで loss.item() を記録します)。")
    if isinstance(result, (int, float)):
        fail(f"train_step が数 ({result!r}) を返しています。loss のテンソルを返してください。",
             "loss.item() はループの中でします。関数は return loss (0 次元のテンソル) で終えます。")
    if not isinstance(result, torch.Tensor) or result.dim() != 0:
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        fail(f"train_step の返り値が損失 (0 次元のテンソル) ではありません ({shape})。",
             "return loss で、criterion(outputs, labels) の結果を返します (outputs ではなく)。")
    if abs(result.item() - want) > 1e-4 * max(1.0, abs(want)):
        fail(f"train_step が返した損失 {result.item():.4f} が、このミニバッチの損失 {want:.4f} と違います。",
             "更新の前に計算した loss = criterion(model(images), labels) をそのまま返してください。")


# The device check runs on the CPU (where the tests run, and so that it works before a GPU is there):
# a batch "on the host" is a tensor subclass that complains when it is used before .to(device), and
# .to(device) gives back a plain tensor, "on the device". The net records where it was moved.

_READ_ONLY = {"size", "dim", "numel", "__len__", "__repr__", "__format__", "is_floating_point", "element_size",
              "ndimension", "nelement", "is_contiguous", "__get__"}  # __get__: .shape, .device, .dtype


class _OnHost(torch.Tensor):
    """A batch as a DataLoader gives it, in host memory: using it in the model or the loss fails."""

    role = "tensor"  # "images" or "labels"
    was_moved = False  # .to(device) was called on this very tensor
    moves: list[tuple[str, torch.device | None]]  # every .to / .cuda call on a host batch: (role, target)
    device_wanted: torch.device

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        this = args[0] if args and isinstance(args[0], _OnHost) else None
        if this is not None and func in (torch.Tensor.to, torch.Tensor.cuda):
            target = (torch.device("cuda") if func is torch.Tensor.cuda
                      else torch._C._nn._parse_to(*args[1:], **kwargs)[0])
            if target is None:  # .to(dtype) only: still on the host
                with torch._C.DisableTorchFunctionSubclass():
                    return _host(func(*args, **kwargs).as_subclass(torch.Tensor), this.role, this.moves,
                                 this.device_wanted)
            this.moves.append((this.role, target))
            this.was_moved = True
            if target != this.device_wanted:
                written = "cuda()" if func is torch.Tensor.cuda else f"to({str(target)!r})"
                fail(f"{this.role}.{written} と装置を直接書いています。引数の device を使ってください。",
                     f"{this.role} = {this.role}.to(device) と書くと、GPU がなくても (device が cpu でも) 動きます。")
            with torch._C.DisableTorchFunctionSubclass():
                return this.as_subclass(torch.Tensor).clone()  # a copy "on the device"
        if getattr(func, "__name__", "") in _READ_ONLY:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        used = [a for a in (*args, *kwargs.values()) if isinstance(a, _OnHost)]
        role = used[0].role if used else "tensor"
        moved = bool(used) and used[0].was_moved
        if moved:
            fail(f"{role}.to(device) を呼んでいますが、返ってきたコピーを使わずに、元の {role} (CPU のまま) を使っています。",
                 f".to(device) はその場で移すのではなくコピーを返します: {role} = {role}.to(device) と代入してください。")
        where = "モデル" if role == "images" else "損失 (criterion)"
        fail(f"{role} が CPU のまま{where}に入っています。{role} を device に移していません。",
             f"ループの中で、使う前に {role} = {role}.to(device) と移してください "
             "(DataLoader が出すバッチは CPU にあります。images と labels の両方です)。")


def _host(t: torch.Tensor, role: str, moves: list, device: torch.device) -> _OnHost:
    batch = t.as_subclass(_OnHost)
    batch.role, batch.moves, batch.device_wanted = role, moves, device
    return batch


class _HostLoader:
    """Stands in for a DataLoader: a few batches of host tensors (images, labels)."""

    def __init__(self, device: torch.device, batches: int = 2):
        self.moves: list[tuple[str, torch.device | None]] = []
        self.batches = [_probe_batch(seed) for seed in range(batches)]
        self.device = device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for images, labels in self.batches:
            yield (_host(images, "images", self.moves, self.device), _host(labels, "labels", self.moves, self.device))


class _ProbeNet(nn.Module):
    """The tiny net of the step check, remembering where it was moved and what reached forward."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.net = _probe_net()
        self.device_wanted = device
        self.moved_to: list[torch.device] = []

    def _moved(self, target: torch.device | None, written: str) -> None:
        if target is None:
            return
        self.moved_to.append(target)
        if target != self.device_wanted:
            fail(f"model.{written} と装置を直接書いています。引数の device を使ってください。",
                 "model.to(device) と書くと、GPU がなくても (device が cpu でも) 動きます。")

    def to(self, *args, **kwargs):
        self._moved(torch._C._nn._parse_to(*args, **kwargs)[0], f"to({', '.join(map(repr, args))})")
        return super().to(*args, **kwargs)

    def cuda(self, device=None):
        self._moved(torch.device("cuda"), "cuda()")
        return super().cuda(device)

    def forward(self, x):
        if not self.moved_to:
            fail("model を device に移さないまま学習しています (model.to(device) がありません)。",
                 "optimizer を作る前に model.to(device) を 1 回呼びます (モデルはその場で移るので代入はいりません)。")
        if isinstance(x, tuple):
            fail("model にタプルが入っています。images = images.to(device), labels.to(device) と書いていませんか。",
                 "左辺にも 2 つ書きます: images, labels = images.to(device), labels.to(device)")
        return self.net(x)


def _run_on_device(fn: Callable[..., Any], model: _ProbeNet, loader: _HostLoader, device: torch.device) -> None:
    """One epoch of the student's loop; PyTorch errors a device move typically makes get their Japanese meaning."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            fn(model, loader, device, 1)
    except CheckFailed:
        raise
    except NotImplementedError:
        fail("train_on_device はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して .to(device) の行を書き、関数のセルをもう一度実行してから、このセルを実行してください。")
    except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint
        error = f"train_on_device を実行するとエラーになりました: {type(e).__name__}: {e}"
        roles = [role for role, _ in loader.moves]
        if isinstance(e, AttributeError) and "'to'" in str(e) and "Loader" in str(e):
            fail(f"ローダーに .to(device) を呼んでいます ({e})。",
                 "ローダーそのものは移せません。ループの中で取り出した images と labels を移します。")
        if roles.count("images") > roles.count("labels"):
            fail(error, "labels = images.to(device) のように、labels に images を入れていませんか。"
                        "images, labels = images.to(device), labels.to(device) です。")
        fail(error, "エラーメッセージの最後の行を読んで、どの行で何が起きたかを確かめてください。")


def train_on_device(fn: Callable[..., Any]) -> None:
    """``fn(model, train_loader, device, epochs)``: the tutorial loop with the model and every batch on ``device``.

    The check runs it for one epoch of two small batches on the CPU, with batches that refuse to be used
    before ``.to(device)`` and a net that records ``model.to(device)``.
    """
    _require_function(fn, "train_on_device")
    device = torch.device("cpu")
    model, loader = _ProbeNet(device), _HostLoader(device)
    before = [p.detach().clone() for p in model.parameters()]
    _run_on_device(fn, model, loader, device)
    if not model.moved_to:
        fail("model を device に移していません (model.to(device) がありません)。",
             "optimizer を作る前に model.to(device) を 1 回呼びます (モデルはその場で移るので代入はいりません)。")
    roles = [role for role, _ in loader.moves]
    for role in ("images", "labels"):
        if roles.count(role) < len(loader):
            fail(f"{len(loader)} つのバッチのうち {roles.count(role)} つでしか {role} を移していません。",
                 "移す行は for images, labels in train_loader: の中 (毎回) に書きます。")
    if all(torch.equal(b, p) for b, p in zip(before, model.parameters())):
        fail("train_on_device を実行しても model の重みが変わっていません。",
             "与えられた学習の行 (zero_grad, backward, step) を消していないか確かめてください。")
    ok("train_on_device: model を 1 回、毎回の images と labels を device に移しています (2 バッチで確認)")


# ------------------------------------------------------------------------------------------------
# 01_04: a mixed-precision step (autocast, GradScaler for fp16) and channels_last, by hand
# ------------------------------------------------------------------------------------------------


class _SpyScaler(torch.amp.GradScaler):
    """A GradScaler that notes scale, step and update (the three calls an fp16 step needs)."""

    def __init__(self, device_type: str, init_scale: float):
        super().__init__(device_type, init_scale=init_scale)
        self.calls: list[str] = []

    def scale(self, outputs):
        self.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


_HALF = {torch.bfloat16: "bf16 (torch.bfloat16)", torch.float16: "fp16 (torch.float16)", torch.float32: "fp32"}
_SCALE = 2.0 ** 12  # the spy scaler's factor: a step without it, or without unscaling, is off by this much


def _amp_reference(model: nn.Module, images, labels, dtype: torch.dtype) -> list[torch.Tensor]:
    """The (unscaled) gradients of a right autocast step, on a copy."""
    copy_ = _probe_net()
    copy_.load_state_dict(model.state_dict())
    with torch.autocast("cpu", dtype=dtype):
        loss = nn.functional.cross_entropy(copy_(images), labels)
    loss.backward()
    return [p.grad.detach().clone() for p in copy_.parameters()]


def _loose(got: list[torch.Tensor | None], want: list[torch.Tensor], scale: float = 1.0) -> bool:
    """Equal up to half-precision rounding (a 1 % tolerance; the mistakes are off by 4096x)."""
    return all(g is not None and torch.allclose(g, w * scale, rtol=5e-2, atol=1e-3 * scale * float(w.abs().max()))
               for g, w in zip(got, want))


def _run_amp(fn: Callable[..., Any], dtype: torch.dtype, scaler: _SpyScaler | None):
    """One call of the student's step on the probe net; returns (dtype the Linear ran in, events, grads, warnings)."""
    model, optimizer = _spied_net()
    images, labels = _probe_batch(3)
    want = _amp_reference(model, images, labels, dtype)
    ran_in: list[torch.dtype] = []
    model[-1].register_forward_hook(lambda m, i, out: ran_in.append(out.dtype))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn(model, images, labels, nn.CrossEntropyLoss(), optimizer, dtype, scaler)
        except CheckFailed:
            raise
        except NotImplementedError:
            fail("amp_step はまだ書かれていません (NotImplementedError)。",
                 "TODO の行を消して自分のコードを書き、関数のセルをもう一度実行してから、このセルを実行してください。")
        except AttributeError as e:
            if scaler is None and "NoneType" in str(e):
                fail(f"scaler が None のとき (bf16) にも scaler を使っています ({e})。",
                     "bf16 では損失スケーリングはいりません (scaler=None)。if scaler is not None: で fp16 のときだけ "
                     "scaler.scale(loss).backward() などを使い、それ以外は loss.backward() と optimizer.step() です。")
            fail(f"amp_step を実行するとエラーになりました: AttributeError: {e}",
                 "エラーメッセージの最後の行を読んで、どの変数に何を呼んだかを確かめてください。")
        except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint
            if "No inf checks were recorded" in str(e):  # update() without scaler.step(optimizer) before it
                fail("scaler.step(optimizer) ではなく optimizer.step() で更新しています (scaler.update() が、"
                     "scaler.step の記録がないと言って止まりました)。",
                     "scaler.step(optimizer) は勾配を倍率で割り戻してから更新します。optimizer.step() の代わりに使います。")
            fail(f"amp_step を実行するとエラーになりました: {type(e).__name__}: {e}",
                 "エラーメッセージの最後の行を読んで、どの行で何が起きたかを確かめてください。")
    disabled = any("autocast" in str(w.message) and "Disabling" in str(w.message) for w in caught)
    return ran_in, optimizer.events, want, disabled


def _check_autocast(ran_in: list[torch.dtype], dtype: torch.dtype, disabled: bool) -> None:
    if not ran_in:
        fail("amp_step で model(images) が計算されていません。", "with torch.autocast(...) の中で outputs = model(images) を計算します。")
    if ran_in[0] == torch.float32:
        if disabled:
            fail("autocast が効いていません (device_type の装置がなく、PyTorch が autocast を止めました)。",
                 "torch.autocast の device_type は 'cuda' と直接書かず、images.device.type (cpu か cuda) を渡します。")
        fail("順伝播が fp32 のままです。model(images) を torch.autocast の中で計算していません。",
             "with torch.autocast(device_type=images.device.type, dtype=amp_dtype): の中で outputs = model(images) と "
             "loss = criterion(outputs, labels) を計算します。")
    if ran_in[0] != dtype:
        fail(f"順伝播が {_HALF.get(ran_in[0], ran_in[0])} で計算されています。amp_dtype は {_HALF[dtype]} です。",
             "torch.autocast(..., dtype=amp_dtype) と、引数の amp_dtype を渡してください (省くと装置ごとの既定になります)。")


def _check_outside_autocast(events: _Events, scaler: _SpyScaler | None) -> None:
    """The recipe: forward and loss inside ``torch.autocast``, backward and the update after the block.

    PyTorch's AMP docs advise against backward passes under autocast (the backward ops run in the dtype
    autocast chose for their forward anyway); an update under autocast is the same block indented too far."""
    inside = [what for what, states in (("loss.backward()", events.autocast_in_backward),
                                        ("optimizer.step()", events.autocast_at_step)) if any(states)]
    if not inside:
        return
    if scaler is not None:
        inside = [what.replace("loss.backward()", "scaler.scale(loss).backward()")
                  .replace("optimizer.step()", "scaler.step(optimizer)") for what in inside]
    outside = ("scaler.scale(loss).backward()、scaler.step(optimizer)、scaler.update()" if scaler is not None
               else "loss.backward() と optimizer.step()")
    fail(f"{' と '.join(inside)} を torch.autocast の中で呼んでいます。",
         "backward と step は autocast の外で呼びます: with の中は順伝播 outputs = model(images) と"
         f"損失 loss = criterion(outputs, labels) だけにし、インデントを戻して with を抜けてから {outside} を書きます。")


def _check_scaled_step(events: _Events, scaler: _SpyScaler, want: list[torch.Tensor]) -> None:
    if "scale" not in scaler.calls:
        fail("fp16 なのに scaler を使っていません (損失スケーリングなしの loss.backward())。",
             "fp16 では小さな勾配が 0 になるので、scaler.scale(loss).backward() → scaler.step(optimizer) → "
             "scaler.update() の 3 つを使います。")
    steps = events.names.count("step")
    if steps > 1:
        fail(f"optimizer の更新が {steps} 回行われています。scaler.step(optimizer) と optimizer.step() の両方を呼んでいませんか。",
             "scaler.step(optimizer) が中で optimizer.step() を呼ぶので、optimizer.step() は書きません。")
    if "step" not in scaler.calls:
        if steps and _loose(events.grads_at_step[0], want, _SCALE):
            fail("scaler.step(optimizer) ではなく optimizer.step() で更新しています (勾配が倍率をかけたままです)。",
                 "scaler.step(optimizer) は勾配を倍率で割り戻してから更新します。optimizer.step() の代わりに使います。")
        fail("scaler.step(optimizer) を呼んでいません。", "scaler.scale(loss).backward() の後に scaler.step(optimizer)、"
             "最後に scaler.update() です。")
    if not steps:
        fail("重みが更新されていません (scaler.step の前に勾配がありません)。",
             "scaler.scale(loss).backward() で勾配を計算してから scaler.step(optimizer) を呼びます。")
    if "update" not in scaler.calls:
        fail("scaler.update() を呼んでいません。",
             "scaler.update() は次のステップの倍率を調整します (勾配が inf になったら小さくする)。毎ステップ最後に呼びます。")
    if _loose(events.grads_at_step[0], want, 1 / _SCALE):
        fail("更新に使われた勾配が 1/倍率 に小さくなっています。scaler.scale(loss) の結果ではなく loss で backward していませんか。",
             "scaler.scale(loss).backward() と、倍率をかけた損失で逆伝播します。")
    if not _loose(events.grads_at_step[0], want):
        fail("更新に使われた勾配が、このバッチの損失の勾配と合いません。",
             "optimizer.zero_grad() の後、autocast の中で順伝播と損失、scaler.scale(loss).backward()、"
             "scaler.step(optimizer)、scaler.update() の順です。")


def amp_step(fn: Callable[..., Any]) -> None:
    """``fn(model, images, labels, criterion, optimizer, amp_dtype, scaler)``: one mixed-precision step.

    Checked on the CPU twice: bf16 without a scaler (as on the CPU, an A100 or an H100) and fp16 with a
    GradScaler (as on a T4; the CPU runs fp16 autocast too). The forward must run in ``amp_dtype``
    and the update must match a right step.
    """
    _require_function(fn, "amp_step")
    ran_in, events, want, disabled = _run_amp(fn, torch.bfloat16, None)
    _check_autocast(ran_in, torch.bfloat16, disabled)
    _check_step_order(events)
    _check_outside_autocast(events, None)
    if not _loose(events.grads_at_step[0], want):
        fail("bf16 の更新に使われた勾配が、このバッチの損失の勾配と合いません。",
             "optimizer.zero_grad() の後、autocast の中で順伝播と損失、loss.backward()、optimizer.step() の順です。")
    scaler = _SpyScaler("cpu", _SCALE)
    ran_in, events, want, disabled = _run_amp(fn, torch.float16, scaler)
    _check_autocast(ran_in, torch.float16, disabled)
    _check_scaled_step(events, scaler, want)
    _check_outside_autocast(events, scaler)
    ok("amp_step: 順伝播は autocast の中 (bf16 と fp16 で確認)、fp16 では scaler.scale → step → update で正しく更新")


def _check_nhwc_images(new_images: Any, original: torch.Tensor) -> None:
    if not isinstance(new_images, torch.Tensor):
        fail("返した images がテンソルではありません。", "return model, images の順です (model が先)。")
    if tuple(new_images.shape) != tuple(original.shape):
        fail(f"images の形が {tuple(original.shape)} から {tuple(new_images.shape)} に変わっています。"
             "permute や reshape で次元を並べ替えていませんか。",
             "channels_last は形 (B, C, H, W) をそのままに、メモリの中の並びだけを NHWC にします: "
             "images.contiguous(memory_format=torch.channels_last)")
    if not torch.equal(new_images, original):
        fail("images の値が変わっています。", "並びを変えるだけなので値は同じはずです: images.contiguous(memory_format=torch.channels_last)")
    if not new_images.is_contiguous(memory_format=torch.channels_last):
        fail("images のメモリの並びが channels_last になっていません。",
             "x.contiguous(memory_format=torch.channels_last) はコピーを返すので、images = ... と代入してください。")


def channels_last(fn: Callable[..., Any]) -> None:
    """``fn(model, images) -> (model, images)``: the weights and the batch in channels_last (NHWC) memory order."""
    _require_function(fn, "to_channels_last")
    model = _probe_net()
    images, _ = _probe_batch(4)
    original = images.clone()
    try:
        result = fn(model, images)
    except NotImplementedError:
        fail("to_channels_last はまだ書かれていません (NotImplementedError)。",
             "TODO の行を消して自分のコードを書き、関数のセルをもう一度実行してから、このセルを実行してください。")
    except TypeError as e:
        if "memory_format" in str(e):
            fail(f"to() に torch.channels_last をそのまま渡しています ({str(e).splitlines()[0]})。",
                 "memory_format=torch.channels_last とキーワードで渡します: x.contiguous(memory_format=torch.channels_last)、"
                 "model.to(memory_format=torch.channels_last)。")
        fail(f"to_channels_last を実行するとエラーになりました: TypeError: {e}", "引数の順番と名前を確かめてください。")
    except Exception as e:  # noqa: BLE001 - the student's crash becomes a hint
        fail(f"to_channels_last を実行するとエラーになりました: {type(e).__name__}: {e}",
             "エラーメッセージの最後の行を読んで、どの行で何が起きたかを確かめてください。")
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"to_channels_last の返り値が (model, images) の 2 つではありません ({type(result).__name__})。",
             "最後に return model, images と書きます。")
    new_model, new_images = result
    _check_nhwc_images(new_images, original)
    if not isinstance(new_model, nn.Module):
        fail(f"返した model が nn.Module ではありません ({type(new_model).__name__})。", "return model, images の順です。")
    weight = next(m.weight for m in new_model.modules() if isinstance(m, nn.Conv2d))
    if not weight.is_contiguous(memory_format=torch.channels_last):
        fail("model の畳み込みの重みが channels_last になっていません (images だけ変えています)。",
             "model = model.to(memory_format=torch.channels_last) も書きます (重みとバッチの両方を NHWC に)。")
    ok("to_channels_last: images の形と値はそのまま、images と畳み込みの重みのメモリの並びが NHWC (channels_last)")
