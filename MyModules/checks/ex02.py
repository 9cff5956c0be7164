"""Self-checks of Exercise02 (seeing training: TensorBoard, hooks, confusion matrix).

    from MyModules.checks import ex02 as check
    check.log_histograms(log_histograms)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import CheckFailed, call_student, fail, ok, require_defined


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
    """Stands in for SummaryWriter: remembers what add_histogram received (and how often per tag)."""

    def __init__(self):
        self.histograms: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        self.none_tags: list[str] = []  # values=None: param.grad of a model that never ran backward
        self.steps: set[int] = set()

    def add_histogram(self, tag, values, global_step=None, *args, **kwargs):
        tag = str(tag)
        self.calls[tag] = self.calls.get(tag, 0) + 1
        self.steps.add(global_step)
        if values is None:
            self.none_tags.append(tag)
            return
        self.histograms[tag] = torch.as_tensor(values).detach().cpu().double().flatten()

    def __getattr__(self, name):  # add_scalar and friends: accepted, ignored
        return lambda *args, **kwargs: None


def _tag_for(name: str, tags: Sequence[str]) -> str | None:
    return next((t for t in tags if t == name or t.endswith("/" + name)), None)


def log_histograms(fn) -> None:
    """``fn(writer, model, step)`` must write one histogram per parameter and float buffer, named after it."""
    model = _fake_model()
    writer = _RecordingWriter()
    call_student(fn, writer, model, 7, what="log_histograms")
    if writer.none_tags:
        fail(f"タグ {writer.none_tags[0]!r} に値ではなく None が渡されました。",
             "param.grad (勾配) を渡していませんか。勾配は backward の後にしか入りません (このモデルでは None)。"
             "ここで記録するのは重みそのもの (param) です (勾配のヒストグラムはロガーが gradients/... に書きます)。")
    if not writer.histograms:
        fail("writer.add_histogram が一度も呼ばれていません。",
             "for name, param in model.named_parameters(): の中で writer.add_histogram(タグ, 値, step) を呼びます。")
    repeated = [tag for tag, n in writer.calls.items() if n > 1]
    if repeated:
        fail(f"タグ {repeated[0]!r} に {writer.calls[repeated[0]]} 個のテンソルを書いています "
             "(後から書いたものが前のものに重なり、どれがどの層か分かりません)。",
             "タグにテンソルの名前を入れて、1 つのタグに 1 つのテンソルにします: f\"weights/{name}\"。")
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
                 "(よくあるバグ)。名前と値を一緒に返す named_parameters() / named_buffers() を使ってください。")
    missing = [n for n in expected if _tag_for(n, tags) is None]
    if missing:
        buffers = [n for n in missing if n not in dict(model.named_parameters())]
        hint = ("BatchNorm の running_mean / running_var はパラメータではなく「バッファ」です。"
                "model.named_buffers() も回してください (整数の num_batches_tracked は飛ばします)。"
                if buffers and len(buffers) == len(missing) else
                "model.named_parameters() が返す名前をそのままタグに入れてください (例: f\"weights/{name}\")。")
        fail(f"ヒストグラムのないテンソルがあります: {', '.join(missing[:4])}"
             + (" ..." if len(missing) > 4 else ""), hint)
    counters = [t for t in tags if t.endswith("num_batches_tracked")]
    if counters:
        fail(f"整数のカウンタ {counters[0]!r} まで記録しています。",
             "num_batches_tracked は「何ステップ学習したか」の数で、分布を見る意味がありません。"
             "if buffer.is_floating_point(): で浮動小数点のバッファだけを記録してください。")
    ok(f"{len(expected)} 個のテンソル (パラメータとバッファ) が、それぞれ自分の名前でヒストグラムになりました。")


def _run_hook(make_hook, model: nn.Module, layer: nn.Module, x: torch.Tensor) -> dict:
    """Run ``model(x)`` with the student's hook for ``layer`` (name "bn"); the store it filled."""
    store: dict = {}
    hook = call_student(make_hook, store, "bn", what="make_hook")
    if not callable(hook):
        fail(f"make_hook が関数ではなく {type(hook).__name__} を返しました。",
             "内側で def hook(module, inputs, output): ... を定義して、return hook してください。")
    returned: list = []

    def watched(module, inputs, output):  # what the student's hook returns replaces the layer's output
        result = hook(module, inputs, output)
        returned.append(result)
        return result

    handle = layer.register_forward_hook(watched)
    try:
        call_student(model, x, what="フックを付けたモデルの forward (フックの中)")
    finally:
        handle.remove()
    if any(r is not None for r in returned):
        fail("hook が値を return しています。",
             "forward フックが値を返すと、その値が層の出力の代わりに次の層へ流れ、モデルの計算が変わります。"
             "hook の中では store[name] = ... と保存するだけにして、何も return しないでください"
             " (return するのは外側の make_hook の return hook だけです)。")
    return store


def _saved_tensor(store: dict) -> torch.Tensor:
    """``store["bn"]``, or a failure naming what the hook stored instead."""
    if "bn" not in store:
        others = [k for k in store if k != "bn"]
        if others:
            fail(f"フックが store[name] ではなく store[{others[0]!r}] に保存しています。",
                 "キーには引数の name を使います: store[name] = ...。make_hook(store, \"bn\") なら store[\"bn\"] です。")
        fail("フックが store[name] に何も入れていません。", "hook の中で store[name] = output.detach().clone() とします。")
    saved = store["bn"]
    if isinstance(saved, (list, tuple)):
        fail(f"store[name] がテンソルではなく {type(saved).__name__} です。",
             "リストに append すると、forward のたびに溜まり続けます。最後の出力だけを store[name] = ... で入れてください。")
    if not isinstance(saved, torch.Tensor):
        fail(f"store[name] がテンソルではなく {type(saved).__name__} です。", "output をそのまま (コピーして) 入れてください。")
    return saved


def activation_hook(make_hook) -> None:
    """``make_hook(store, name)`` must return a forward hook that puts a detached copy of the output in ``store[name]``."""
    model = _fake_model().eval()
    bn = model.features[0][1]  # BatchNorm2d, followed by ReLU(inplace=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    saved = _saved_tensor(_run_hook(make_hook, model, bn, x))
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
    with torch.no_grad():
        conv_output = model.features[0][0](x)  # what went INTO the BatchNorm
    if saved.shape == conv_output.shape and torch.allclose(saved, conv_output, atol=1e-6):
        fail("保存した値が層の入力 (inputs[0]) です。層の出力を保存してください。",
             "hook(module, inputs, output) の 3 番目の引数 output が層の出力です。inputs は入力のタプルです。")
    if not torch.allclose(saved, expected, atol=1e-6):
        fail("保存した値が層の出力と一致しません。", "store[name] = output.detach().clone() としてください。")
    ok("フックが層の出力のコピーを保存しました (inplace ReLU にも上書きされません)。")


def logger(tb_logger, model: nn.Module) -> None:
    """The student's TensorBoardLogger: example images and at least two activation layers of ``model``."""
    from ..viz.tensorboard import TensorBoardLogger

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
    if layers and all(isinstance(n, str) and len(n) == 1 for n in layers):
        fail(f"activation_layers が 1 文字ずつの {layers[:4]}... になっています。",
             '名前を 1 つの文字列で渡すと、1 文字ずつに分かれます。リストにしてください: '
             'activation_layers=["features.0.2", "features.1.2"]。')
    modules = [n for n in layers if isinstance(n, nn.Module)]
    if modules:
        fail(f"activation_layers に層の名前 (文字列) ではなく層そのもの ({type(modules[0]).__name__}) が入っています。",
             'named_modules() の名前を文字列で渡します: 例 "features.0.2"。')
    names = dict(model.named_modules())
    unknown = [n for n in layers if n not in names]
    if unknown:
        fail(f"モデルに無い層の名前があります: {unknown}", "上のセルで表示した named_modules() の名前から選んでください。")
    if len(layers) < 2:
        fail(f"activation_layers が {len(layers)} 個です。1つ目と2つ目のブロックから1つずつ、2つ以上選んでください。",
             'たとえば "features.0.2" と "features.1.2" (各ブロックの ReLU) です。')
    blocks = {".".join(str(n).split(".")[:2]) for n in layers}
    if len(blocks) < 2:
        fail(f"activation_layers の {layers} がどれも同じブロック ({blocks.pop()}) の層です。",
             '1 つ目と 2 つ目のブロックから 1 つずつ選ぶと、深さによる違いが見えます: "features.0.2" と "features.1.2"。')
    ok(f"ロガーの準備ができました: 活性化を記録する層 {layers}")


def _confused_rows(answer) -> list[tuple[str, str, int]]:
    """The student's (true, predicted, count) rows, or a failure naming what is in their place."""
    try:
        rows = [(t, p, c) for t, p, c in answer]
    except (TypeError, ValueError):
        fail(f"返り値 {answer!r} が (正解クラス, 予測クラス, 件数) のリストになっていません。",
             '[("dog", "cat", 25), ...] の形で返してください。')
    if any(not isinstance(t, str) or not isinstance(p, str) for t, p, _ in rows):
        fail(f"返り値の組 {rows[0]!r} の 1 つ目と 2 つ目がクラス名 (文字列) ではありません。",
             "行と列の番号 i, j ではなく、classes[i] と classes[j] (クラス名) を入れます。")
    try:
        counts = [float(torch.as_tensor(c)) for _, _, c in rows]
    except (TypeError, ValueError, RuntimeError):
        fail(f"返り値の組 {rows[0]!r} の 3 つ目が件数 (1 つの数) ではありません。",
             "3 つ目には int(confusion[i, j]) を入れます。")
    if any(not c.is_integer() for c in counts):
        fail(f"件数が整数ではありません ({counts[0]:g} など)。",
             "割合 (正規化した混同行列) ではなく、件数の混同行列 confusion[i, j] をそのまま int(...) で入れます。")
    return [(t, p, int(c)) for (t, p, _), c in zip(rows, counts)]


def most_confused(fn) -> None:
    """``fn(confusion, classes, k)`` must list the k largest off-diagonal cells as (true, predicted, count)."""
    from ..viz.plots import most_confused_pairs

    classes = ["cat", "dog", "bird", "ship"]
    confusion = torch.tensor([[80, 15, 3, 2],  # rows: true class; columns: predicted class
                              [25, 70, 4, 1],
                              [6, 2, 90, 2],
                              [1, 0, 9, 90]])
    answer = call_student(fn, confusion, classes, 3, what="most_confused")
    if answer is None:
        fail("most_confused が何も返していません (None)。", "最後に return でリストを返してください。")
    answer = _confused_rows(answer)
    expected = most_confused_pairs(confusion, classes, 3)
    if answer == expected:
        ok(f"いちばん混同されている組: {expected[0][0]} → {expected[0][1]} ({expected[0][2]} 枚)")
        return
    if len(answer) != 3:
        fail(f"most_confused(confusion, classes, 3) が {len(answer)} 組を返しました。k 組 (ここでは 3 組) にしてください。",
             "並べ替えたリストの先頭 k 個 ([:k]) を返します。k=5 のように数を直接書いていませんか。")
    if any(t == p for t, p, _ in answer):
        fail("対角成分 (正しく分類できた数) が入っています。", "i == j のマスは飛ばしてください。")
    if answer == [(p, t, c) for t, p, c in expected]:
        fail("正解クラスと予測クラスが逆です。", "confusion[i, j] は「正解 i を j と予測した数」です (行が正解)。")
    if sorted(answer, key=lambda r: -r[2]) != answer:
        fail("件数の多い順に並んでいません。", "sorted(..., key=lambda r: r[2], reverse=True) などで並べ替えます。")
    fail(f"答えが違います: {answer}", "対角以外のマスを件数の多い順に k 個、(classes[i], classes[j], 件数) で返します。")


# --- extension: images, PR curves and the embedding projector --------------------------------------


class _ExtensionWriter:
    """Stands in for SummaryWriter: remembers add_image(s), add_pr_curve and add_embedding calls."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW"):
        self.calls.append(("add_images", {"tag": tag, "values": torch.as_tensor(img_tensor), "step": global_step,
                                          "dataformats": dataformats}))

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        self.calls.append(("add_image", {"tag": tag, "values": torch.as_tensor(img_tensor), "step": global_step,
                                         "dataformats": dataformats}))

    def add_pr_curve(self, tag, labels, predictions, global_step=None, num_thresholds=127, weights=None,
                     walltime=None):
        self.calls.append(("add_pr_curve", {"tag": str(tag), "labels": torch.as_tensor(labels),
                                            "predictions": torch.as_tensor(predictions), "step": global_step}))

    def add_embedding(self, mat, metadata=None, label_img=None, global_step=None, tag="default",
                      metadata_header=None):
        self.calls.append(("add_embedding", {"mat": torch.as_tensor(mat), "metadata": metadata,
                                             "label_img": label_img, "step": global_step, "tag": tag}))

    def __getattr__(self, name):  # add_scalar and friends: accepted, ignored
        return lambda *args, **kwargs: None

    def named(self, method: str) -> list[dict]:
        return [kwargs for name, kwargs in self.calls if name == method]


_MEAN, _STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def _example_batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and the same images normalised as the loaders give them."""
    from ..loader import normalize

    raw = torch.randint(0, 256, (n, 3, 8, 8), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    return raw, normalize(raw, _MEAN, _STD)


def _as_unit_images(values: torch.Tensor) -> torch.Tensor:
    return values.detach().cpu().double()


def _call_unnormalizing(fn, *args, what: str) -> None:
    """Call a student's function that undoes the normalisation; name the two usual broadcasting mistakes."""
    try:
        call_student(fn, *args, what=what)
    except CheckFailed as failed:
        cause = failed.__context__  # the student's own exception, if the code crashed
        if isinstance(cause, RuntimeError) and "must match the size of tensor" in str(cause):
            fail(f"{what} で形が合わないエラーになりました: {cause}",
                 "mean と std は 3 チャンネル分の 3 つの数 (形 (3,)) で、画像は (B, 3, H, W) です。そのまま掛けると"
                 "最後の次元 (幅 W) に合わせようとします。.view(1, 3, 1, 1) でチャンネルの次元に合わせてから掛け・足します。")
        if isinstance(cause, TypeError) and any(w in str(cause) for w in ("tuple", "list", "to an index")):
            # Tensor * tuple: Python's "repeat a sequence" asks the tensor for an int
            fail(f"{what} でエラーになりました: {type(cause).__name__}: {cause}",
                 "mean と std はタプルです。torch.tensor(mean, device=images.device).view(1, 3, 1, 1) のように"
                 " Tensor にしてから計算します。")
        raise


def log_images(fn) -> None:
    """``fn(writer, images, mean, std, step)``: the normalised batch back in [0, 1], one add_images call."""
    raw, images = _example_batch()
    writer = _ExtensionWriter()
    _call_unnormalizing(fn, writer, images, _MEAN, _STD, 3, what="log_images")
    singles, batches = writer.named("add_image"), writer.named("add_images")
    if singles and not batches:
        fail(f"add_image が {len(singles)} 回呼ばれています。バッチ (B, 3, H, W) をまとめて記録するのは add_images です。",
             "writer.add_images(タグ, 画像のバッチ, step) を 1 回呼びます (add_image は画像 1 枚 (3, H, W) 用)。")
    if not batches:
        fail("writer.add_images が一度も呼ばれていません。", "writer.add_images(\"examples\", 画像, step) と書きます。")
    call = batches[-1]
    if call["step"] != 3:
        fail(f"step に {call['step']!r} が渡されました。引数の step (ここでは 3) を渡してください。",
             "writer.add_images(tag, images, step) の 3 番目の引数です。")
    values = _as_unit_images(call["values"])
    expected = raw.double() / 255
    if values.shape != expected.shape:
        fail(f"記録した画像の形が {tuple(values.shape)} です。{tuple(expected.shape)} (B, 3, H, W) のまま渡してください。",
             "add_images の既定の形は NCHW です。permute や [0] は要りません。")
    if bool((values < -1e-4).any()):  # float rounding of x * std + mean without clamp is fine
        fail("記録した画像に負の値があります: 正規化したままの画像です。",
             "ローダーの画像は (x - mean) / std されています。x * std + mean で元に戻してから記録します "
             "(std と mean は .view(1, 3, 1, 1) の形にして掛け・足します)。")
    if bool((values > 1.0 + 1e-4).any()):
        fail(f"記録した画像の値が 1 を超えています (最大 {values.max().item():.1f})。float の画像は 0〜1 で渡します。",
             "255 を掛けずに、正規化を戻した 0〜1 の値をそのまま (.clamp(0, 1) して) 渡してください。")
    if not torch.allclose(values, expected, atol=1e-4):
        fail("記録した画像が元の画像と一致しません。", "戻し方は x * std + mean です (割るのではなく掛けます)。"
             "チャンネルごとの値なので .view(1, 3, 1, 1) で形を合わせます。")
    ok("正規化を戻した 0〜1 の画像のバッチが、add_images で記録されました (IMAGES タブに出ます)。")


def _check_pr_curve(i: int, call: dict, name: str, labels: torch.Tensor, probs: torch.Tensor,
                    num_classes: int) -> None:
    """The i-th add_pr_curve call: class i's name in the tag, labels == i, the probabilities of class i."""
    if name not in call["tag"]:
        fail(f"{i} 番目の PR 曲線のタグ {call['tag']!r} にクラス名 {name!r} が入っていません。",
             "f\"pr/{name}\" のように classes[i] をタグに入れると、TensorBoard でどのクラスか分かります。")
    if call["step"] != 4:
        fail(f"step に {call['step']!r} が渡されました。引数の step (ここでは 4) を渡してください。",
             "writer.add_pr_curve(tag, labels, predictions, step) の 4 番目の引数です。")
    got_labels, predictions = call["labels"], call["predictions"]
    if predictions.dim() != 1 or predictions.numel() != len(labels):
        fail(f"{name} の predictions の形が {tuple(predictions.shape)} です。画像の数の 1 次元 ({len(labels)},) にします。",
             "probs[:, i] (クラス i の確率の列) を渡します。probs 全体ではありません。")
    if bool((got_labels.double() > 1).any()):
        fail(f"{name} の labels にクラス番号 (0〜{num_classes - 1}) がそのまま入っています。",
             "PR 曲線の labels は「このクラスか」の True/False です: labels == i を渡します。")
    if not torch.equal(got_labels.bool(), labels == i):
        fail(f"{name} の labels が labels == {i} になっていません。",
             "i 番目の曲線には、i 番目のクラスかどうか (labels == i) を渡します。"
             "labels と predictions の順番 (add_pr_curve(tag, labels, predictions, step)) も確かめてください。")
    if not torch.allclose(predictions.double(), probs[:, i].double(), atol=1e-6):
        values = set(predictions.double().unique().tolist())
        if bool((predictions < 0).any() or (predictions > 1).any()):
            hint = "softmax の前のスコア (logits) ではなく、確率 (0〜1) を渡します: probs[:, i]。"
        elif values <= {0.0, 1.0}:
            hint = ("0 か 1 の予測 (argmax == i) では、しきい値を動かしても曲線になりません。"
                    f"確率そのもの probs[:, {i}] を渡すと、しきい値ごとの適合率と再現率が描けます。")
        else:
            hint = f"predictions には probs[:, {i}] (クラス {name} の確率) を渡します。"
        fail(f"{name} の predictions がクラス {name} の確率ではありません。", hint)


def log_pr_curves(fn) -> None:
    """``fn(writer, probs, labels, classes, step)``: one PR curve per class, one-vs-rest, probabilities."""
    classes = ["cat", "dog", "bird"]
    gen = torch.Generator().manual_seed(6)
    probs = torch.softmax(torch.randn(12, 3, generator=gen), dim=1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1])
    writer = _ExtensionWriter()
    call_student(fn, writer, probs, labels, classes, 4, what="log_pr_curves")
    curves = writer.named("add_pr_curve")
    if not curves:
        fail("writer.add_pr_curve が一度も呼ばれていません。",
             "for i, name in enumerate(classes): の中で writer.add_pr_curve(タグ, labels == i, probs[:, i], step) を呼びます。")
    if len(curves) != len(classes):
        fail(f"PR 曲線が {len(curves)} 本です。クラスの数 ({len(classes)}) だけ、1 クラス 1 本ずつ書きます。",
             "PR 曲線は「そのクラスか、それ以外か」の 2 択の曲線なので、クラスごとに描きます。")
    for i, (call, name) in enumerate(zip(curves, classes)):
        _check_pr_curve(i, call, name, labels, probs, len(classes))
    ok(f"{len(classes)} クラスの PR 曲線 (そのクラスか否か × そのクラスの確率) が記録されました (PR CURVES タブ)。")


def log_embedding(fn) -> None:
    """``fn(writer, features, labels, classes, images, mean, std, step)``: the projector's three inputs."""
    classes = ["cat", "dog", "bird"]
    raw, images = _example_batch(6)
    features = torch.randn(6, 4, 2, 2, generator=torch.Generator().manual_seed(7))  # a conv block's output
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    writer = _ExtensionWriter()
    _call_unnormalizing(fn, writer, features, labels, classes, images, _MEAN, _STD, 5, what="log_embedding")
    calls = writer.named("add_embedding")
    if not calls:
        fail("writer.add_embedding が一度も呼ばれていません。",
             "writer.add_embedding(特徴, metadata=クラス名のリスト, label_img=画像, global_step=step) を 1 回呼びます。")
    call = calls[-1]
    mat = call["mat"]
    if mat.dim() != 2:
        fail(f"add_embedding に渡した特徴の形が {tuple(mat.shape)} です。(画像の数, 特徴の数) の 2 次元にします。",
             "畳み込みの出力 (B, C, H, W) は torch.flatten(features, 1) で (B, C×H×W) にしてから渡します。")
    if mat.shape != (6, 16) or not torch.allclose(mat.double(), features.flatten(1).double()):
        fail(f"特徴の形が {tuple(mat.shape)} です。(6, 16) = features を flatten(1) したものを渡してください。",
             "flatten(0) や view(-1) では画像の区切りが消えます。torch.flatten(features, 1) です。")
    metadata = call["metadata"]
    if metadata is None:
        fail("metadata が渡されていません。点の色分けと検索に、画像ごとのクラス名を渡します。",
             "metadata=[classes[i] for i in labels.tolist()] と書きます。")
    metadata = list(metadata)
    if len(metadata) != 6:
        fail(f"metadata が {len(metadata)} 個です。画像 1 枚につき 1 個 (6 個) 必要です。",
             "classes (クラスの一覧) ではなく、各画像のラベルをクラス名にしたリストを渡します。")
    if [str(m) for m in metadata] != [classes[i] for i in labels.tolist()]:
        hint = ("番号ではなくクラス名にすると、Projector で読みやすくなります: [classes[i] for i in labels.tolist()]。"
                if [str(m) for m in metadata] == [str(i) for i in labels.tolist()] else
                "各画像のラベルの番号をクラス名に直したリストです: [classes[i] for i in labels.tolist()]。")
        fail(f"metadata が {metadata} です。", hint)
    label_img = call["label_img"]
    if label_img is None:
        fail("label_img が渡されていません。点の代わりに画像の縮小版を表示するのに使います。",
             "label_img=正規化を戻した画像 (0〜1) を渡します。")
    label_img = torch.as_tensor(label_img).double()
    if label_img.shape != raw.shape or bool((label_img < 0).any()) or not torch.allclose(
            label_img, raw.double() / 255, atol=1e-4):
        fail("label_img が元の画像 (0〜1、(B, 3, H, W)) になっていません。",
             "log_images と同じく x * std + mean で正規化を戻し、.clamp(0, 1) した画像を渡します。")
    if call["step"] != 5:
        fail(f"global_step に {call['step']!r} が渡されました。引数の step (ここでは 5) を渡してください。",
             "add_embedding(特徴, metadata=..., label_img=..., global_step=step) と step も渡します。")
    ok("特徴 (画像の数 × 16)、クラス名、画像が add_embedding で記録されました (PROJECTOR タブ)。")
