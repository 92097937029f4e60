"""The one advisory file lock of the package (``flock`` on a lock file), usable in a folder that
cannot be written: there it takes a shared lock on an existing lock file, or none when there is
no lock file, since a process that cannot write there cannot change what it guards."""

from __future__ import annotations

import contextlib
import errno
import fcntl
from collections.abc import Iterator
from pathlib import Path

READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if needed) for the ``with`` block."""
    mode = fcntl.LOCK_EX
    try:
        fh = open(lock_path, "a+")  # noqa: SIM115 - closed below
    except OSError as e:
        if e.errno not in READ_ONLY:
            raise
        try:
            fh, mode = open(lock_path), fcntl.LOCK_SH  # noqa: SIM115
        except FileNotFoundError:
            yield
            return
    with fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
