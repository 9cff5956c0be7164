"""Real file-system faults for tests: a full disk and a read-only folder, as small tmpfs mounts.

Root ignores permission bits (chmod 555 does not stop it), and the tests and CI run as root, so a
read-only folder is a tmpfs mounted ``ro`` (EROFS, which stops root too) and a full disk is a tmpfs of
a few hundred kilobytes (ENOSPC). Both are real kernel file systems, not mocks.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"these tests need `mount` (run as root, as CI does): mount {' '.join(args)}: "
                           f"{proc.stderr.strip()}")


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int) -> Iterator[Path]:
    """``path`` as a tmpfs of ``size_kb`` KiB: writes beyond that fail with ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_copy(source: Path, path: Path) -> Iterator[Path]:
    """A read-only folder at ``path`` holding a copy of ``source`` (tmpfs, remounted ro: EROFS even for root)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path))
    try:
        if source is not None:
            shutil.copytree(source, path, dirs_exist_ok=True)
        _mount("-o", "remount,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: compare before and after to see any change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()} | \
        {str(p.relative_to(folder)) + "/": (0, 0) for p in sorted(folder.rglob("*")) if p.is_dir()}
