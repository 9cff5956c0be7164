"""A stand-in for the ``google.colab`` package of a Colab runtime (tests/support/colab.py).

``google`` is left a namespace package (no ``__init__.py``), so ``google.protobuf`` and the other
``google.*`` packages installed here still import beside it.
"""
