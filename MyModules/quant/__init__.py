"""Session 4: your own differentiable operations (docs/04).

* ``functions`` custom autograd Functions (int8 fixed point, ±1 sign with a straight-through estimator,
  ternary, power of two) and the Modules that hold their settings
* ``layers``    Conv2d / Linear whose weights are quantised just before use
* ``networks``  the 8-bit-weight / 1-bit-activation network and its float twin

``from MyModules import quant`` gives the names of ``functions`` and ``layers`` (``quant.BinarySign``,
``quant.QuantizedConv2d``), as the session-4 notebook uses them.
"""

from .functions import *  # noqa: F403
from .functions import MAX_FRAC_INT8  # noqa: F401
from .layers import QuantizedConv2d, QuantizedLinear  # noqa: F401
