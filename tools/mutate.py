"""Mutation check: plant realistic bugs in a copy of the repository and see whether the tests notice.

    python tools/mutate.py                      # every mutation; exit 1 if one survives or is stale
    python tools/mutate.py -k loader -k hooks   # only mutations whose name contains one of these
    python tools/mutate.py --list               # the table, without running anything
    python tools/mutate.py --root /tmp/base --not-applicable-ok   # score another checkout

Each row of :data:`MUTATIONS` names a file, an exact snippet of its source, the snippet's buggy
replacement and the tests that should catch it. The repository (tracked and untracked, not ignored
files) is copied once to a temporary folder; for each mutation the snippet is replaced there, only
its tests run (``pytest -x``, test mode, a fresh ``COURSE_DIR``), and the file is put back. The
working tree is never touched. A mutation is *killed* when its tests fail.

A snippet that is not found exactly once is reported as STALE and makes the run fail, so the table
cannot rot silently when the code changes: update the snippet with the code. With ``--root`` on
an older checkout and ``--not-applicable-ok``, missing snippets count as not applicable instead
(a selection whose test files the older checkout lacks falls back to the module's home tests
in :data:`HOME_TESTS`; none left = survived).

The table leaves out *equivalent* mutants, changes no test can see because the behaviour is the
same: e.g. swapping the DeviceLoader's dy and dx draws (both are independent and uniform over the
same range, so the output distribution is identical), or dropping ``fsync`` (only a power cut shows it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # per mutation; a hang counts as killed (the suite would not finish either)


@dataclass(frozen=True)
class Mutation:
    name: str  # what the bug is, in a few words
    path: str  # file, relative to the repository root
    old: str  # exact snippet of the current source (must occur once)
    new: str  # the buggy replacement
    tests: tuple[str, ...]  # pytest arguments (files or node ids) that should catch it


def m(name: str, path: str, old: str, new: str, *tests: str) -> Mutation:
    return Mutation(name, path, old, new, tests)


LOADER, TRAIN, METRICS = "MyModules/loader.py", "MyModules/train.py", "MyModules/metrics.py"
TB, HOOKS, QUANT, MODELS = "MyModules/viz/tensorboard.py", "MyModules/viz/hooks.py", "MyModules/quant/functions.py", "MyModules/models.py"
CKPT, PLOTS, NBTOOL, DATA = "MyModules/checkpoint.py", "MyModules/viz/plots.py", "tools/notebooks.py", "MyModules/data.py"
ATOMIC, RUNFOLDER, FORMATS = "MyModules/atomic.py", "MyModules/run_folder.py", "MyModules/formats.py"
STORAGE, TUNING = "MyModules/tuning/storage.py", "MyModules/tuning/objective.py"
EX01, EX02 = "MyModules/checks/ex01.py", "MyModules/checks/ex02.py"
EX03, EX04 = "MyModules/checks/ex03.py", "MyModules/checks/ex04.py"
T_PATH = "tests/test_loader_path.py"
T_PATH_MAIN = T_PATH + "::test_device_loader_training_batches_are_randomcrop_and_flip_of_their_own_images"
T_EVAL = "tests/test_evaluate.py"
T_STEP = "tests/test_train_step.py"
T_TBV = "tests/test_tb_values.py"
T_NB = "tests/test_notebook_tool_extra.py"
T_FAULTS = "tests/test_tuning_faults.py"
T_HEARTBEAT = T_FAULTS + "::test_heartbeat_keeps_a_long_trial_alive_and_its_silence_gets_it_retried"
T_EX01, T_EX02 = "tests/test_checks_ex01.py", "tests/test_checks_ex02.py"
T_EX03, T_EX04 = "tests/test_checks_ex03.py", "tests/test_checks_ex04.py"

MUTATIONS: list[Mutation] = [
    # --- loader: the DeviceLoader's own crop and flip, the test loader, the standard path ----------------
    m("loader: crop offsets drawn from 0..2p-1", LOADER,
      "offsets = torch.randint(0, 2 * self.padding + 1, (len(index), 2)",
      "offsets = torch.randint(0, 2 * self.padding, (len(index), 2)", T_PATH_MAIN),
    m("loader: one offset used for both axes", LOADER,
      "self.windows[source, :, offsets[:, 0], offsets[:, 1]]",
      "self.windows[source, :, offsets[:, 0], offsets[:, 0]]", T_PATH_MAIN),
    m("loader: windows unfolded x first (crops transposed)", LOADER,
      "self.windows = padded.unfold(2, h, 1).unfold(3, w, 1)",
      "self.windows = padded.unfold(3, w, 1).unfold(2, h, 1)", T_PATH_MAIN),
    m("loader: mirrored copy flips rows", LOADER,
      "padded = torch.cat([padded, padded.flip(3)])",
      "padded = torch.cat([padded, padded.flip(2)])", T_PATH_MAIN),
    m("loader: mirror taken from the next image", LOADER,
      "source = index + n * mirrored", "source = index + mirrored", T_PATH_MAIN),
    m("loader: a quarter of the images mirrored", LOADER,
      "generator=generator) < 0.5", "generator=generator) < 0.25", T_PATH_MAIN),
    m("loader: test loader shuffled", LOADER,
      "test = DeviceLoader(dataset.test, test_batch_size, dataset.mean, dataset.std, device=device,",
      "test = DeviceLoader(dataset.test, test_batch_size, dataset.mean, dataset.std, device=device, shuffle=True,",
      T_PATH + "::test_make_loaders_train_is_augmented_and_test_is_the_plain_images_in_order"),
    m("loader: standard path crops without padding", LOADER,
      "v2.RandomCrop(list(size), padding=padding)", "v2.RandomCrop(list(size))",
      T_PATH + "::test_standard_dataloader_path_has_the_same_augmentation"),
    m("loader: normalisation shift ignores std", LOADER,
      "[-m / s for m, s in zip(mean, std)]", "[-m for m, s in zip(mean, std)]",
      "tests/test_loader.py::test_normalize_matches_torchvision_normalize"),
    m("loader: hand-written loop repeats its order", LOADER,
      "self.epoch += 1  # no set_epoch", "self.epoch += 0  # no set_epoch",
      "tests/test_loader.py::test_hand_written_loop_without_set_epoch_gets_a_new_order_each_pass"),
    # --- train: one epoch, evaluation, test-mode caps, resume ----------------------------------------------
    m("evaluate: confusion matrix of the last batch only", TRAIN,
      "confusion += confusion_matrix(predictions, labels, num_classes)",
      "confusion = confusion_matrix(predictions, labels, num_classes)", T_EVAL),
    m("evaluate: loss of the last batch only", TRAIN,
      "loss_sum += criterion(outputs.float(), labels) * labels.shape[0]",
      "loss_sum = criterion(outputs.float(), labels) * labels.shape[0]", T_EVAL),
    m("evaluate: correct count of the last batch only", TRAIN,
      "correct += (predictions == labels).sum()", "correct = (predictions == labels).sum()", T_EVAL),
    m("evaluate: max_steps covers one batch more", TRAIN,
      "disable=not progress), start=1):", "disable=not progress), start=0):", T_EVAL),
    m("train: gradients accumulate (no zero_grad)", TRAIN,
      "optimizer.zero_grad(set_to_none=True)", "pass", T_STEP),
    m("train: schedule never stepped", TRAIN,
      "if scheduler is not None:\n            scheduler.step()", "if scheduler is not None:\n            pass",
      T_STEP),
    m("train: mean loss not weighted by batch size", TRAIN,
      "loss_sum += loss.detach().float() * labels.shape[0]", "loss_sum += loss.detach().float() * 10",
      T_STEP),
    m("train: SGD loses its weight decay", TRAIN,
      "nesterov=config.momentum > 0, weight_decay=config.weight_decay", "nesterov=config.momentum > 0",
      T_STEP),
    m("train: test-mode step cap rounds down", TRAIN,
      "-(-limits.images // config.batch_size)", "limits.images // config.batch_size", T_STEP),
    m("fit: resume repeats the checkpointed epoch", TRAIN,
      "for epoch in range(run.epoch + 1, config.epochs + 1):", "for epoch in range(run.epoch, config.epochs + 1):",
      "tests/test_train.py::test_resume_from_python_gives_the_same_weights"),
    m("fit: resume forgets the optimiser state", TRAIN,
      'optimizer.load_state_dict(state["optimizer"])', "pass",
      "tests/test_train.py::test_resume_from_python_gives_the_same_weights"),
    m("fit: resume restarts the schedule", TRAIN,
      'scheduler.load_state_dict(state["scheduler"])', "pass",
      "tests/test_train.py::test_resume_from_python_gives_the_same_weights"),
    # --- metrics -------------------------------------------------------------------------------------------
    m("metrics: confusion matrix transposed", METRICS,
      "(labels.to(torch.int64) * num_classes + predictions.to(torch.int64))",
      "(predictions.to(torch.int64) * num_classes + labels.to(torch.int64))", T_EVAL),
    m("metrics: per-class accuracy over predicted counts", METRICS,
      "confusion.diagonal() / confusion.sum(1)", "confusion.diagonal() / confusion.sum(0)",
      T_EVAL + "::test_fit_reports_the_evaluation_of_the_whole_test_set"),
    m("metrics: rows normalised by column sums", METRICS,
      "confusion / confusion.sum(1, keepdim=True)", "confusion / confusion.sum(0, keepdim=True)",
      "tests/test_plots.py::test_confusion_csvs_match_an_independent_count"),
    # --- checkpoint ----------------------------------------------------------------------------------------
    m("checkpoint: loaded without weights_only", CKPT,
      "torch.load(path, map_location=map_location, weights_only=True)",
      "torch.load(path, map_location=map_location, weights_only=False)",
      "tests/test_train.py::test_checkpoint_is_atomic_and_weights_only"),
    m("checkpoint: every epoch in the same slot", CKPT,
      'target = run_dir / SLOTS[int(state["epoch"]) % 2]', "target = run_dir / SLOTS[0]",
      "tests/test_formats.py::test_checkpoints_alternate_slots_and_rewrite_them_in_place",
      "tests/test_formats.py::test_a_torn_newest_slot_falls_back_to_the_previous_epoch"),
    m("checkpoint: resume takes the older slot", CKPT,
      "return max(good, key=lambda g: g[0])[2]", "return min(good, key=lambda g: g[0])[2]",
      "tests/test_formats.py::test_checkpoints_alternate_slots_and_rewrite_them_in_place",
      "tests/test_train.py::test_resume_from_python_gives_the_same_weights"),
    m("atomic: a failed write leaves its temp file", ATOMIC,
      "with contextlib.suppress(FileNotFoundError):\n            tmp.unlink()\n\n",
      "with contextlib.suppress(FileNotFoundError):\n            pass\n\n",
      "tests/test_train.py::test_checkpoint_is_atomic_and_weights_only"),
    m("atomic: a live writer's temp file removed", ATOMIC,
      "and _pid_alive(int(pid_text))", "and False",
      "tests/test_defaults.py::test_a_live_writers_temp_file_is_left_alone"),
    m("run folder: metrics.csv not rebuilt on resume", TRAIN,
      "        run_folder.write_metrics(run_dir, run.history)  # rebuilt", "        pass  # rebuilt",
      "tests/test_defaults.py::test_a_kill_between_checkpoint_and_csv_loses_no_metrics_row"),
    m("run settings: resume compares no TrainConfig field", RUNFOLDER,
      'for part in ("command_line", "config", "info"):', 'for part in ("command_line", "info"):',
      "tests/test_run_settings.py::test_fit_resume_refuses_a_changed_plan_key_and_allows_an_allowed_one"),
    m("run settings: v0.1 run.json keys keep their old names", RUNFOLDER,
      "{LEGACY_ARG_NAMES.get(k, k): v for k, v in saved.items()}", "dict(saved)",
      "tests/test_run_settings.py::test_the_reader_reads_a_v0_1_command_line_run"),
    m("run settings: an allowed change on resume is not recorded", TRAIN,
      "or not saved.same_as(settings)", "or False",
      "tests/test_run_settings.py::test_resume_rewrites_run_json_only_when_an_allowed_setting_changed"),
    m("run folder: resume picks the oldest run", RUNFOLDER,
      "return max(runs, key=_newest_mtime)", "return min(runs, key=_newest_mtime)",
      "tests/test_run_folder_latest.py"),
    m("formats: CIFAR rows read as height-width-channel", FORMATS,
      "return data.reshape(-1, 3, 32, 32), labels",
      "return data.reshape(-1, 32, 32, 3).transpose(0, 3, 1, 2), labels",
      "tests/test_data.py::test_cifar10_roundtrip_through_real_format"),
    m("formats: IDX header length off by one field", FORMATS,
      "offset=4 + 4 * ndim", "offset=4 * ndim", "tests/test_data.py::test_mnist_idx_roundtrip"),
    m("checkpoint: numpy RNG position not saved", CKPT,
      '"pos": int(np_state[2])', '"pos": 0', "tests/test_train.py::test_rng_roundtrip"),
    # --- TensorBoard logging and hooks ---------------------------------------------------------------------
    m("tb: gradient histograms show the weights", TB,
      'f"gradients/{name}", param.grad.detach()', 'f"gradients/{name}", param.detach()', T_TBV),
    m("tb: gradient histograms off by default", TB,
      "gradients: bool = True, hparams", "gradients: bool = False, hparams",
      T_TBV + "::test_gradient_histograms_are_each_epochs_last_gradients"),
    m("tb: loss/test logs the training loss", TB,
      'w.add_scalar("loss/test", metrics["test_loss"], step)',
      'w.add_scalar("loss/test", metrics["train_loss"], step)', T_TBV),
    m("tb: resume purges from the wrong epoch", TB,
      "epoch_end_step(self.log_dir, start_epoch - 1)", "epoch_end_step(self.log_dir, start_epoch)",
      "tests/test_tb_logging.py::test_resumed_run_continues_at_the_right_step_without_duplicates"),
    m("tb: a purging run's file may be read before the old one", TB,
      "        wait_to_sort_last(self.log_dir)\n", "", "tests/test_tb_order.py"),
    m("hooks: keeps a reference, not a copy", HOOKS,
      '.detach().to("cpu", torch.float32, copy=True)', '.detach().to("cpu", torch.float32)',
      "tests/test_hooks.py"),
    m("hooks: hooks left registered", HOOKS,
      "for handle in handles:\n            handle.remove()", "for handle in handles:\n            pass",
      "tests/test_hooks.py"),
    m("hooks: activations_for leaves the model in eval mode", HOOKS,
      "model.train(was_training)", "model.train(False)", "tests/test_hooks.py"),
    # --- quantisation (session 4) --------------------------------------------------------------------------
    m("quant: int8 rounds halves away from zero", QUANT,
      "return torch.clamp(torch.round(x), INT8_MIN, INT8_MAX)",
      "return torch.clamp(torch.trunc(x + 0.5 * torch.sign(x)), INT8_MIN, INT8_MAX)",
      "tests/test_quant.py::test_int8_forward_every_tie_goes_to_even"),
    m("quant: sign maps 0 to -1", QUANT,
      "torch.where(x >= 0, one, -one)", "torch.where(x > 0, one, -one)",
      "tests/test_quant.py::test_sign_forward_edge_values"),
    m("quant: STE passes gradients outside the clip range", QUANT,
      "torch.where(x.abs() <= limit, grad_output, torch.zeros_like(grad_output))", "grad_output",
      "tests/test_quant.py::test_sign_backward_is_the_straight_through_estimator"),
    m("quant: int8 STE window leaves out its ends", QUANT,
      "inside = (x >= INT8_MIN) & (x <= INT8_MAX)", "inside = (x > INT8_MIN) & (x < INT8_MAX)",
      "tests/test_quant.py::test_int8_backward_is_the_indicator_of_the_range"),
    m("quant: fixed-point saturation mask taken before scaling", QUANT,
      "ctx.save_for_backward((scaled >= low) & (scaled <= high))", "ctx.save_for_backward((x >= low) & (x <= high))",
      "tests/test_quant.py::test_fixed_point_generalises_int8"),
    m("quant: power-of-two STE window copied from sign", QUANT,
      "return _straight_through(grad_output, x, ctx.limit), None, None",
      "return _straight_through(grad_output, x, 1.0), None, None", "tests/test_quant.py::test_power_of_two"),
    m("quant: ternary STE without saturation", QUANT,
      "return _straight_through(grad_output, x, 1.0), None\n", "return grad_output, None\n",
      "tests/test_quant.py::test_ternary"),
    # --- Optuna (session 3): heartbeats, stale trials, retries, surplus trials, study names ----------------
    m("storage: heartbeat thread beats once", STORAGE,
      "target=self._run,", "target=self.beat,", T_HEARTBEAT),
    m("storage: heartbeat time frozen in a default argument", STORAGE,
      "    def beat(self) -> None:\n        try:\n            self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())",
      "    def beat(self, now: float = time.time()) -> None:\n        try:\n"
      "            self.trial.set_user_attr(HEARTBEAT_ATTR, now)", T_HEARTBEAT),
    m("storage: heartbeat on the monotonic clock (live trials declared dead)", STORAGE,
      "self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())", "self.trial.set_user_attr(HEARTBEAT_ATTR, time.monotonic())",
      T_HEARTBEAT),
    m("storage: a silent trial's start read as UTC (never declared dead east of UTC)", STORAGE,
      "    return start.timestamp() if start.tzinfo is None else start.astimezone().timestamp()",
      "    import calendar\n\n    return calendar.timegm(start.timetuple())  # datetime_start is UTC",
      T_FAULTS + "::test_trial_that_died_before_its_first_heartbeat_is_failed_and_retried"),
    m("storage: retry does not record retry_of", STORAGE,
      "attrs = {RETRY_OF_ATTR: trial.number, RETRIES_ATTR: retries + 1, RETRY_REASON_ATTR: reason}",
      "attrs = {RETRIES_ATTR: retries + 1, RETRY_REASON_ATTR: reason}", T_HEARTBEAT),
    m("storage: retry forgets the earlier attempt's checkpoint", STORAGE,
      "checkpoint = recorded_run_dir(trial) or trial.user_attrs.get(RESUME_FROM_ATTR)",
      "checkpoint = trial.user_attrs.get(RESUME_FROM_ATTR)",
      T_FAULTS + "::test_ctrl_c_then_the_same_command_retries_the_interrupted_trial"),
    m("storage: a v0.1 study's run folders (attribute checkpoint) no longer read", STORAGE,
      "return trial.user_attrs.get(RUN_DIR_ATTR) or trial.user_attrs.get(OLD_RUN_DIR_ATTR)",
      "return trial.user_attrs.get(RUN_DIR_ATTR)",
      "tests/test_saved_work.py::test_v0_1_journal_study_opens_and_its_trials_models_reload_and_score_their_values"),
    m("tuning: surplus trials counted off by one", TUNING,
      "return number in live and live.index(number) >= n_trials",
      "return number in live and live.index(number) > n_trials",
      "tests/test_tuning.py::test_surplus_trial_is_the_one_that_asked_last"),
    m("study name: your own functions identified by name only", TUNING,
      '"functions": [_source(f) for f in (self.suggest_config, self.build_model) if f is not None],',
      '"functions": [f.__qualname__ for f in (self.suggest_config, self.build_model) if f is not None],',
      T_FAULTS + "::test_study_name_follows_your_own_functions"),
    m("study name: comments and docstrings start a new study", TUNING,
      "    return ast.dump(tree)", "    return source", T_FAULTS + "::test_study_name_follows_your_own_functions"),
    m("tuning: a retry trains its copied checkpoint from scratch", TUNING,
      "resume=bool(history), callbacks=callbacks", "resume=False, callbacks=callbacks",
      T_FAULTS + "::test_ctrl_c_then_the_same_command_retries_the_interrupted_trial"),
    m("study name: digest of the identity's keys only", STORAGE,
      "hashlib.sha256(json.dumps(canonical(identity), sort_keys=True).encode())",
      "hashlib.sha256(str(sorted(canonical(identity))).encode())",
      "tests/test_tuning.py::test_default_study_name_follows_the_search_and_a_reused_name_is_refused"),
    # --- fit leaves what it was given alone: the caller's loader, torch's global flags ----------------------
    m("fit: cudnn.benchmark left on after the run", TRAIN,
      "    try:\n        yield\n    finally:\n        torch.backends.cudnn.benchmark = before",
      "    yield", "tests/test_defaults.py::test_cudnn_autotune_is_on_only_inside_the_block_and_only_on_cuda"),
    m("distributed: the caller's loader sharded in place", "MyModules/distributed.py",
      "shard = copy.copy(loader)", "shard = loader",
      "tests/test_distributed.py::test_fit_shards_a_copy_and_leaves_the_callers_loader_whole"),
    m("fit: a contradicting TrainConfig.augment accepted", TRAIN,
      "if augment not in (\"auto\", train_loader.augment):", "if False:",
      "tests/test_defaults.py::test_a_config_that_contradicts_the_loader_is_refused_and_the_loader_kept"),
    # --- test mode: its numbers come from env.TestModeLimits, each cap applied once -------------------------
    m("test mode: a trial's config capped by fit's caps as well", TUNING,
      "    return dataclasses.replace(config, batch_size=min(config.batch_size, limits.trial_batch_size),\n"
      "                               max_steps_per_epoch=steps)",
      "    from ..train import apply_test_mode\n"
      "    return apply_test_mode(dataclasses.replace(config, batch_size=min(config.batch_size, limits.trial_batch_size),\n"
      "                                               max_steps_per_epoch=steps), limits, verbose=False)",
      "tests/test_test_mode.py::test_a_trials_caps_are_applied_once"),
    m("test mode: heartbeat interval of its own", STORAGE,
      "cls(heartbeat_interval=limits.heartbeat_interval,", "cls(heartbeat_interval=1,",
      "tests/test_test_mode.py::test_changing_a_limit_changes_what_test_mode_does"),
    # --- self-checks: a wrong answer a test names is accepted -----------------------------------------------
    m("ex01: a whole float from / accepted as a size", EX01,
      "if got == want and not isinstance(got, int):",
      "if got == want and isinstance(got, float) and not got.is_integer():",
      T_EX01 + "::test_conv_output_size_names_the_mistake"),
    m("ex01: ReLU before BatchNorm accepted (shapes compared, not values)", EX01,
      "        if not torch.equal(following.input, conv.output):",
      "        if following.input_shape != conv.output_shape:",
      T_EX01 + "::test_bn_net_batchnorm_after_functional_relu_is_rejected",
      T_EX01 + "::test_vgg11_relu_before_batchnorm_functional"),
    m("ex02: a logger with one activation layer accepted", EX02,
      "    if len(layers) < 2:\n", "    if not layers:\n", T_EX02 + "::test_logger_check"),
    m("ex03: a linear learning-rate scale accepted", EX03,
      "        if not lr.log:\n", "        if lr.log is None:\n", T_EX03 + "::test_suggest_config_names_the_mistake"),
    m("ex03: loaded weights compared by shape only", EX03,
      "any(not torch.equal(mine[k].cpu(), saved[k].cpu()) for k in saved)",
      "any(mine[k].shape != saved[k].shape for k in saved)", T_EX03 + "::test_load_best_names_the_mistake"),
    m("ex03: optimizer choices checked as a subset", EX03,
      'if set(opt.choices) != {"sgd", "adam"}:', 'if not set(opt.choices) <= {"sgd", "adam"}:',
      T_EX03 + "::test_suggest_config_names_the_mistake"),
    m("ex01: backward and step under autocast accepted", EX01,
      "    if not inside:\n        return\n", "    if True:\n        return\n",
      T_EX01 + "::test_amp_step_names_the_mistake"),
    m("ex03: a shape choice the TODO asks for may be left out", EX03,
      "            if sorted(map(str, got)) != sorted(map(str, SHAPE_CHOICES[name])):",
      "            if not set(map(str, got)) <= set(map(str, SHAPE_CHOICES[name])):",
      T_EX03 + "::test_build_model_names_the_mistake"),
    m("ex03: an lr range other than the TODO's accepted", EX03,
      "    if not all(math.isclose(got, want, rel_tol=1e-9) for got, want in zip((lr.low, lr.high), LR_RANGE)):",
      "    if False:", T_EX03 + "::test_suggest_config_names_the_mistake"),
    m("ex04: ternary forward tried at one threshold only", EX04,
      "TERNARY_THRESHOLDS = (0.5, 0.2)", "TERNARY_THRESHOLDS = (0.5,)", T_EX04 + "::test_ternary_wrong_answers"),
    m("ex04: power-of-two tried with one (min_exp, max_exp) pair only", EX04,
      "POWER_EXPS = ((-4, 1), (-2, 2))", "POWER_EXPS = ((-4, 1),)", T_EX04 + "::test_power_of_two_wrong_answers"),
    m("ex04: fixed-point check forgives gradients past the ends", EX04,
      "ends = (scaled == -(2 ** (bits - 1))) | (scaled == 2 ** (bits - 1) - 1)",
      "ends = (scaled <= -(2 ** (bits - 1))) | (scaled >= 2 ** (bits - 1) - 1)",
      T_EX04 + "::test_fixed_point_wrong_answers"),
    # --- models ----------------------------------------------------------------------------------------------
    m("models: WideNet without BatchNorm", MODELS,
      "if batch_norm:\n                layers.append(nn.BatchNorm2d(cout))", "if False:\n                pass",
      "tests/test_models.py", "tests/test_checks_ex01.py"),
    m("models: VGG16 missing a conv", MODELS,
      '"vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256,', '"vgg16": [64, 64, "M", 128, 128, "M", 256, 256,',
      "tests/test_models_vgg.py"),
    # --- plots -----------------------------------------------------------------------------------------------
    m("plots: confident mistakes sorted least confident first", PLOTS,
      "confidence[wrong].argsort(descending=True, stable=True)", "confidence[wrong].argsort(stable=True)",
      "tests/test_plots.py::test_most_confident_mistakes_by_brute_force"),
    m("plots: confused pairs include the diagonal", PLOTS,
      "off.fill_diagonal_(-1)", "off",
      "tests/test_plots.py::test_most_confused_pairs_skips_the_diagonal"),
    # --- tools/notebooks.py ------------------------------------------------------------------------------------
    m("notebooks: stand-alone notebooks skipped by build", NBTOOL,
      'if path.parent.name == "solutions" or not (path.parent / "solutions" / path.name).exists():',
      'if path.parent.name == "solutions":', T_NB),
    m("notebooks: Jupyter checkpoint copies rewritten", NBTOOL,
      'if ".ipynb_checkpoints" not in p.parts', "if True", T_NB),
    m("notebooks: unchecked outputs kept", NBTOOL,
      "if not is_checked(cell) or not cell.get(\"outputs\"):", "if not cell.get(\"outputs\"):", T_NB),
    m("notebooks: refresh runs the templates too", NBTOOL,
      "paths = [p.resolve() for p in args.paths] or [p for p in all_notebooks()\n"
      "                                                        if not (p.parent / \"solutions\" / p.name).exists()]",
      "paths = [p.resolve() for p in args.paths] or all_notebooks()",
      T_NB + "::test_refresh_runs_standalone_notebooks_and_solutions_but_not_templates"),
    # --- command line: options from the dataclasses -----------------------------------------------------------
    m("cli: --epochs restates TrainConfig's default as a literal", "MyModules/__main__.py",
      "default=defaults[name],", 'default=10 if name == "epochs" else defaults[name],',
      "tests/test_cli_defaults.py::test_a_changed_default_in_the_dataclass_changes_the_option_and_its_help"),
    m("cli: every CourseError exits with the usage code", "MyModules/__main__.py",
      "    except CourseError as e:  # UsageError included\n"
      "        print(f\"error: {hide_secrets(one_line(e), argv)}\", file=sys.stderr)\n"
      "        return e.exit_code",
      "    except CourseError as e:  # UsageError included\n"
      "        print(f\"error: {hide_secrets(one_line(e), argv)}\", file=sys.stderr)\n"
      "        return EXIT_USAGE",
      "tests/test_bad_inputs.py::test_divergence_exit_code_is_3"),
    m("cli: only options spelt out in full seen as given", "MyModules/__main__.py",
      "    parser.parse_args(argv, namespace=marked)\n"
      "    return {name for name, value in vars(marked).items() if value is not _NOT_GIVEN}",
      "    given = {a.split(\"=\", 1)[0] for a in argv if a.startswith(\"--\")}\n"
      "    return {name for name in vars(args) if _option(name) in given}",
      "tests/test_cli_errors.py::test_explicit_options_are_those_written_on_the_command_line"),
    # --- old names ------------------------------------------------------------------------------------------------
    m("old names: a renamed function answers without its note", "MyModules/_old_names.py",
      "    if old not in _NOTED:\n        _NOTED.add(old)\n        short",
      "    if False:\n        short",
      "tests/test_old_names.py::test_a_renamed_function_answers_to_its_old_name_with_a_japanese_note"),
    # --- Ctrl-C ------------------------------------------------------------------------------------------------
    m("interrupt: the training step does not honour a swallowed Ctrl-C", TRAIN,
      "        interrupt.check()  # a Ctrl-C", "        pass  # a Ctrl-C",
      "tests/test_interrupt.py::test_a_swallowed_ctrl_c_stops_training_after_the_saved_epoch"),
    m("interrupt: the handler does not remember the Ctrl-C", "MyModules/interrupt.py",
      "    _pressed = True\n", "    pass\n",
      "tests/test_interrupt.py::test_check_raises_only_after_ctrl_c_within_catching"),
    # --- data --------------------------------------------------------------------------------------------------
    m("data: channel statistics use the variance", DATA,
      ".std(", ".var(", "tests/test_loader.py::test_normalised_training_batches_have_zero_mean_unit_std"),
]


#: Where a module's tests live in a checkout without the narrow tests named above (an older one):
#: ``--root`` on such a checkout runs these instead, so its own tests get their chance to kill.
HOME_TESTS: dict[str, tuple[str, ...]] = {
    LOADER: ("tests/test_loader.py",),
    TRAIN: ("tests/test_train.py",),
    METRICS: ("tests/test_train.py", "tests/test_plots.py"),
    CKPT: ("tests/test_train.py",),
    TB: ("tests/test_tb_logging.py", "tests/test_checks_ex02.py"),
    HOOKS: ("tests/test_tb_logging.py", "tests/test_plots.py"),
    QUANT: ("tests/test_quant.py",),
    MODELS: ("tests/test_models.py", "tests/test_checks_ex01.py"),
    PLOTS: ("tests/test_plots.py",),
    NBTOOL: ("tests/test_notebook_tool.py",),
    DATA: ("tests/test_data.py", "tests/test_loader.py"),
    EX01: ("tests/test_checks_ex01.py",),
    EX02: ("tests/test_checks_ex02.py",),
    EX03: ("tests/test_checks_ex03.py",),
    EX04: ("tests/test_checks_ex04.py",),
}


def selection(copy: Path, mu: Mutation) -> list[str]:
    """The mutation's tests that exist in ``copy``; if some are missing, its module's home tests too."""
    tests = [t for t in mu.tests if (copy / t.split("::", 1)[0]).exists()]
    if len(tests) < len(mu.tests):
        tests += [t for t in HOME_TESTS.get(mu.path, ()) if (copy / t).exists() and t not in tests]
    return tests


def copy_tree(source: Path, target: Path) -> None:
    """Tracked and untracked-but-not-ignored files of ``source`` (the working tree as git sees it)."""
    listed = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = source / rel
        if src.is_file():
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def test_env(course_dir: Path, copy: Path) -> dict[str, str]:
    env = dict(os.environ, COURSE_TEST_MODE="1", COURSE_DIR=str(course_dir), PYTHONPATH=str(copy),
               PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    return env


def run_tests(copy: Path, tests: list[str], timeout: int) -> tuple[int, float, str]:
    """Return code, seconds and output tail of ``pytest -x`` on ``tests`` inside ``copy``."""
    with tempfile.TemporaryDirectory(prefix="mutate-course-") as course_dir:
        start = time.perf_counter()
        try:
            # -n 0: a mutation's few tests in one process; starting pytest-xdist workers for them cost more
            # than they saved (4 evaluate mutations: 22 s with -n auto, 15 s without).
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "0", *tests],
                                  cwd=copy, env=test_env(Path(course_dir), copy), capture_output=True, text=True,
                                  timeout=timeout)
            code, out = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            code, out = -1, "timeout"
        return code, time.perf_counter() - start, out[-2000:]


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so the temporary copy is removed when the run is stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", action="append", default=[], help="only mutations whose name contains this")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to mutate (default: this one)")
    parser.add_argument("--not-applicable-ok", action="store_true",
                        help="a snippet missing from --root means not applicable, not stale")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_S)
    args = parser.parse_args(argv)
    chosen = [mu for mu in MUTATIONS if not args.k or any(k in mu.name for k in args.k)]
    if args.list:  # with the snippet counts in --root: 1 is right, anything else is stale
        for i, mu in enumerate(chosen, 1):
            target = args.root / mu.path
            count = target.read_text(encoding="utf-8").count(mu.old) if target.exists() else 0
            print(f"{i:2d}. {'' if count == 1 else f'STALE ({count}x) '}{mu.name}  [{mu.path}]  "
                  f"-> {' '.join(mu.tests)}")
        return 0

    root = args.root.resolve()
    print(f"mutating a copy of {root} ({len(chosen)} mutations)")
    rows, stale = [], 0
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        copy = Path(tmp) / "repo"
        copy_tree(root, copy)
        for i, mu in enumerate(chosen, 1):
            target = copy / mu.path
            original = target.read_text(encoding="utf-8") if target.exists() else ""
            count = original.count(mu.old)
            tests = selection(copy, mu)
            if count != 1:
                result = "n/a" if args.not_applicable_ok else f"STALE (snippet found {count}x)"
                stale += result != "n/a"
                rows.append((i, mu, result, 0.0))
            elif not tests:
                rows.append((i, mu, "survived (no test)", 0.0))
            else:
                target.write_text(original.replace(mu.old, mu.new), encoding="utf-8")
                try:
                    code, seconds, out = run_tests(copy, tests, args.timeout)
                finally:
                    target.write_text(original, encoding="utf-8")
                if code == 0:
                    result = "SURVIVED"
                elif code == 5:
                    result = "ERROR (no tests collected)"
                    stale += 1
                elif code == -1:
                    result = "killed (timeout)"
                else:
                    result = "killed"
                rows.append((i, mu, result, seconds))
            print(f"{i:2d}. {rows[-1][2]:<22s} {rows[-1][3]:6.1f} s  {mu.name}", flush=True)

    applicable = [r for r in rows if r[2] != "n/a"]
    killed = sum(r[2].startswith("killed") for r in applicable)
    print("\n| # | mutation | file | result | s |\n| --- | --- | --- | --- | --- |")
    for i, mu, result, seconds in rows:
        print(f"| {i} | {mu.name} | `{mu.path}` | {result} | {seconds:.1f} |")
    total = len(applicable)
    score = f"{killed}/{total} killed ({100.0 * killed / total:.0f} %)" if total else "nothing applicable"
    print(f"\nscore: {score}; not applicable: {len(rows) - total}; stale or broken: {stale}; "
          f"test time {sum(r[3] for r in rows):.0f} s")
    return 1 if stale or killed < total else 0


if __name__ == "__main__":
    sys.exit(main())
