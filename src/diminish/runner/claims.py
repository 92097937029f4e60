"""Claims on units of work: who runs a unit now. A claim is a file
``<out>/<name>/claims/<kind>-<key>.claim`` created with ``O_CREAT | O_EXCL`` that holds the owner's
pid, host, the time, its shard and the process's start time. It is stale - and may be taken over -
when its process is gone (same host: no process with that pid, or one that started at another
time) or when the file has not been touched for ``timeout`` seconds (the owner touches it while it
works, :meth:`Claims.heartbeat`). A stale claim is renamed aside and re-checked before it is taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

from .plan import Stage

HOST = socket.gethostname()


class Claims:
    """The claims folder of one experiment."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, stage: Stage) -> Path:
        return self.folder / f"{stage.kind}-{stage.key}.claim"

    def take(self, stage: Stage, timeout: float, shard: str = "") -> bool:
        path = self.path(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._take_stale(path, timeout):
                    return False
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": HOST, "time": time.time(), "shard": shard,
                           "started": process_start(os.getpid())}, fh)
            return True
        return False

    def state(self, stage: Stage, timeout: float) -> str | None:
        """None (no claim), 'live' or 'stale'."""
        path = self.path(stage)
        if not path.exists():
            return None
        return "stale" if _claim_is_stale(path, timeout) else "live"

    def release(self, stage: Stage) -> None:
        path = self.path(stage)
        info = _read_claim(path)
        if info is not None and info.get("pid") == os.getpid() and info.get("host") == HOST:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def heartbeat(self, stage: Stage) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(stage))

    def _take_stale(self, path: Path, timeout: float) -> bool:
        """Move a stale claim out of the way; False when it is live or someone else took it."""
        before = path.read_bytes() if path.exists() else None
        if before is None:
            return True
        if not _claim_is_stale(path, timeout):
            return False
        grave = path.with_name(f".stale-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            os.rename(path, grave)
        except FileNotFoundError:
            return True  # another process removed it first; try to create ours
        if grave.read_bytes() != before:  # we moved a fresh claim taken in the meantime: put it back
            with contextlib.suppress(FileExistsError):
                os.link(grave, path)
            grave.unlink()
            return False
        grave.unlink()
        return True


def _read_claim(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _claim_is_stale(path: Path, timeout: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    info = _read_claim(path)
    if info is None:  # owner died between creating and writing the claim
        return age > 30
    if info.get("host") == HOST:
        pid = int(info.get("pid", -1))
        if not _pid_alive(pid):
            return True
        started = info.get("started")  # the pid reused by another process after the owner died
        if started is not None and process_start(pid) not in (None, started):
            return True
    return age > timeout


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22), or None
    where that cannot be read (not Linux, process gone); with the pid it names one process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
