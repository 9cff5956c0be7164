"""Ctrl-C that is never lost: the command line's SIGINT handler, and the points that honour it.

Python turns SIGINT into ``KeyboardInterrupt`` at the next bytecode of the main thread. When that
bytecode belongs to a finalizer (a ``__del__`` method or a weakref callback run by the garbage
collector; SQLAlchemy's registries run them while a tuning worker talks to its database), Python prints
``Exception ignored in ...`` and goes on: the Ctrl-C is gone. Seen in CI on 2026-12-07: a ``tune``
worker on PostgreSQL got SIGINT inside ``sqlalchemy.orm.clsregistry``, finished its trial and exited 0,
so a shell loop over several commands would have gone on with the next one.

The command line (``MyModules.__main__.run``) runs inside :func:`catching`: its handler raises
``KeyboardInterrupt`` as Python's does and also remembers that Ctrl-C was pressed. The training loop
(each step) and the tuning worker (before each trial) call :func:`check`, which raises again when an
earlier ``KeyboardInterrupt`` was swallowed; ``run`` treats a command that finished after a swallowed
Ctrl-C as interrupted. Outside :func:`catching` (a notebook, whose kernel has its own handler) nothing
changes: :func:`check` raises only after this module's handler saw SIGINT.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pressed = False


def _on_sigint(signum: int, frame: object) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


@contextmanager
def catching() -> Iterator[None]:
    """Within the block SIGINT raises ``KeyboardInterrupt`` and is remembered (main thread only)."""
    global _pressed
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    _pressed = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pressed = False  # what follows (another command in this process, a test) starts unpressed


def pressed() -> bool:
    """Whether Ctrl-C came within :func:`catching` (whether or not its ``KeyboardInterrupt`` got through)."""
    return _pressed


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came and its exception may have been swallowed.

    Cheap (one global read): the training loop calls it after every step.
    """
    if _pressed:
        raise KeyboardInterrupt
