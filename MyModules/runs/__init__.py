"""After a run: use what a training run left in its folder (docs/05, the command line).

* ``inference`` a run's model for new images (``load_model``, ``predict``)
* ``inspect``   what a run folder holds and how well it did (``python -m MyModules inspect``)
* ``export``    ONNX and TorchScript files of a run's model (``python -m MyModules export``)
"""
