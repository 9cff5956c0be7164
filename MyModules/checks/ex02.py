"""Self-checks of Exercise02 (seeing training: TensorBoard, hooks, confusion matrix).

    from MyModules.checks import ex02 as check
    check.log_histograms(log_histograms)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import call_student, fail, ok, require_defined


def _fake_model() -> nn.Module:
    """A small BatchNorm model whose buffers differ from their defaults, so a mislabel shows."""
    from ..models import WideNet

    torch.manual_seed(0)
    model = WideNet(width=4)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model


class _RecordingWriter:
    """Stands in for SummaryWriter: remembers what add_histogram received."""

    def __init__(self):
        self.histograms: dict[str, torch.Tensor] = {}
        self.steps: set[int] = set()

    def add_histogram(self, tag, values, global_step=None, *args, **kwargs):
        self.histograms[str(tag)] = torch.as_tensor(values).detach().cpu().double().flatten()
        self.steps.add(global_step)

    def __getattr__(self, name):  # add_scalar and friends: accepted, ignored
        return lambda *args, **kwargs: None


def _tag_for(name: str, tags: Sequence[str]) -> str | None:
    return next((t for t in tags if t == name or t.endswith("/" + name)), None)


def log_histograms(fn) -> None:
    """``fn(writer, model, step)`` must write one histogram per parameter and float buffer, named after it."""
    model = _fake_model()
    writer = _RecordingWriter()
    call_student(fn, writer, model, 7, what="log_histograms")
    if not writer.histograms:
        fail("writer.add_histogram が一度も呼ばれていません。",
             "for name, param in model.named_parameters(): の中で writer.add_histogram(タグ, 値, step) を呼びます。")
    if writer.steps != {7}:
        fail(f"step に {sorted(writer.steps, key=str)} が渡されました。引数の step (ここでは 7) を渡してください。",
             "writer.add_histogram(tag, values, step) の3番目の引数です。")
    tags = list(writer.histograms)
    expected = dict(model.named_parameters())
    expected.update({n: b for n, b in model.named_buffers() if b.is_floating_point()})
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for tag, logged in writer.histograms.items():
        name = next((n for n in state if tag == n or tag.endswith("/" + n)), None)
        tensor = state.get(name)
        if tensor is not None and (logged.numel() != tensor.numel()
                                   or not torch.allclose(logged, tensor.detach().double().flatten())):
            fail(f"タグ {tag!r} の中身が {name} の値ではありません (名前と値がずれています)。",
                 "state_dict() と parameters() を zip すると、BatchNorm のバッファの分だけ名前がずれます "
                 "(旧コースのバグ)。名前と値を一緒に返す named_parameters() / named_buffers() を使ってください。")
    missing = [n for n in expected if _tag_for(n, tags) is None]
    if missing:
        buffers = [n for n in missing if n not in dict(model.named_parameters())]
        hint = ("BatchNorm の running_mean / running_var はパラメータではなく「バッファ」です。"
                "model.named_buffers() も回してください (整数の num_batches_tracked は飛ばします)。"
                if buffers and len(buffers) == len(missing) else
                "model.named_parameters() が返す名前をそのままタグに入れてください (例: f\"weights/{name}\")。")
        fail(f"ヒストグラムのないテンソルがあります: {', '.join(missing[:4])}"
             + (" ..." if len(missing) > 4 else ""), hint)
    ok(f"{len(expected)} 個のテンソル (パラメータとバッファ) が、それぞれ自分の名前でヒストグラムになりました。")


def activation_hook(make_hook) -> None:
    """``make_hook(store, name)`` must return a forward hook that puts a detached copy of the output in ``store[name]``."""
    model = _fake_model().eval()
    bn = model.features[0][1]  # BatchNorm2d, followed by ReLU(inplace=True)
    store: dict = {}
    hook = call_student(make_hook, store, "bn", what="make_hook")
    if not callable(hook):
        fail(f"make_hook が関数ではなく {type(hook).__name__} を返しました。",
             "内側で def hook(module, inputs, output): ... を定義して、return hook してください。")
    handle = bn.register_forward_hook(hook)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    try:
        call_student(model, x, what="フックを付けたモデルの forward (フックの中)")
    finally:
        handle.remove()
    if "bn" not in store:
        fail("フックが store[name] に何も入れていません。", "hook の中で store[name] = output.detach().clone() とします。")
    saved = store["bn"]
    if not isinstance(saved, torch.Tensor):
        fail(f"store[name] がテンソルではなく {type(saved).__name__} です。", "output をそのまま (コピーして) 入れてください。")
    with torch.no_grad():
        expected = bn(model.features[0][0](x))
    if saved.requires_grad:
        fail("保存したテンソルが勾配の計算グラフにつながったままです (メモリを使い続けます)。",
             "output.detach() でグラフから切り離してください。")
    if saved.shape != expected.shape:
        fail(f"保存した形が {tuple(saved.shape)} です。BatchNorm の出力は {tuple(expected.shape)} のはずです。",
             "hook の3番目の引数 output (層の出力) を保存してください。inputs は入力です。")
    if torch.allclose(saved, expected.clamp_min(0)) and not torch.allclose(saved, expected):
        fail("保存した値に負の数がありません: 次の ReLU(inplace=True) に上書きされています。",
             "output.detach() は同じメモリを見ています。.clone() でコピーを取ってください。")
    if not torch.allclose(saved, expected, atol=1e-6):
        fail("保存した値が層の出力と一致しません。", "store[name] = output.detach().clone() としてください。")
    ok("フックが層の出力のコピーを保存しました (inplace ReLU にも上書きされません)。")


def logger(tb_logger, model: nn.Module) -> None:
    """The student's TensorBoardLogger: example images and at least two activation layers of ``model``."""
    from ..tb_logging import TensorBoardLogger

    require_defined(tb_logger, "logger")
    if not isinstance(tb_logger, TensorBoardLogger):
        fail(f"logger が TensorBoardLogger ではなく {type(tb_logger).__name__} です。",
             "logger = TensorBoardLogger(images=..., activation_layers=[...]) と作ってください。")
    images = tb_logger.images
    if images is None or not isinstance(images, torch.Tensor) or images.dim() != 4:
        fail("images に画像のバッチ (B, 3, 32, 32) が渡されていません。",
             "テストローダーから1バッチ取り、その先頭の数十枚を images= に渡します。")
    if not images.is_floating_point():
        fail("images が uint8 のままです。モデルに入れる正規化済みの画像 (float) を渡してください。",
             "test_loader から取ったバッチは正規化済みです。")
    layers = list(tb_logger.activation_layers)
    names = dict(model.named_modules())
    unknown = [n for n in layers if n not in names]
    if unknown:
        fail(f"モデルに無い層の名前があります: {unknown}", "上のセルで表示した named_modules() の名前から選んでください。")
    if len(layers) < 2:
        fail(f"activation_layers が {len(layers)} 個です。1つ目と2つ目のブロックから1つずつ、2つ以上選んでください。",
             'たとえば "features.0.2" と "features.1.2" (各ブロックの ReLU) です。')
    ok(f"ロガーの準備ができました: 活性化を記録する層 {layers}")


def most_confused(fn) -> None:
    """``fn(confusion, classes, k)`` must list the k largest off-diagonal cells as (true, predicted, count)."""
    from ..plots import most_confused_pairs

    classes = ["cat", "dog", "bird", "ship"]
    confusion = torch.tensor([[80, 15, 3, 2],  # rows: true class; columns: predicted class
                              [25, 70, 4, 1],
                              [6, 2, 90, 2],
                              [1, 0, 9, 90]])
    answer = call_student(fn, confusion, classes, 3, what="most_confused")
    if answer is None:
        fail("most_confused が何も返していません (None)。", "最後に return でリストを返してください。")
    try:
        answer = [(str(t), str(p), int(c)) for t, p, c in answer]
    except (TypeError, ValueError):
        fail(f"返り値 {answer!r} が (正解クラス, 予測クラス, 件数) のリストになっていません。",
             '[("dog", "cat", 25), ...] の形で返してください。')
    expected = most_confused_pairs(confusion, classes, 3)
    if answer == expected:
        ok(f"いちばん混同されている組: {expected[0][0]} → {expected[0][1]} ({expected[0][2]} 枚)")
        return
    if any(t == p for t, p, _ in answer):
        fail("対角成分 (正しく分類できた数) が入っています。", "i == j のマスは飛ばしてください。")
    if answer == [(p, t, c) for t, p, c in expected]:
        fail("正解クラスと予測クラスが逆です。", "confusion[i, j] は「正解 i を j と予測した数」です (行が正解)。")
    if sorted(answer, key=lambda r: -r[2]) != answer:
        fail("件数の多い順に並んでいません。", "sorted(..., key=lambda r: r[2], reverse=True) などで並べ替えます。")
    fail(f"答えが違います: {answer}", "対角以外のマスを件数の多い順に k 個、(classes[i], classes[j], 件数) で返します。")
