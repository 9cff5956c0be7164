"""A stand-in for Colab's Drive client: a real FUSE file system over a folder on this machine.

    python tests/support/drivefs.py CACHE MOUNTPOINT

serves ``CACHE`` (the runtime's local copy of Drive; it holds ``MyDrive/``) at ``MOUNTPOINT``, in the
foreground, until it is unmounted or killed. It is what the emulated ``google.colab.drive`` starts, so
the course's code meets a real mount with Colab's failure modes:

* killed (SIGKILL, as when Colab's client dies after a disconnect), the mount stays in the mount
  table and every operation on it fails with ``ENOTCONN`` ("Transport endpoint is not connected"),
  from the kernel, exactly as on Colab;
* writes land in ``CACHE`` only; the emulated ``flush_and_unmount`` uploads them to the "cloud"
  (Colab's client, too, writes to the VM's disk first and uploads later);
* Drive stores no symbolic or hard links: creating one fails with ``EPERM``.

Only what the course uses is served: files and folders, with their metadata.
"""

from __future__ import annotations

import errno
import os
import sys

from fuse import FUSE, FuseOSError, Operations


class DriveFS(Operations):
    """Pass every operation through to ``root`` (the cache), with file handles of the real files."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def _real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def __call__(self, op, *args):
        try:
            return super().__call__(op, *args)
        except OSError as e:  # every failure of the real file becomes the same errno on the mount
            raise FuseOSError(e.errno or errno.EIO) from None

    # --- metadata -------------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        st = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
        return {key: getattr(st, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                                                  "st_nlink", "st_size", "st_uid")}

    def access(self, path, amode):
        if not os.access(self._real(path), amode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), ns=None if times is None else tuple(int(t * 1e9) if isinstance(t, float)
                                                                        else t for t in times))

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                  "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    # --- folders --------------------------------------------------------------------------------
    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._real(path))]

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)

    def rmdir(self, path):
        os.rmdir(self._real(path))

    def rename(self, old, new):
        os.replace(self._real(old), self._real(new))

    def unlink(self, path):
        os.unlink(self._real(path))

    def symlink(self, target, source):
        raise FuseOSError(errno.EPERM)  # Drive has no symbolic links

    def link(self, target, source):
        raise FuseOSError(errno.EPERM)  # nor hard links

    def readlink(self, path):
        raise FuseOSError(errno.EINVAL)

    # --- files ----------------------------------------------------------------------------------
    def open(self, path, flags):
        return os.open(self._real(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._real(path), length)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        os.fdatasync(fh) if datasync else os.fsync(fh)

    def release(self, path, fh):
        os.close(fh)


def main(argv: list[str]) -> None:
    cache, mountpoint = argv
    # foreground: this process is the mount; killing it leaves the mount dead (ENOTCONN), as on Colab.
    FUSE(DriveFS(cache), mountpoint, foreground=True, nothreads=False, fsname="drivefs", subtype="drive")


if __name__ == "__main__":
    main(sys.argv[1:])
