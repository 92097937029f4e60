"""Files that appear whole or not at all: each is written to a temporary name in its folder, flushed
and renamed into place (:func:`atomic_write_bytes` and its JSON and npz forms), and append-only JSON
lines (:func:`append_line`). A kill leaves at most a ``.tmp-*`` file, which the store removes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write (disk full, file too large) names no file: name it
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_bytes(path, json_bytes(obj))


def atomic_save_npz(path: Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def append_line(path: Path, obj: dict) -> None:
    """Append one JSON line with a single write (lines of concurrent writers do not interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
