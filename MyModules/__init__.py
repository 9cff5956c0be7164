"""MyModules: the shared code of the lab's PyTorch course.

Notebooks import from here instead of copying helpers around: one concern per module, in layers,
lowest first; a module imports only from its own layer and the ones above it. Written by
tools/package_map.py from each module's docstring; CI checks it.

ground floor: where we run, how we fail, how we write files:
  env        Where the course runs: Colab or a local machine, the course folder, the device, test mode
  errors     The course's own exception types: problems a user can fix, with a message that says how
  atomic     One way to write every file the course writes: whole or not at all
  seeding    Seeds: one call fixes every random generator, and one formula gives each epoch its own stream
  interrupt  Ctrl-C that is never lost: the command line's SIGINT handler, and the points that honour it
data: files on disk -> uint8 tensors -> batches on the device:
  formats  The on-disk formats of the course's datasets: readers (checked) and writers (for generated data)
  data     Datasets as whole uint8 tensors, with their class names
  loader   Batches for training: the fast device-resident loader (default) and the standard DataLoader path
the training engine:
  models       The course's models: the official tutorial ``Net``, a wider BatchNorm net, and VGG from a config list
  metrics      Confusion matrix and per-class accuracy (in percent); ``train.evaluate`` sums them over batches
  checkpoint   Checkpoints: plain dicts, two slots per run folder, read back with ``weights_only=True``
  run_folder   The run folder: where one training run keeps what it produced, and how those files are written
  distributed  Several processes, one training run: ``torchrun --nproc-per-node N -m MyModules train ...``
  train        Training in the pytorch/examples shape: ``train_one_epoch``, ``evaluate``, and ``fit`` around them
  speed        Measuring speed: images/s of a training step and seconds per epoch of a loader
viz/ (session 2): seeing training:
  viz              Session 2: seeing training (docs/02)
  viz.hooks        Look inside a model while it runs: forward hooks that record chosen layers' outputs
  viz.tensorboard  TensorBoard logging as a ``fit`` callback, and reading the logs back
  viz.summary      Model summaries with torchinfo: each layer's output shape, parameters and multiply-adds (MACs)
  viz.plots        The plots students look at after training (matplotlib), and ``save_run_plots`` for the command line
tuning/ (session 3): Optuna:
  tuning            Session 3: hyperparameter search with Optuna (docs/03)
  tuning.space      What Optuna searches over: the training settings and a family of conv nets whose shape a trial picks
  tuning.storage    Where an Optuna study lives so that it survives a lost runtime, and how workers share it
  tuning.objective  Hyperparameter search with Optuna on top of the course's ``fit``: objective, pruning, workers
  tuning.results    Looking at a study: the trials table (DataFrame / CSV) and Optuna's matplotlib plots
quant/ (session 4): custom autograd operations:
  quant            Session 4: your own differentiable operations (docs/04)
  quant.functions  Quantisers as custom autograd Functions, each with its Module (session 4, docs/04)
  quant.layers     Conv2d and Linear whose weights are quantised just before they are used (session 4, docs/04)
  quant.networks   The session-4 network: 8-bit fixed-point weights and 1-bit (±1) activations, and its float twin
runs/: after a run (new images, inspection, export):
  runs            After a run: use what a training run left in its folder (docs/05, the command line)
  runs.inference  Use a finished (or interrupted) run: its model in eval mode on the CPU, its classes, its preprocessing
  runs.inspect    What a run folder is, for ``python -m MyModules inspect RUN``: a report for people and a dict for scripts
  runs.export     Hand a run's model to another program: ONNX (any language, onnxruntime) or TorchScript (libtorch)
on top: the command line, the self-checks, old names:
  __main__     Command line: ``python -m MyModules train ...`` (the main job; lab servers run it from a terminal)
  checks       Self-checks that students run right after filling in a blank
  checks.ex01  Self-checks for Exercise01: a training step, a device move, output sizes, a wider net, BatchNorm, VGG11, AMP
  checks.ex02  Self-checks of Exercise02 (seeing training: TensorBoard, hooks, confusion matrix)
  checks.ex03  Self-checks for Exercise03 (``03_01_optuna``): objectives written by hand, suggestions, the best trial
  checks.ex04  Self-checks for session 4 (Exercise04/04_01_custom_op.ipynb): custom autograd Functions, quantisers
  _old_names   Old module names (version 0.1, one flat folder) keep working for this version, with a note
"""

__version__ = "0.2.0"  # the one place of the version: pyproject.toml and the setup cells read it

from . import _old_names  # noqa: E402

_old_names.install()  # `import MyModules.plots` (version 0.1's names) finds the module at its new place


def __getattr__(name: str):
    """``MyModules.study_results`` (version 0.1's flat names): the module at its new place, with a note."""
    if name in _old_names.OLD_NAMES:
        return _old_names.new_module(name)
    raise AttributeError(f"module 'MyModules' has no attribute {name!r}")
