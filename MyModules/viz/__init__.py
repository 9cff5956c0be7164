"""Session 2: seeing training (docs/02).

* ``hooks``       forward hooks that always come off (activations of any layer)
* ``tensorboard`` the TensorBoard logger callback; reading logs back, CSV export
* ``summary``     torchinfo model summaries (shapes, parameters, MACs)
* ``plots``       learning curves, confusion matrix, predictions, filters, feature maps
"""
