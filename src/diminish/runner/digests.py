"""Checking stored files against what was written: the size and SHA-256 of a file as written
(:func:`digest`, recorded by the store in a stage's ``done`` file and beside a checkpoint), the
comparison when the file is used (:func:`digest_problem`), and the errors that name a damaged
file (:class:`DamagedFile`, :class:`UpstreamDamaged`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .plan import Stage


class DamagedFile(ValueError):
    """A stored file that is missing, unreadable or not what was written; names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


class UpstreamDamaged(DamagedFile):
    """A file of a finished upstream stage is damaged: that stage is marked undone and rerun, and
    the stage that needed it waits (it is not blamed)."""

    def __init__(self, stage: Stage, path: Path, problem: str) -> None:
        super().__init__(path, problem)
        self.stage = stage


def digest(data: bytes) -> dict:
    """Size and SHA-256 of bytes about to be written (recorded to check the file when it is used)."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_digest(path: Path) -> dict:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return {"bytes": n, "sha256": h.hexdigest()}


def digest_problem(path: Path, expected: dict | None) -> str | None:
    """None when ``path`` exists and matches ``expected`` (None: nothing recorded, only existence);
    otherwise what is wrong with it, in words."""
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:  # a symbolic link loop, a permission problem, ...
        return f"unreadable ({e.strerror or e})"
    if expected is None:
        return None
    if size != expected.get("bytes"):
        return f"{size} bytes, but {expected.get('bytes')} were written"
    try:
        same = file_digest(path)["sha256"] == expected.get("sha256")
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return None if same else "its SHA-256 differs from the one recorded when it was written"
