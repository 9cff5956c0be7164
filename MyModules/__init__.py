"""MyModules: the shared code of the lab's PyTorch course.

Notebooks import from here instead of copying helpers around. One concern per module:

* ``env``        Colab or local, Drive, course folder, device, test mode (``setup()``)
* ``data``       datasets as uint8 tensors with their class names; generated test data
* ``loader``     the fast device-resident loader and the standard DataLoader path
* ``models``     tutorial ``Net``, ``WideNet``, ``VGG`` from a config list
* ``train``      ``TrainConfig``, ``train_one_epoch``, ``evaluate``, ``fit`` (checkpoints, resume)
* ``checkpoint`` atomic save, ``weights_only`` load
* ``metrics``    accuracy, confusion matrix, per-class accuracy
* ``hooks``      forward hooks that always come off (record_activations)
* ``tb_logging`` TensorBoardLogger callback; read logs back, CSV export
* ``summary``    torchinfo model summaries (shapes, parameters, MACs)
* ``plots``      learning curves, confusion matrix, predictions, filters, feature maps
* ``search_space``, ``study_storage``, ``tuning``, ``study_results``  Optuna (session 3)
* ``speed``      images/s of a training step, seconds per loader epoch
* ``quant``      custom autograd Functions: int8 fixed point, ±1 sign (STE), ternary, power of two;
                 quantised Conv2d/Linear
* ``quant_models`` the 8-bit-weight / 1-bit-activation network and its float twin
* ``checks``     self-checks students run after each exercise blank
"""

__version__ = "0.2.0"  # the one place of the version: pyproject.toml and the setup cells read it
