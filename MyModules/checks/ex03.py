"""Self-checks for Exercise03 (``03_01_optuna``): suggestions for training, for the model shape,
and reloading the best trial.

The student's functions are called with real Optuna trials of a throw-away in-memory study (seeded
random sampler), so the checks see what Optuna would record: which parameters were suggested, with
which distribution, and whether the settings and the model really use them.

    from MyModules.checks import ex03 as check
    check.suggest_config(suggest_config, base)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from torch import nn

from ..models import count_parameters
from ..train import TrainConfig
from . import call_student, fail, ok, require_defined

PROBE_TRIALS = 8  # trials asked from the throw-away study


def _trials(n: int = PROBE_TRIALS):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    return [study.ask() for _ in range(n)]


def _require_param(trial, name: str, kind: type, how: str) -> Any:
    dist = trial.distributions.get(name)
    if dist is None:
        fail(f"パラメータ {name!r} が trial から提案されていません (固定値のままです)。",
             f"{how} のように trial.suggest_... で値を受け取ってください。名前は {name!r} にします。")
    if not isinstance(dist, kind):
        fail(f"{name!r} の提案の種類が違います ({type(dist).__name__})。", f"{how} を使ってください。")
    return dist


def _check_config(fn: Callable, base: TrainConfig, quiet: bool = False) -> None:
    require_defined(fn, "suggest_config")
    optimizers = set()
    for trial in _trials():
        config = call_student(fn, trial, base, what="suggest_config(trial, base)")
        if not isinstance(config, TrainConfig):
            fail(f"suggest_config は TrainConfig を返してください (今は {type(config).__name__})。",
                 "最後に dataclasses.replace(base, lr=lr, ...) を return します。")
        lr = _require_param(trial, "lr", FloatDistribution, 'trial.suggest_float("lr", 1e-4, 1e-1, log=True)')
        if not lr.log:
            fail("学習率が対数スケールで探索されていません。",
                 "学習率は 0.0001 と 0.001 の違いが 0.01 と 0.011 の違いより大事です: log=True を付けます。")
        if not (0 < lr.low < lr.high <= 1.0):
            fail(f"学習率の範囲 {lr.low}〜{lr.high} が広すぎるか逆です。", "1e-4〜1e-1 くらいにしてください。")
        opt = _require_param(trial, "optimizer", CategoricalDistribution,
                             'trial.suggest_categorical("optimizer", ["sgd", "adam"])')
        if set(opt.choices) != {"sgd", "adam"}:
            fail(f"optimizer の候補が {list(opt.choices)} です。", '["sgd", "adam"] の 2 つにしてください。')
        if config.lr != trial.params["lr"] or config.optimizer != trial.params["optimizer"]:
            fail("提案された lr / optimizer が返した TrainConfig に入っていません。",
                 "dataclasses.replace(base, lr=lr, optimizer=optimizer, ...) のように渡してください。")
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


def _check_model(fn: Callable, num_classes: int, quiet: bool = False) -> None:
    require_defined(fn, "build_model")
    sizes = set()
    for trial in _trials():
        model = call_student(fn, trial, num_classes, what="build_model(trial, num_classes)")
        if not isinstance(model, nn.Module):
            fail(f"build_model はモデル (nn.Module) を返してください (今は {type(model).__name__})。")
        _require_param(trial, "conv_blocks", IntDistribution, 'trial.suggest_int("conv_blocks", 1, 3)')
        _require_param(trial, "width", CategoricalDistribution, 'trial.suggest_categorical("width", [16, 32, 64])')
        _require_param(trial, "activation", CategoricalDistribution,
                       'trial.suggest_categorical("activation", ["relu", "gelu", "silu"])')
        with torch.no_grad():
            out = call_student(model.eval(), torch.zeros(2, 3, 32, 32), what="作ったモデルの forward")
        if tuple(out.shape) != (2, num_classes):
            fail(f"モデルの出力の形が {tuple(out.shape)} です。(2, {num_classes}) になるはずです。",
                 "最後の Linear の出力数を num_classes にしてください。")
        # The same parameters must give the same network: that is how the best trial is rebuilt.
        again = call_student(fn, optuna.trial.FixedTrial(dict(trial.params)), num_classes,
                             what="FixedTrial(best.params) での build_model")
        if {k: v.shape for k, v in again.state_dict().items()} != {k: v.shape for k, v in model.state_dict().items()}:
            fail("同じパラメータで作り直したモデルの形が違います。",
                 "モデルの形は trial から提案された値だけで決めてください (乱数やグローバル変数を使わない)。")
        sizes.add(count_parameters(model))
    if len(sizes) < 2:
        fail("どの試行でも同じ大きさのモデルになります。",
             "ConvNetShape(conv_blocks=conv_blocks, width=width, ...) のように提案した値を使ってください。")
    if not quiet:
        ok(f"モデルの形が trial から決まり ({len(sizes)} 通りの大きさ)、FixedTrial で同じ形に作り直せます")


def build_model(fn: Callable, num_classes: int) -> None:
    """``fn(trial, num_classes) -> nn.Module`` takes conv_blocks, width and activation from the trial."""
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
    from ..tuning import evaluate_trial_model

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
    path = best.user_attrs.get("checkpoint")
    if path:
        from ..checkpoint import load_checkpoint

        saved = call_student(load_checkpoint, path, what="最良の試行のチェックポイントの読み込み")["model"]
        mine = model.state_dict()
        if set(mine) != set(saved) or any(not torch.equal(mine[k].cpu(), saved[k].cpu()) for k in saved):
            fail("モデルの重みが最良の試行のチェックポイントと違います (学習前の重みのままです)。",
                 "state = load_checkpoint(best.user_attrs['checkpoint']) の state['model'] を "
                 "model.load_state_dict(...) で読み込んでください。")
    device = torch.device(device)
    accuracy = call_student(evaluate_trial_model, model.to(device), dataset, device, what="読み込んだモデルの評価")
    # Exact on CPU; on a GPU, cuDNN may pick other kernels than during training.
    tolerance = 1e-6 if device.type == "cpu" else 1.0
    if abs(accuracy - best.value) > tolerance:
        fail(f"読み込んだモデルの正解率 {accuracy:.2f}% が記録 {best.value:.2f}% と違います。",
             "FixedTrial(best.params) で build_model を呼び、best.user_attrs['checkpoint'] の "
             "state['model'] を load_state_dict してください。")
    ok(f"最良の試行 #{best.number} のモデルを作り直し、記録どおりの正解率 {accuracy:.2f}% になりました")
