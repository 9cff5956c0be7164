"""Self-checks for Exercise01 (``01_03_vgg``): output sizes, a wider net, BatchNorm, VGG11.

Each check takes the student's answer (a function, a class, a list), runs it on a small input and
compares what it sees with the reference in :mod:`MyModules.models`. Models are inspected from the
outside (forward hooks on the leaf modules), so any way of writing them passes as long as it builds
the same network: ``nn.Sequential`` or attributes, ``F.relu`` or ``nn.ReLU``.

    from MyModules.checks import ex01 as check
    check.wide_net(MyWideNet)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..models import VGG, VGG_CONFIGS, WideNet, count_parameters
from . import call_student, fail, layer_mismatch, ok, require_defined

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
_SIZE_CASES = [(32, 5, 0, 1), (14, 5, 0, 1), (32, 5, 2, 1), (32, 3, 1, 1), (32, 2, 0, 2), (28, 2, 0, 2),
               (7, 3, 0, 2), (9, 3, 1, 2)]


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
