"""The Exercise03 self-checks pass on the solutions and reject realistic wrong answers with a
Japanese message naming the mistake; no raw library exception reaches the student."""

from __future__ import annotations

import dataclasses
import random

import optuna
import pytest

from MyModules import env, tuning
from MyModules.checkpoint import load_checkpoint
from MyModules.checks import CheckFailed
from MyModules.checks import ex03 as check
from MyModules.data import load_dataset
from MyModules.search_space import ConvNet, ConvNetShape
from MyModules.train import TrainConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)
BASE = TrainConfig(epochs=1)


def fails(fn, *args, match: str) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args)
    message = str(info.value)
    assert match in message and message.startswith("❌"), message
    assert any("\u3040" <= ch <= "\u30ff" for ch in message), message  # Japanese (kana) for the student
    return message


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
    model.load_state_dict(load_checkpoint(best.user_attrs["checkpoint"], map_location="cpu")["model"])
    return best, model


# --- suggest_config -------------------------------------------------------------------------------

def test_suggest_config_passes_on_the_solution(capsys):
    check.suggest_config(suggest_config, BASE)
    assert "✅" in capsys.readouterr().out


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
    # suggested, but the returned settings keep base's values
    (lambda t, b: (t.suggest_float("lr", 1e-4, 1e-1, log=True), t.suggest_categorical("optimizer", ["sgd", "adam"]),
                   b)[-1], "入っていません"),
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
                   ConvNet(ConvNetShape(), n))[-1], "同じ大きさ"),
    # a width drawn with random instead of the trial: FixedTrial(best.params) cannot rebuild it
    (lambda t, n: (t.suggest_categorical("width", [16, 32, 64]),
                   model_from(t, n, t.suggest_int("conv_blocks", 1, 3), random.choice([16, 32, 64]),
                              t.suggest_categorical("activation", ["relu", "gelu", "silu"])))[-1], "作り直した"),
    # ten outputs whatever num_classes says
    (lambda t, n: model_from(t, 10, t.suggest_int("conv_blocks", 1, 3), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "出力の形"),
    # more blocks than a 32x32 image has pixels for: the crash becomes a hint
    (lambda t, n: model_from(t, n, t.suggest_int("conv_blocks", 6, 8), t.suggest_categorical("width", [16, 32, 64]),
                             t.suggest_categorical("activation", ["relu", "gelu", "silu"])), "エラーになりました"),
])
def test_build_model_names_the_mistake(wrong, match):
    fails(check.build_model, wrong, 7, match=match)


def test_ready_to_search_refuses_the_templates_and_passes_the_solutions(capsys):
    fails(check.ready_to_search, lambda t, b: rest_of_config(t, b, 0.05, "sgd"), build_model, BASE, 10,
          match="まだ探索を始められません")
    fails(check.ready_to_search, suggest_config, lambda t, n: model_from(t, n, 2, 32, "relu"), BASE, 10,
          match="まだ探索を始められません")
    check.ready_to_search(suggest_config, build_model, BASE, 10)
    assert "探索を始めます" in capsys.readouterr().out


# --- load_best ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    dataset = load_dataset("cifar10", env.setup(verbose=False).data_dir)
    folder = tmp_path_factory.mktemp("ex03")
    objective = tuning.Objective(dataset, "cpu", folder / "runs", base=BASE, space=None,
                                 suggest_config=suggest_config, build_model=build_model)
    study = tuning.study_for(objective, course_dir=folder, prefix="ex03", pruner=optuna.pruners.NopPruner())
    tuning.run_worker(study, objective, n_trials=2, verbose=False)
    return study, dataset


def test_load_best_passes_on_the_solution(searched, capsys):
    study, dataset = searched
    check.load_best(load_best, study, dataset, "cpu")
    assert "記録どおり" in capsys.readouterr().out


def not_loaded(study, num_classes):
    best = tuning.best_trial(study)
    return best, build_model(optuna.trial.FixedTrial(best.params), num_classes)  # fresh weights


def last_trial(study, num_classes):
    best = min(study.trials, key=lambda t: t.value)  # not the best one
    model = build_model(optuna.trial.FixedTrial(best.params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["checkpoint"])["model"])
    return best, model


def other_shape(study, num_classes):
    best = tuning.best_trial(study)
    params = {**best.params, "conv_blocks": best.params["conv_blocks"] % 3 + 1}
    model = build_model(optuna.trial.FixedTrial(params), num_classes)
    model.load_state_dict(load_checkpoint(best.user_attrs["checkpoint"])["model"])
    return best, model


@pytest.mark.parametrize("wrong, match", [
    (lambda s, n: (tuning.best_trial(s), None), "まだ設定されていません"),  # the template
    (not_loaded, "チェックポイントと違います"),  # the model built but its weights never loaded
    (other_shape, "エラーになりました"),  # rebuilt with other parameters: load_state_dict refuses
    (lambda s, n: load_best(s, n)[1], "2 つを返して"),  # returns the model only
    (lambda s, n: (s.best_trial.params, load_best(s, n)[1]), "FrozenTrial"),  # params instead of the trial
])
def test_load_best_names_the_mistake(searched, wrong, match):
    study, dataset = searched
    fails(check.load_best, wrong, study, dataset, "cpu", match=match)


def test_load_best_catches_a_trial_that_is_not_the_best(searched):
    study, dataset = searched
    if len({t.value for t in study.trials}) == 1:
        pytest.skip("both trials scored the same: there is no worse trial to pick")
    fails(check.load_best, last_trial, study, dataset, "cpu", match="最良の試行 #")


def test_load_best_without_a_study_or_trials_says_what_to_run(tmp_path, searched):
    _, dataset = searched
    fails(check.load_best, load_best, None, dataset, "cpu", match="study ではありません")
    empty = optuna.create_study(direction="maximize")
    fails(check.load_best, load_best, empty, dataset, "cpu", match="完了した試行がありません")
