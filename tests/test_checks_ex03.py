"""The Exercise03 self-checks pass on the solutions and reject realistic wrong answers with a
Japanese message naming the mistake; no raw library exception reaches the student."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from pathlib import Path

import optuna
import pytest
import torch

from MyModules import tuning
from MyModules.checkpoint import load_checkpoint
from MyModules.checks import CheckFailed
from MyModules.checks import ex03 as check
from MyModules.formats import ImageSet
from MyModules.loader import make_loaders
from MyModules.train import TrainConfig, evaluate, train_one_epoch
from MyModules.tuning.space import ConvNet, ConvNetShape

optuna.logging.set_verbosity(optuna.logging.WARNING)
BASE = TrainConfig(epochs=1)


def fails(fn, *args, match: str) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args)
    message = str(info.value)
    assert match in message and message.startswith("❌"), message
    assert any("\u3040" <= ch <= "\u30ff" for ch in message), message  # Japanese (kana) for the student
    return message




# --- the ranges and choices the checks ask for are the ones the notebook's TODO lines state ----------------

NOTEBOOK = Path(__file__).resolve().parents[1] / "Exercise03" / "solutions" / "03_01_optuna.ipynb"


def test_the_checks_ask_for_what_the_notebook_says():
    code = "\n".join("".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"])
    lo, hi = check.TOY_X_RANGE
    solutions = [f'trial.suggest_float("x", {lo}, {hi})', check.LR_HOW] + [how for _, how in check.SHAPE_PARAMS.values()]
    blocks = check.SHAPE_CHOICES["conv_blocks"]
    todos = [f"{lo}〜{hi} の実数", f"{check.LR_TEXT} の対数スケール", f"{blocks[0]}〜{blocks[-1]}",
             ", ".join(map(str, check.SHAPE_CHOICES["width"])) + " から",
             ", ".join(f'"{a}"' for a in check.SHAPE_CHOICES["activation"]) + " から"]
    for text in solutions + todos:
        assert text in code, text


# --- the first objective: a toy function -------------------------------------------------------------

def toy(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def test_toy_objective_passes_on_the_solution(capsys):
    check.toy_objective(toy)
    assert "✅" in capsys.readouterr().out


def toy_printed(trial):
    x = trial.suggest_float("x", -10, 10)
    print((x - 2) ** 2)  # printed instead of returned


@pytest.mark.parametrize("wrong, match", [
    (None, "まだ設定されていません"),  # the function not defined yet
    (lambda t: (0.0 - 2) ** 2, "'x' が trial から提案されていません"),  # the template: x fixed
    (toy_printed, "値を返していません"),  # print instead of return
    (lambda t: (t.suggest_int("x", -10, 10) - 2) ** 2, "種類が違います"),  # an integer x
    (lambda t: (t.suggest_float("x", -10, 0) - 2) ** 2, "x = 2 が入っていません"),  # a range without the minimum
    (lambda t: t.suggest_float("x", -10, 10) - 2, "(x - 2) ** 2 = "),  # no square: minimising goes to -10
    (lambda t: (t.suggest_float("x", -10, 10) - 2) * 2, "(x - 2) ** 2 = "),  # * 2 for ** 2
    (lambda t: str((t.suggest_float("x", -10, 10) - 2) ** 2), "数を返して"),  # a string
    (lambda t: (t.suggest_float("x", 0, 4) - 2) ** 2, "-10〜10"),  # holds 2, but not the range the TODO asks for
])
def test_toy_objective_names_the_mistake(wrong, match):
    fails(check.toy_objective, wrong, match=match)


def toy_study_of(objective, n_trials=30, **options):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), **options)
    study.optimize(objective, n_trials=n_trials)
    return study


def test_toy_study_passes_on_the_solution(capsys):
    check.toy_study(toy_study_of(toy))
    out = capsys.readouterr().out
    assert "✅" in out and "最良の x" in out


@pytest.mark.parametrize("wrong, match", [
    (lambda: None, "study ではありません"),  # the template: study = None
    (lambda: toy, "study ではありません"),  # the objective passed instead of the study
    (lambda: toy_study_of(toy, direction="maximize"), "最大化"),  # maximises (x - 2) ** 2: x goes to the ends
    (lambda: optuna.create_study(), "完了した試行がありません"),  # created, never optimised
    (lambda: toy_study_of(toy, n_trials=3), "3 個だけ"),  # too few trials to find x = 2
    (lambda: toy_study_of(lambda t: t.suggest_float("y", 0, 1)), "x がありません"),  # another objective's study
])
def test_toy_study_names_the_mistake(wrong, match):
    fails(check.toy_study, wrong(), match=match)


# --- the training objective written by hand: report every epoch, prune, return the accuracy -------------

CPU = torch.device("cpu")
HAND_EPOCHS = 3


def hand_objective(trial, train_loader, test_loader, *, report="accuracy", step=lambda epoch: epoch,
                   prune="raise", returns="accuracy", where="each epoch", first_epoch=1):
    """The notebook's objective, with the switches a student's mistakes flip."""
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    torch.manual_seed(0)
    model = ConvNet(ConvNetShape(conv_blocks=2, width=16), 10).to(CPU)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(first_epoch, first_epoch + HAND_EPOCHS):
        train = train_one_epoch(model, CPU, train_loader, optimizer, epoch, progress=False)
        result = evaluate(model, CPU, test_loader)
        accuracy = result["accuracy"]
        values = {"accuracy": accuracy, "loss": train["loss"], "train accuracy": train["accuracy"],
                  "test loss": result["loss"], "result": result}
        if where == "after the loop":
            continue
        if report:
            trial.report(values[report], step(epoch))
        if prune == "raise" and trial.should_prune():
            raise optuna.TrialPruned()
        if prune == "break" and trial.should_prune():
            break
        if prune == "return" and trial.should_prune():
            return accuracy
        if prune == "always":
            raise optuna.TrialPruned()
    if where == "after the loop":  # the report and the pruning question moved out of the loop
        trial.report(values[report], step(epoch))
        if prune and trial.should_prune():
            raise optuna.TrialPruned()
    return values.get(returns)


def test_train_objective_passes_on_the_solution(course_dataset, capsys):
    check.train_objective(hand_objective, course_dataset, CPU)
    out = capsys.readouterr().out
    assert "✅" in out and "step 1〜3" in out


@pytest.mark.parametrize("variant", [
    dict(step=lambda epoch: epoch, first_epoch=0),  # epochs counted from 0: step 0, 1, 2
    dict(step=lambda epoch: epoch * 100),  # steps as the number of steps trained so far
])
def test_train_objective_passes_other_correct_answers(course_dataset, variant, capsys):
    check.train_objective(functools.partial(hand_objective, **variant), course_dataset, CPU)
    assert "✅" in capsys.readouterr().out


def other_loaders(course_dataset):
    # The notebook's own loaders (here of 128 images), not the ones passed in.
    small = dataclasses.replace(course_dataset, train=ImageSet(course_dataset.train.images[:128], course_dataset.train.labels[:128]))
    train, test = make_loaders(small, 64, CPU)
    return lambda trial, _train, _test: hand_objective(trial, train, test)


@pytest.mark.parametrize("mistake, match", [
    # the template: trains and evaluates, reports nothing, returns nothing
    (dict(report=None, prune=None, returns=None), "trial.report(...) が呼ばれていません"),
    # reports, but never asks the pruner
    (dict(prune=None), "trial.should_prune() を呼んでいません"),
    # asks, but breaks out of the loop: the trial is recorded COMPLETE
    (dict(prune="break"), "TrialPruned を投げずに"),
    # asks, but returns the accuracy instead of raising
    (dict(prune="return"), "TrialPruned を投げずに"),
    # raises TrialPruned whatever the pruner says
    (dict(prune="always"), "should_prune() が False の) ときも"),
    # the same step every epoch: Optuna keeps the first value only
    (dict(step=lambda epoch: 0), "同じ step 0 で 3 回"),
    (dict(step=lambda epoch: HAND_EPOCHS), "同じ step 3 で 3 回"),
    # one report after the loop instead of one per epoch (pruning then never happens)
    (dict(where="after the loop"), "3 エポック学習したあとで、はじめて report"),
    # forgets the return
    (dict(returns=None), "値を返していません"),
    # returns the training loss of a study that maximises
    (dict(returns="loss"), "最後に report した値"),
    # reports and returns the training loss
    (dict(report="loss", returns="loss"), "テストの正解率 (%) ではありません"),
    # reports and returns the test loss
    (dict(report="test loss", returns="test loss"), "テストの正解率 (%) ではありません"),
    # reports and returns the accuracy on the training images
    (dict(report="train accuracy", returns="train accuracy"), "テストの正解率 (%) ではありません"),
    # returns evaluate's whole dict
    (dict(returns="result"), "辞書を返しています"),
])
def test_train_objective_names_the_mistake(course_dataset, mistake, match):
    fails(check.train_objective, functools.partial(hand_objective, **mistake), course_dataset, CPU, match=match)


def test_train_objective_refuses_an_objective_that_ignores_its_loaders(course_dataset):
    fails(check.train_objective, other_loaders(course_dataset), course_dataset, CPU, match="引数の train_loader で学習していません")


def test_train_objective_refuses_the_unwritten_blank(course_dataset):
    def template(trial, train_loader, test_loader):
        raise NotImplementedError("TODO")

    fails(check.train_objective, template, course_dataset, CPU, match="まだ書かれていません")
    fails(check.train_objective, None, course_dataset, CPU, match="まだ設定されていません")


# --- the solutions (as in Exercise03/solutions/03_01_optuna.ipynb) ---------------------------------

def rest_of_config(trial, base, lr, optimizer):
    batch_size = trial.suggest_categorical("batch_size", [64, 128, 256])
    if optimizer == "sgd":
        momentum = trial.suggest_float("momentum", 0.8, 0.99)
        return dataclasses.replace(base, lr=lr, optimizer="sgd", momentum=momentum, batch_size=batch_size)
    weight_decay = trial.suggest_float("adam_weight_decay", 1e-5, 1e-2, log=True)
    return dataclasses.replace(base, lr=lr, optimizer="adam", weight_decay=weight_decay, batch_size=batch_size)


def suggest_config(trial, base):
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    return rest_of_config(trial, base, lr, optimizer)


def model_from(trial, num_classes, conv_blocks, width, activation):
    layers_per_block = trial.suggest_int("layers_per_block", 1, 2)
    fc_layers = trial.suggest_int("fc_layers", 0, 2)
    fc_units = trial.suggest_categorical("fc_units", [64, 128, 256]) if fc_layers else 0
    return ConvNet(ConvNetShape(conv_blocks=conv_blocks, layers_per_block=layers_per_block, width=width,
                                fc_layers=fc_layers, fc_units=fc_units, activation=activation), num_classes)


def build_model(trial, num_classes):
    conv_blocks = trial.suggest_int("conv_blocks", 1, 3)
    width = trial.suggest_categorical("width", [16, 32, 64])
    activation = trial.suggest_categorical("activation", ["relu", "gelu", "silu"])
    return model_from(trial, num_classes, conv_blocks, width, activation)


def load_best(study, num_classes):
    best = tuning.best_trial(study)
    model = build_model(optuna.trial.FixedTrial(best.params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["run_dir"], map_location="cpu")["model"])
    return best, model


# --- suggest_config -------------------------------------------------------------------------------

def test_suggest_config_passes_on_the_solution(capsys):
    check.suggest_config(suggest_config, BASE)
    assert "✅" in capsys.readouterr().out


def base_changed_in_place(trial, base):
    base.lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    base.optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    return base


def momentum_dropped(trial, base):
    config = suggest_config(trial, base)
    return dataclasses.replace(config, momentum=base.momentum) if config.optimizer == "sgd" else config


def test_suggest_config_puts_a_changed_base_back():
    base = TrainConfig(epochs=1)
    fails(check.suggest_config, base_changed_in_place, base, match="書き換えています")
    assert base == TrainConfig(epochs=1)


@pytest.mark.parametrize("wrong, match", [
    # the template left as it is: nothing suggested
    (lambda t, b: rest_of_config(t, b, 0.05, "sgd"), "'lr'"),
    # a linear scale for the learning rate
    (lambda t, b: rest_of_config(t, b, t.suggest_float("lr", 1e-4, 1e-1),
                                 t.suggest_categorical("optimizer", ["sgd", "adam"])), "対数スケール"),
    # another name than the one the course (and FixedTrial(best.params)) uses
    (lambda t, b: rest_of_config(t, b, t.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
                                 t.suggest_categorical("optimizer", ["sgd", "adam"])), "'lr'"),
    # only one optimizer to choose from
    (lambda t, b: rest_of_config(t, b, t.suggest_float("lr", 1e-4, 1e-1, log=True),
                                 t.suggest_categorical("optimizer", ["sgd"])), "候補"),
    # suggested, but base returned as it is
    (lambda t, b: (t.suggest_float("lr", 1e-4, 1e-1, log=True), t.suggest_categorical("optimizer", ["sgd", "adam"]),
                   b)[-1], "base をそのまま返している"),
    # suggested under another variable name, while the template's fixed value is what goes on
    (lambda t, b: (t.suggest_float("lr", 1e-4, 1e-1, log=True),
                   rest_of_config(t, b, 0.05, t.suggest_categorical("optimizer", ["sgd", "adam"])))[-1],
     "'lr' = "),
    # base changed in place and returned: every later trial starts from this trial's values
    (base_changed_in_place, "base を書き換えています"),
    # momentum suggested, then not passed on
    (momentum_dropped, "'momentum' = "),
    # a learning-rate range of one digit only
    (lambda t, b: rest_of_config(t, b, t.suggest_float("lr", 0.01, 0.02, log=True),
                                 t.suggest_categorical("optimizer", ["sgd", "adam"])), "狭すぎます"),
    # a learning-rate range that stops at 1e-2 although the TODO asks for 1e-4 to 1e-1
    (lambda t, b: rest_of_config(t, b, t.suggest_float("lr", 1e-4, 1e-2, log=True),
                                 t.suggest_categorical("optimizer", ["sgd", "adam"])), "1e-4〜1e-1"),
    # the suggested values returned instead of the settings
    (lambda t, b: (suggest_config(t, b), t.params)[-1], "TrainConfig を返して"),
    # an integer range for a learning rate
    (lambda t, b: rest_of_config(t, b, t.suggest_int("lr", 0, 1), "sgd"), "種類が違います"),
    # the bounds the wrong way round: Optuna's ValueError becomes a hint
    (lambda t, b: rest_of_config(t, b, t.suggest_float("lr", 1e-1, 1e-4, log=True), "sgd"), "エラーになりました"),
    # returns nothing
    (lambda t, b: None, "TrainConfig を返して"),
])
def test_suggest_config_names_the_mistake(wrong, match):
    fails(check.suggest_config, wrong, BASE, match=match)


# --- build_model ------------------------------------------------------------------------------------

_MODELS: dict = {}
_FEATURES: dict = {}


def shared_model(trial, num_classes):
    model = build_model(trial, num_classes)  # asks the trial for every value
    return _MODELS.setdefault(tuple(sorted(trial.params.items())), model)  # ...and hands out the first one again


def shared_features(trial, num_classes):
    model = build_model(trial, num_classes)
    model.features = _FEATURES.setdefault(tuple(sorted(trial.params.items())), model.features)
    return model


_WIDTHS = itertools.cycle([16, 32, 64])


def width_from_a_counter(trial, num_classes):
    trial.suggest_categorical("width", [16, 32, 64])
    return model_from(trial, num_classes, trial.suggest_int("conv_blocks", 1, 3), next(_WIDTHS),
                      trial.suggest_categorical("activation", ["relu", "gelu", "silu"]))


def test_build_model_passes_on_the_solution(capsys):
    check.build_model(build_model, 10)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    # the template left as it is
    (lambda t, n: model_from(t, n, 2, 32, "relu"), "'conv_blocks'"),
    # an integer range for a choice among three widths
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 1, 3), t.suggest_int("width", 16, 64),
                             t.suggest_categorical("activation", ["relu", "gelu"])), "種類が違います"),
    # suggested, then ignored: every trial trains the same network
    (lambda t, n: (t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                   t.suggest_categorical("activation", ["relu", "gelu", "silu"]),
                   ConvNet(ConvNetShape(), n))[-1], "'conv_blocks' を trial から受け取っていますが"),
    # the activation asked for, then the template's "relu" built (the TODO line left below the new one)
    (lambda t, n: (t.suggest_categorical("activation", ["relu", "gelu", "silu"]),
                   model_from(t, n, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                              "relu"))[-1], "'activation' を trial から受け取っていますが"),
    # the width asked for, then the template's 32 built
    (lambda t, n: (t.suggest_categorical("width", [16, 32, 64]),
                   model_from(t, n, t.suggest_int("conv_blocks", 1, 3), 32,
                              t.suggest_categorical("activation", ["relu", "gelu", "silu"])))[-1],
     "'width' を trial から受け取っていますが"),
    # one network kept and handed out again: each trial goes on training the one before it
    (shared_model, "同じモデル (同じ重み)"),
    # a new head on a feature extractor built once: the trials share (and keep training) its weights
    (shared_features, "同じモデル (同じ重み)"),
    # a width taken from a global counter instead of the trial: FixedTrial(best.params) cannot rebuild it
    (width_from_a_counter, "作り直した"),
    # ten outputs whatever num_classes says
    (lambda t, n: model_from(t, 10, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "出力の形"),
    # trial.params used as the model: not a module
    (lambda t, n: (build_model(t, n), t.params)[-1], "nn.Module"),
    # one of the choices the TODO asks for left out
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "width の候補"),
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 1, 2), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "conv_blocks の候補"),
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu"])), "activation の候補"),
    # more blocks than a 32x32 image has pixels for: named by the range before the model crashes
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 6, 8), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "conv_blocks の候補"),
    # the activation passed on as a layer name ConvNet does not know: the crash becomes a hint
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"]).upper()), "エラーになりました"),
])
def test_build_model_names_the_mistake(wrong, match):
    fails(check.build_model, wrong, 7, match=match)


def test_build_model_catches_a_hard_coded_number_of_classes():
    # With the notebook's 10 classes a model with 10 outputs has the right shape: the check also asks for 13.
    ten = lambda t, n: model_from(t, 10, t.suggest_int("conv_blocks", 1, 3),  # noqa: E731
                                  t.suggest_categorical("width", [16, 32, 64]),
                                  t.suggest_categorical("activation", ["relu", "gelu", "silu"]))
    fails(check.build_model, ten, 10, match="引数の num_classes を使っていません")


def test_ready_to_search_refuses_the_templates_and_passes_the_solutions(capsys):
    fails(check.ready_to_search, lambda t, b: rest_of_config(t, b, 0.05, "sgd"), build_model, BASE, 10,
          match="まだ探索を始められません")
    fails(check.ready_to_search, suggest_config, lambda t, n: model_from(t, n, 2, 32, "relu"), BASE, 10,
          match="まだ探索を始められません")
    check.ready_to_search(suggest_config, build_model, BASE, 10)
    assert "探索を始めます" in capsys.readouterr().out


# --- load_best ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def searched(tmp_path_factory, course_dataset):
    folder = tmp_path_factory.mktemp("ex03")
    objective = tuning.Objective(course_dataset, "cpu", folder / "runs", base=BASE, space=None,
                                 suggest_config=suggest_config, build_model=build_model)
    study = tuning.study_for(objective, course_dir=folder, prefix="ex03", pruner=optuna.pruners.NopPruner())
    tuning.run_worker(study, objective, n_trials=2, verbose=False)
    return study, course_dataset


def test_load_best_passes_on_the_solution(searched, capsys):
    study, course_dataset = searched
    check.load_best(load_best, study, course_dataset, "cpu")
    assert "記録どおり" in capsys.readouterr().out


def not_loaded(study, num_classes):
    best = tuning.best_trial(study)
    return best, build_model(optuna.trial.FixedTrial(best.params), num_classes)  # fresh weights


def last_trial(study, num_classes):
    best = min(study.trials, key=lambda t: t.value)  # not the best one
    model = build_model(optuna.trial.FixedTrial(best.params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["run_dir"])["model"])
    return best, model


def other_shape(study, num_classes):
    best = tuning.best_trial(study)
    params = {**best.params, "conv_blocks": best.params["conv_blocks"] % 3 + 1}
    model = build_model(optuna.trial.FixedTrial(params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["run_dir"])["model"])
    return best, model


def whole_checkpoint(study, num_classes):
    best = tuning.best_trial(study)
    model = build_model(optuna.trial.FixedTrial(best.params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["run_dir"]))  # the whole dict
    return best, model


@pytest.mark.parametrize("wrong, match", [
    (lambda s, n: (tuning.best_trial(s), None), "まだ設定されていません"),  # the template
    (not_loaded, "チェックポイントと違います"),  # the model built but its weights never loaded
    (other_shape, "モデルの形が、読み込もうとしている重みと違います"),  # rebuilt with other parameters
    (whole_checkpoint, "チェックポイント全体 (辞書)"),  # load_state_dict given the checkpoint, not its "model"
    (lambda s, n: load_best(s, n)[1], "2 つを返して"),  # returns the model only
    (lambda s, n: (s.best_trial.params, load_best(s, n)[1]), "FrozenTrial"),  # params instead of the trial
])
def test_load_best_names_the_mistake(searched, wrong, match):
    study, course_dataset = searched
    fails(check.load_best, wrong, study, course_dataset, "cpu", match=match)


def test_load_best_catches_a_trial_that_is_not_the_best(searched):
    study, course_dataset = searched
    if len({t.value for t in study.trials}) == 1:
        pytest.skip("both trials scored the same: there is no worse trial to pick")
    fails(check.load_best, last_trial, study, course_dataset, "cpu", match="最良の試行 #")


def test_load_best_without_a_study_or_trials_says_what_to_run(tmp_path, searched):
    _, course_dataset = searched
    fails(check.load_best, load_best, None, course_dataset, "cpu", match="study ではありません")
    empty = optuna.create_study(direction="maximize")
    fails(check.load_best, load_best, empty, course_dataset, "cpu", match="完了した試行がありません")
