"""Self-checks for Exercise03 (``03_01_optuna``): objectives written by hand, suggestions, the best trial.

A first objective written by hand (a toy function, then a training loop that reports and prunes), the
suggestions for training and for the model shape that the course's ``tuning.Objective`` uses, and
reloading the best trial.

The student's functions are called with real Optuna trials of a throw-away in-memory study (seeded
random sampler), so the checks see what Optuna would record: which parameters were suggested, with
which distribution, what was reported at which step, and whether the settings and the model really
use the suggested values. A training objective is run on a few hundred images of the dataset it is
given, so the check takes about a second.

    from MyModules.checks import ex03 as check
    check.toy_objective(objective)
    check.train_objective(train_objective, small, device)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState
from torch import nn

from ..formats import ImageSet
from ..loader import make_loaders
from ..models import count_parameters
from ..train import TrainConfig
from . import call_student, fail, ok, require_defined

PROBE_TRIALS = 8  # trials asked from the throw-away study

# The ranges and choices the notebook's TODO lines ask for (Exercise03/solutions/03_01_optuna.ipynb);
# tests/test_checks_ex03.py checks that the notebook says the same.
TOY_X_RANGE = (-10, 10)  # x of the toy objective (x - 2) ** 2
LR_RANGE = (1e-4, 1e-1)  # the learning rate, on a log scale
SHAPE_CHOICES = {"conv_blocks": (1, 2, 3), "width": (16, 32, 64), "activation": ("relu", "gelu", "silu")}


def _span(low: float, high: float) -> str:
    return f"{low:g}〜{high:g}"


def _throwaway_study(**options) -> optuna.Study:
    """An in-memory study to probe the student's code, created without its log line (and without
    changing the notebook's Optuna log level)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), **options)
    finally:
        optuna.logging.set_verbosity(level)


def _trials(n: int = PROBE_TRIALS):
    study = _throwaway_study()
    return [study.ask() for _ in range(n)]


def _require_param(trial, name: str, kind: type, how: str) -> Any:
    dist = trial.distributions.get(name)
    if dist is None:
        fail(f"パラメータ {name!r} が trial から提案されていません (固定値のままです)。",
             f"{how} のように trial.suggest_... で値を受け取ってください。名前は {name!r} にします。")
    if not isinstance(dist, kind):
        fail(f"{name!r} の提案の種類が違います ({type(dist).__name__})。", f"{how} を使ってください。")
    return dist


TOY_TRIALS = 20  # complete trials a toy study needs before its best x is near 2


def toy_objective(fn: Callable) -> None:
    """``fn(trial)`` suggests a float ``x`` (a range holding 2) and returns ``(x - 2) ** 2``."""
    require_defined(fn, "objective")
    for trial in _trials(5):
        value = call_student(fn, trial, what="objective(trial)")
        how = f'trial.suggest_float("x", {TOY_X_RANGE[0]}, {TOY_X_RANGE[1]})'
        dist = _require_param(trial, "x", FloatDistribution, how)
        if not dist.low <= 2 <= dist.high:
            fail(f"x の範囲 {_span(dist.low, dist.high)} に、(x - 2) ** 2 が最小になる x = 2 が入っていません。",
                 f"{how} のように、2 を含む範囲にします。")
        if (dist.low, dist.high) != TOY_X_RANGE:
            fail(f"x の範囲が {_span(dist.low, dist.high)} です。TODO の範囲は {_span(*TOY_X_RANGE)} です。",
                 f"{how} と書きます (答えの 2 を知らないつもりで、広い範囲から探させます)。")
        if value is None:
            fail("objective が値を返していません (None)。",
                 "最後に return (x - 2) ** 2 と書きます。print しても Optuna には値が届きません。")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"objective は数を返してください (今は {type(value).__name__})。", "return (x - 2) ** 2 です。")
        x = trial.params["x"]
        if not math.isclose(value, (x - 2) ** 2, rel_tol=1e-9, abs_tol=1e-12):
            fail(f"x = {x:.3f} のとき objective は {value:.4g} を返しましたが、(x - 2) ** 2 = {(x - 2) ** 2:.4g} です。",
                 "return (x - 2) ** 2 と書きます (** 2 は 2 乗)。")
    ok("objective は trial から x を受け取り、(x - 2) ** 2 を返しています")


def toy_study(study: optuna.Study) -> None:
    """``study`` minimises the toy objective and holds at least ``TOY_TRIALS`` complete trials."""
    if not isinstance(study, optuna.Study):
        fail(f"study が Optuna の study ではありません ({type(study).__name__})。",
             "study = optuna.create_study(...) で作った study を渡します (objective ではありません)。")
    if study.direction != StudyDirection.MINIMIZE:
        fail('study が最大化 (direction="maximize") になっています。(x - 2) ** 2 は小さいほどよい値です。',
             'optuna.create_study(direction="minimize") で作り直してください。')
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        fail("study にまだ完了した試行がありません。", "study.optimize(objective, n_trials=30) で探索を実行してください。")
    if any("x" not in t.params for t in done):
        fail("study の試行に x がありません: 別の objective で探索した study です。",
             "study.optimize(objective, ...) には、上で書いた objective を渡します。")
    if len(done) < TOY_TRIALS:
        fail(f"完了した試行が {len(done)} 個だけです。",
             f"n_trials=30 で実行してください (x = 2 の近くを見つけるには {TOY_TRIALS} 回以上試します)。")
    ok(f"{len(done)} 試行で最良の x = {study.best_params['x']:.3f} (値 {study.best_value:.4f}) を見つけました")


# A training objective is checked on this many images (two steps per epoch, so the check takes about a
# second): 67 training images (a prime) make a training accuracy in % a whole number only at 0 and 100 %,
# 100 test images make a test accuracy always one.
CHECK_TRAIN_IMAGES, CHECK_TEST_IMAGES, CHECK_BATCH = 67, 100, 64


class _CountingLoader:
    """A loader that counts the passes made over it (the objective must use the loaders it is given)."""

    def __init__(self, loader):
        self.loader = loader
        self.passes = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        return iter(self.loader)

    def __getattr__(self, name: str) -> Any:
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)


class _WatchedTrial:
    """A real trial that also records what the objective reported and how often it asked to prune."""

    def __init__(self, trial: optuna.Trial):
        self._trial = trial
        self.reports: list[tuple[Any, Any]] = []
        self.prune_checks = 0

    def report(self, value, step):
        self.reports.append((value, step))
        return self._trial.report(value, step)

    def should_prune(self) -> bool:
        self.prune_checks += 1
        return self._trial.should_prune()

    def __getattr__(self, name: str) -> Any:
        if name == "_trial":
            raise AttributeError(name)
        return getattr(self._trial, name)


class _PruneOnceReported(optuna.pruners.BasePruner):
    """Says "prune" as soon as the trial has reported anything: a correct objective stops after one epoch."""

    def prune(self, study, trial) -> bool:
        return bool(trial.intermediate_values)


def _tiny_loaders(dataset, device: torch.device) -> tuple[_CountingLoader, _CountingLoader]:
    tiny = dataclasses.replace(
        dataset, train=ImageSet(dataset.train.images[:CHECK_TRAIN_IMAGES], dataset.train.labels[:CHECK_TRAIN_IMAGES]),
        test=ImageSet(dataset.test.images[:CHECK_TEST_IMAGES], dataset.test.labels[:CHECK_TEST_IMAGES]))
    train, test = make_loaders(tiny, CHECK_BATCH, device, augment="none")
    return _CountingLoader(train), _CountingLoader(test)


def _run_objective(fn: Callable, pruner: optuna.pruners.BasePruner, dataset, device: torch.device):
    """(watched trial, train loader, test loader, pruned?, returned value) of one call of ``fn``."""
    trial = _WatchedTrial(_throwaway_study(pruner=pruner).ask())
    train, test = _tiny_loaders(dataset, device)

    def run():
        with warnings.catch_warnings():  # a step reported twice: the check says it in Japanese below
            warnings.simplefilter("ignore")
            try:
                return False, fn(trial, train, test)
            except optuna.TrialPruned:
                return True, None

    pruned, value = call_student(run, what="train_objective(trial, train_loader, test_loader)")
    return trial, train, test, pruned, value


def _is_percent_of(value: float, images: int) -> bool:
    """True when ``value`` is the accuracy (%) of some number of right answers out of ``images``."""
    right = value * images / 100
    return 0 <= value <= 100 and abs(right - round(right)) < 1e-6


def _check_stops_when_pruned(fn: Callable, dataset, device: torch.device) -> None:
    """With a pruner that prunes as soon as anything is reported, the objective stops with TrialPruned."""
    trial, train, _, pruned, _ = _run_objective(fn, _PruneOnceReported(), dataset, device)
    if train.passes == 0:
        fail("引数の train_loader で学習していません。",
             "train_one_epoch(model, device, train_loader, ...) の train_loader は、train_objective の引数です。")
    if not trial.reports:
        fail("trial.report(...) が呼ばれていません: pruner は途中経過を知らないので、枝刈りを決められません。",
             "毎エポックの評価のあとで trial.report(accuracy, epoch) と書きます。")
    if pruned and train.passes > len(trial.reports):
        fail(f"{train.passes} エポック学習したあとで、はじめて report しています: 途中のエポックでは枝刈りできません。",
             "trial.report と if trial.should_prune(): ... は for ループの中 (毎エポックの評価のあと) に書きます。")
    if pruned:
        return
    if trial.prune_checks == 0:
        fail("trial.should_prune() を呼んでいません: report するだけでは、pruner が「やめる」と決めても学習が続きます。",
             "report のすぐ後に if trial.should_prune(): raise optuna.TrialPruned() と書きます。")
    fail("trial.should_prune() が True を返しても、TrialPruned を投げずに続けています (または値を返しています)。",
         "if trial.should_prune(): の中は raise optuna.TrialPruned() です。break や return では、"
         "枝刈りされた試行が COMPLETE (完了) と記録されます。")


def _check_reports(trial: _WatchedTrial, epochs: int) -> list[Any]:
    """One report per epoch, each with its own step; returns the steps."""
    steps = [step for _, step in trial.reports]
    repeated = [s for s in steps if steps.count(s) > 1]
    if repeated:
        fail(f"同じ step {repeated[0]!r} で {steps.count(repeated[0])} 回 report しています。Optuna は同じ step の "
             "2 回目からの値を捨てるので、pruner にはその後のエポックが見えません。",
             "step にはエポック番号を渡します: trial.report(accuracy, epoch)。")
    if len(steps) != epochs:
        fail(f"{epochs} エポック学習して、report は {len(steps)} 回です。",
             "trial.report は for ループの中 (毎エポックの評価のあと) に書きます。")
    for reported, step in trial.reports:
        if not _is_percent_of(float(reported), CHECK_TEST_IMAGES):
            fail(f"step {step} に report した値 {float(reported):.4g} が、テストの正解率 (%) ではありません。",
                 '損失 (loss) や学習データの正解率ではなく、evaluate(model, device, test_loader)["accuracy"] '
                 "(テストの正解率、%) を report して返します。")
    return steps


def _check_returned(value: Any, trial: _WatchedTrial) -> None:
    """The objective returns the last reported test accuracy: what a maximising study compares."""
    if value is None:
        fail("train_objective が値を返していません (None)。",
             "ループのあとで return accuracy (最後のエポックのテスト正解率) と書きます。")
    if isinstance(value, dict):
        fail("train_objective が辞書を返しています。",
             'evaluate(...) は辞書を返します: evaluate(...)["accuracy"] で正解率を取り出します。')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"train_objective は数を返してください (今は {type(value).__name__})。",
             "最後のエポックのテスト正解率 (%) を return します。")
    last = float(trial.reports[-1][0])
    if not math.isclose(float(value), last, rel_tol=1e-6, abs_tol=1e-9):
        fail(f"返した値 {value:.4g} が、最後に report した値 {last:.4g} と違います。",
             'study は正解率を最大化します (direction="maximize")。return するのは最後のエポックのテスト正解率 '
             "accuracy です (損失 loss ではありません)。")
    if not _is_percent_of(float(value), CHECK_TEST_IMAGES):
        fail(f"返した値 {value:.4g} が、テストの正解率 (%) ではありません。",
             '損失 (loss) ではなく、evaluate(model, device, test_loader)["accuracy"] を返します。')


def train_objective(fn: Callable, dataset, device: torch.device | str) -> None:
    """``fn(trial, train_loader, test_loader)`` trains, reports the test accuracy after every epoch with the
    epoch as step, stops with ``TrialPruned`` when ``trial.should_prune()`` says so, and returns the last
    test accuracy (%) for a maximising study. Run on a few hundred images of ``dataset``."""
    require_defined(fn, "train_objective")
    device = torch.device(device)
    _check_stops_when_pruned(fn, dataset, device)
    # A pruner that never prunes: every epoch reported once, with its own step; the last value returned.
    trial, train, test, pruned, value = _run_objective(fn, optuna.pruners.NopPruner(), dataset, device)
    if pruned:
        fail("枝刈りされない (should_prune() が False の) ときも TrialPruned を投げています。",
             "raise optuna.TrialPruned() は if trial.should_prune(): の中に書きます。")
    if test.passes == 0:
        fail("引数の test_loader で評価していません。",
             "evaluate(model, device, test_loader) の test_loader は、train_objective の引数です。")
    steps = _check_reports(trial, train.passes)
    _check_returned(value, trial)
    ok(f"毎エポック (step {steps[0]}〜{steps[-1]}) テスト正解率を report し、枝刈りの合図で TrialPruned を投げ、"
       "最後の正解率を返しています")


# Where a suggested value must end up in the returned TrainConfig (the names the course uses).
CONFIG_FIELDS = {"lr": "lr", "optimizer": "optimizer", "batch_size": "batch_size", "momentum": "momentum",
                 "adam_weight_decay": "weight_decay"}


_LR_WRITTEN = tuple(f"1e{round(math.log10(v))}" for v in LR_RANGE)  # as the TODO writes them: 1e-4, 1e-1
LR_TEXT = "〜".join(_LR_WRITTEN)
LR_HOW = 'trial.suggest_float("lr", {}, {}, log=True)'.format(*_LR_WRITTEN)


def _check_lr_range(lr: FloatDistribution) -> None:
    if not (0 < lr.low < lr.high <= 1.0):
        fail(f"学習率の範囲 {lr.low}〜{lr.high} が広すぎるか逆です。", f"TODO のとおり {LR_TEXT} にしてください。")
    if lr.high < 100 * lr.low:
        fail(f"学習率の範囲 {_span(lr.low, lr.high)} が狭すぎます (上限が下限の {lr.high / lr.low:.3g} 倍)。",
             f"どの桁がよいかを探すので、{LR_TEXT} のように 100 倍以上の幅にします。")
    if not all(math.isclose(got, want, rel_tol=1e-9) for got, want in zip((lr.low, lr.high), LR_RANGE)):
        fail(f"学習率の範囲が {_span(lr.low, lr.high)} です。TODO の範囲は {LR_TEXT} です。",
             f"{LR_HOW} と書きます (よい学習率はモデルとオプティマイザで桁が変わるので、この 3 桁を探します)。")


def _check_used(trial, config: TrainConfig) -> None:
    """Every value the trial suggested is in the returned settings: suggested and then dropped is wrong."""
    for name, value in trial.params.items():
        field = CONFIG_FIELDS.get(name)
        used = (getattr(config, field) == value if field
                else any(v == value for v in dataclasses.asdict(config).values()))
        if not used:
            where = f" (TrainConfig.{field} は {getattr(config, field)!r})" if field else ""
            fail(f"提案された {name!r} = {value!r} が、返した TrainConfig に入っていません{where}。",
                 f"提案した値は dataclasses.replace(base, {field or name}=...) のように渡します。")


def _call_config(fn: Callable, trial, base: TrainConfig) -> TrainConfig:
    """``fn(trial, base)``; refuses a ``base`` returned or changed in place (and puts it back)."""
    before = dataclasses.asdict(base)
    config = call_student(fn, trial, base, what="suggest_config(trial, base)")
    changed = dataclasses.asdict(base) != before
    for name, value in before.items():  # the notebook's base as it was
        setattr(base, name, value)
    if config is base or changed:
        fail("base をそのまま返しているか、base を書き換えています。",
             "base は探索しない設定の元です: dataclasses.replace(base, lr=lr, ...) で新しい TrainConfig を作って"
             "返します (書き換えると、次の試行にも前の試行の値が残ります)。")
    if not isinstance(config, TrainConfig):
        fail(f"suggest_config は TrainConfig を返してください (今は {type(config).__name__})。",
             "最後に dataclasses.replace(base, lr=lr, ...) を return します。")
    return config


def _check_config(fn: Callable, base: TrainConfig, quiet: bool = False) -> None:
    require_defined(fn, "suggest_config")
    optimizers = set()
    for trial in _trials():
        config = _call_config(fn, trial, base)
        lr = _require_param(trial, "lr", FloatDistribution, LR_HOW)
        if not lr.log:
            fail("学習率が対数スケールで探索されていません。",
                 "学習率は 0.0001 と 0.001 の違いが 0.01 と 0.011 の違いより大事です: log=True を付けます。")
        _check_lr_range(lr)
        opt = _require_param(trial, "optimizer", CategoricalDistribution,
                             'trial.suggest_categorical("optimizer", ["sgd", "adam"])')
        if set(opt.choices) != {"sgd", "adam"}:
            fail(f"optimizer の候補が {list(opt.choices)} です。", '["sgd", "adam"] の 2 つにしてください。')
        _check_used(trial, config)
        if config.epochs != base.epochs:
            fail("epochs が base と変わっています。", "探索しない設定は base のまま残します。")
        optimizers.add(config.optimizer)
    if optimizers != {"sgd", "adam"}:
        fail("何回試しても同じ optimizer になります。", "optimizer も trial.suggest_categorical で選ばせてください。")
    if not quiet:
        ok("学習率 (対数スケール) と optimizer が trial から提案され、TrainConfig に入っています")


def suggest_config(fn: Callable, base: TrainConfig) -> None:
    """``fn(trial, base) -> TrainConfig`` suggests lr (log scale) and optimizer (sgd/adam) and uses them."""
    _check_config(fn, base)


_BLOCKS = SHAPE_CHOICES["conv_blocks"]
SHAPE_PARAMS = {  # the model-shape parameters the student writes, and how each is suggested
    "conv_blocks": (IntDistribution, f'trial.suggest_int("conv_blocks", {_BLOCKS[0]}, {_BLOCKS[-1]})'),
    "width": (CategoricalDistribution, f'trial.suggest_categorical("width", {list(SHAPE_CHOICES["width"])})'),
    "activation": (CategoricalDistribution,
                   'trial.suggest_categorical("activation", [{}])'.format(
                       ", ".join(f'"{a}"' for a in SHAPE_CHOICES["activation"]))),
}


def _choices(dist) -> list[Any]:
    """Every value ``dist`` can give (categorical choices or the integers of the range)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return list(range(dist.low, dist.high + 1, dist.step))


def _probe(fn: Callable, params: dict[str, Any], num_classes: int) -> tuple[Any, torch.Tensor]:
    """(structure, output on fixed random images) of the model built from ``params`` with fixed weights."""
    torch.manual_seed(0)
    model = call_student(fn, optuna.trial.FixedTrial(dict(params)), num_classes,
                         what="FixedTrial(params) での build_model")
    structure = ([type(m).__name__ for m in model.modules()], [tuple(v.shape) for v in model.state_dict().values()])
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = call_student(model.eval(), images, what="作ったモデルの forward")
    return structure, out


def _check_uses(fn: Callable, trial, num_classes: int) -> None:
    """Each shape parameter the trial suggested changes the model: asked for and then ignored is wrong."""
    params = dict(trial.params)
    structure, out = _probe(fn, params, num_classes)
    for name in SHAPE_PARAMS:
        other = next(v for v in _choices(trial.distributions[name]) if v != params[name])
        other_structure, other_out = _probe(fn, {**params, name: other}, num_classes)
        if other_structure == structure and other_out.shape == out.shape and torch.allclose(other_out, out):
            fail(f"{name!r} を trial から受け取っていますが、モデルに使っていません "
                 f"({name}={params[name]!r} でも {other!r} でも同じモデルになります)。",
                 f"ConvNetShape(..., {name}={name}, ...) のように、提案された値をモデルに渡してください。")


def _forward_shape(model: nn.Module) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(call_student(model.eval(), torch.zeros(2, 3, 32, 32), what="作ったモデルの forward").shape)


def _check_rebuilt(fn: Callable, trial, model: nn.Module, num_classes: int) -> None:
    """FixedTrial(trial.params) builds a new network of the same shape (how the best trial is rebuilt)."""
    again = call_student(fn, optuna.trial.FixedTrial(dict(trial.params)), num_classes,
                         what="FixedTrial(best.params) での build_model")
    if again is model or {p.data_ptr() for p in again.parameters()} & {p.data_ptr() for p in model.parameters()}:
        fail("build_model が毎回同じモデル (同じ重み) を返しています: 前の試行で学習した重みから次の試行が始まります。",
             "build_model の中で毎回 ConvNet(shape, num_classes) を新しく作って返します。")
    if {k: v.shape for k, v in again.state_dict().items()} != {k: v.shape for k, v in model.state_dict().items()}:
        fail("同じパラメータで作り直したモデルの形が違います。",
             "モデルの形は trial から提案された値だけで決めてください (乱数やグローバル変数を使わない)。")


def _check_num_classes(fn: Callable, trial, num_classes: int) -> None:
    other = num_classes + 3
    model = call_student(fn, optuna.trial.FixedTrial(dict(trial.params)), other,
                         what=f"build_model(trial, num_classes={other})")
    shape = _forward_shape(model)
    if shape != (2, other):
        fail(f"num_classes={other} で作ったモデルの出力が {shape} です: 引数の num_classes を使っていません。",
             "ConvNet(shape, num_classes) のように、引数の num_classes を渡します (数を書き込まない)。")


def _check_model(fn: Callable, num_classes: int, quiet: bool = False) -> None:
    require_defined(fn, "build_model")
    sizes = set()
    for i, trial in enumerate(_trials()):
        model = call_student(fn, trial, num_classes, what="build_model(trial, num_classes)")
        if not isinstance(model, nn.Module):
            fail(f"build_model はモデル (nn.Module) を返してください (今は {type(model).__name__})。")
        for name, (kind, how) in SHAPE_PARAMS.items():
            got = _choices(_require_param(trial, name, kind, how))
            if sorted(map(str, got)) != sorted(map(str, SHAPE_CHOICES[name])):
                missing = [v for v in SHAPE_CHOICES[name] if v not in got]
                fail(f"{name} の候補が {got} です。TODO の候補は {list(SHAPE_CHOICES[name])} です"
                     + (f" ({', '.join(map(repr, missing))} が入っていません)。" if missing else "。"),
                     f"{how} と、TODO の候補をすべて入れます (入っていない値は、探索で一度も試されません)。")
        shape = _forward_shape(model)
        if shape != (2, num_classes):
            fail(f"モデルの出力の形が {shape} です。(2, {num_classes}) になるはずです。",
                 "最後の Linear の出力数を num_classes にしてください。")
        _check_rebuilt(fn, trial, model, num_classes)
        if i == 0:
            _check_num_classes(fn, trial, num_classes)
            _check_uses(fn, trial, num_classes)
        sizes.add(count_parameters(model))
    if len(sizes) < 2:
        fail("どの試行でも同じ大きさのモデルになります。",
             "ConvNetShape(conv_blocks=conv_blocks, width=width, ...) のように提案した値を使ってください。")
    if not quiet:
        ok(f"モデルの形が trial から決まり ({len(sizes)} 通りの大きさ)、FixedTrial で同じ形に作り直せます")


def build_model(fn: Callable, num_classes: int) -> None:
    """``fn(trial, num_classes) -> nn.Module`` takes conv_blocks, width and activation from the trial, uses
    each of them and ``num_classes``, and builds a new network at every call."""
    _check_model(fn, num_classes)


def ready_to_search(suggest_config_fn: Callable, build_model_fn: Callable, base: TrainConfig,
                    num_classes: int) -> None:
    """Called before a study starts: a search over blanks would spend GPU time on one fixed setting."""
    try:
        _check_config(suggest_config_fn, base, quiet=True)
        _check_model(build_model_fn, num_classes, quiet=True)
    except AssertionError as e:
        fail("まだ探索を始められません: 上の TODO が残っています。\n" + str(e).replace("❌ ", "   "),
             "suggest_config と build_model のチェックが ✅ になってから、このセルを実行してください。")
    ok("探索を始めます")


def load_best(fn: Callable, study: optuna.Study, dataset, device: torch.device | str) -> None:
    """``fn(study, num_classes) -> (best, model)``: the rebuilt model reaches the accuracy the trial recorded."""
    from ..tuning.objective import evaluate_trial_model
    from ..tuning.storage import recorded_run_dir

    require_defined(fn, "load_best")
    if not isinstance(study, optuna.Study):
        fail(f"study が Optuna の study ではありません ({type(study).__name__})。",
             "tuning.study_for(...) で作った study を渡してください。")
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        fail("この study にはまだ完了した試行がありません。", "上の探索 (run_worker) のセルを先に実行してください。")
    result = call_student(fn, study, dataset.num_classes, what="load_best(study, num_classes)")
    if not (isinstance(result, tuple) and len(result) == 2):
        fail("load_best は (best, model) の 2 つを返してください。")
    best, model = result
    if not isinstance(best, optuna.trial.FrozenTrial):
        fail(f"1 つ目の戻り値 best が試行 (FrozenTrial) ではありません ({type(best).__name__})。",
             "best = tuning.best_trial(study) をそのまま返します。")
    require_defined(model, "model")
    if not isinstance(model, nn.Module):
        fail(f"model が nn.Module ではありません ({type(model).__name__})。")
    if best.number != study.best_trial.number:
        fail(f"返した試行 #{best.number} は最良の試行 #{study.best_trial.number} ではありません。",
             "tuning.best_trial(study) (または study.best_trial) を使います。")
    path = recorded_run_dir(best)  # "run_dir"; "checkpoint" in a study saved by version 0.1
    if path:
        from ..checkpoint import load_checkpoint

        saved = call_student(load_checkpoint, path, what="最良の試行のチェックポイントの読み込み")["model"]
        mine = model.state_dict()
        if set(mine) != set(saved) or any(not torch.equal(mine[k].cpu(), saved[k].cpu()) for k in saved):
            fail("モデルの重みが最良の試行のチェックポイントと違います (学習前の重みのままです)。",
                 "state = load_checkpoint(best.user_attrs['run_dir']) の state['model'] を "
                 "model.load_state_dict(...) で読み込んでください。")
    device = torch.device(device)
    accuracy = call_student(evaluate_trial_model, model.to(device), dataset, device, what="読み込んだモデルの評価")
    # Exact on CPU; on a GPU, cuDNN may pick other kernels than during training.
    tolerance = 1e-6 if device.type == "cpu" else 1.0
    if abs(accuracy - best.value) > tolerance:
        fail(f"読み込んだモデルの正解率 {accuracy:.2f}% が記録 {best.value:.2f}% と違います。",
             "FixedTrial(best.params) で build_model を呼び、best.user_attrs['run_dir'] の "
             "state['model'] を load_state_dict してください。")
    ok(f"最良の試行 #{best.number} のモデルを作り直し、記録どおりの正解率 {accuracy:.2f}% になりました")
