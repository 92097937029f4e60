"""The on-disk store of stage outputs: atomic files, stage folders, logs, claims and the folder lock.

Store (one folder per stage, under ``<out>/<name>/stages/<kind>/<key>/``)::

    spec.json        what the key hashes (human-readable)
    checkpoint.pt    latest resumable state (model, optimiser, scheduler, epoch, step, RNG); removed when done
    model.pt         final weights (pretrain/intermediate: kept, needed downstream; finetune: removed
                     after evaluation unless --save-models)
    record.json      the stage's results (losses, accuracies, seconds, cache hash)
    log.jsonl        one JSON line per event (start, resume, epoch, done, interrupted, failed)
    failed.json      the last failure, if any (removed by a later success)
    done             written last: only its presence makes the stage count as finished; it holds the
                     size and SHA-256 of record.json, model.pt and examples.npz as written

Every file is written to a temporary name in the same folder and renamed into place. Lifecycle
events of every stage are also appended to ``<out>/<name>/executions.jsonl``.

Claims (``<out>/<name>/claims/<kind>-<key>.claim``, one per unit of work) are created with ``O_CREAT | O_EXCL`` and hold the
owner's pid, host, the time and the process's start time; a claim whose process is gone (same host:
no process with that pid, or one that started at another time) or whose file has not
been touched for ``claim_timeout`` seconds (the owner touches it while it works) is stale and may
be taken over.

Files directly in the experiment folder (config.toml, results.nc, examples.npz) are written while
holding :func:`root_lock`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .digests import DamagedFile, digest, digest_problem, file_digest
from .locks import locked
from .plan import Stage


# -- atomic files -----------------------------------------------------------------------------
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


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_bytes(path, _json_bytes(obj))


def atomic_torch_save(path: Path, obj: Any) -> dict:
    """Write ``obj`` with torch.save, atomically; returns the file's :func:`digest`."""
    import torch  # only stages save models: --help, --dry-run and --status of diminish.run need no torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
    return digest(buf.getvalue())


def atomic_save_npz(path: Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# -- the store --------------------------------------------------------------------------------
HOST = socket.gethostname()


class Store:
    """Files of one experiment: ``<out_dir>/<name>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, stage: Stage) -> Path:
        return self.root / "stages" / stage.kind / stage.key

    def is_done(self, stage: Stage) -> bool:
        return (self.dir(stage) / "done").is_file()

    def record(self, stage: Stage) -> dict:
        """The stage's record.json; :class:`DamagedFile` (naming it) when it cannot be read."""
        path = self.dir(stage) / "record.json"
        try:
            rec = read_json(path)
        except FileNotFoundError:
            raise DamagedFile(path, f"missing, though {stage.label} is marked done") from None
        except (OSError, ValueError) as e:
            raise DamagedFile(path, f"not a readable stage record ({type(e).__name__}: {e})") from None
        if not isinstance(rec, dict):
            raise DamagedFile(path, "not a readable stage record (not a JSON object)")
        return rec

    def check(self, stage: Stage, names: tuple[str, ...]) -> list[tuple[Path, str]]:
        """The files among ``names`` of a done stage that are missing or differ from what was
        written (sizes and checksums are in its ``done`` file; a ``done`` written before they were
        recorded checks existence, and that record.json parses): [(path, problem)]."""
        d = self.dir(stage)
        try:
            info = read_json(d / "done")
        except (OSError, ValueError):
            info = None
        if not isinstance(info, dict):
            return [(d / "done", "unreadable")]
        files = info.get("files") or {}
        bad = [(d / n, why) for n in names if (why := digest_problem(d / n, files.get(n))) is not None]
        if "record.json" in names and "record.json" not in files and not bad:
            try:
                self.record(stage)
            except DamagedFile as e:
                bad.append((e.path, e.problem))
        return bad

    def undo(self, stage: Stage, path: Path, problem: str) -> None:
        """Mark a done stage as not done because ``path`` is damaged, saying so in one line; it
        then runs again like any unfinished stage."""
        with contextlib.suppress(FileNotFoundError):
            (self.dir(stage) / "done").unlink()
        print(f"warning: {path}: {problem}; {stage.label} is marked not done and runs again",
              file=sys.stderr, flush=True)

    def failure(self, stage: Stage) -> dict | None:
        p = self.dir(stage) / "failed.json"
        try:
            info = read_json(p)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            info = None
        return info if isinstance(info, dict) and "error" in info else {"error": f"{p}: unreadable failure record"}

    def begin(self, stage: Stage) -> Path:
        """Prepare a stage's folder for (re)running: spec written, stale temporary files removed."""
        d = self.dir(stage)
        d.mkdir(parents=True, exist_ok=True)
        for tmp in d.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not (d / "spec.json").is_file():
            atomic_write_json(d / "spec.json", {"label": stage.label, **stage.spec})
        return d

    def finish(self, stage: Stage, record: dict) -> None:
        d = self.dir(stage)
        text = _json_bytes({"label": stage.label, "key": stage.key, **record})
        atomic_write_bytes(d / "record.json", text)
        files = {"record.json": digest(text)}
        for name in ("model.pt", "examples.npz"):  # written moments ago by this process
            if (d / name).is_file():
                files[name] = file_digest(d / name)
        atomic_write_json(d / "done", {"time": _now(), "host": HOST, "pid": os.getpid(), "files": files})
        for name in ("checkpoint.pt", "checkpoint.json", "failed.json"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        self.log(stage, "done")

    def fail(self, stage: Stage, error: BaseException) -> None:
        d = self.dir(stage)
        d.mkdir(parents=True, exist_ok=True)
        msg = f"{type(error).__name__}: {error}"
        atomic_write_json(d / "failed.json", {"error": msg, "time": _now(), "host": HOST, "pid": os.getpid()})
        self.log(stage, "failed", error=msg)

    def log(self, stage: Stage, event: str, **fields) -> None:
        """Append to the stage's log.jsonl and, for lifecycle events, to executions.jsonl."""
        line = {"time": _now(), "event": event, **fields}
        _append(self.dir(stage) / "log.jsonl", line)
        if event in ("start", "resume", "done", "failed", "interrupted"):
            _append(self.root / "executions.jsonl", {
                **line, "kind": stage.kind, "key": stage.key, "label": stage.label,
                "pid": os.getpid(), "host": HOST})

    def executions(self) -> list[dict]:
        p = self.root / "executions.jsonl"
        if not p.is_file():
            return []
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]

    # -- claims ---------------------------------------------------------------------------
    def claim_path(self, stage: Stage) -> Path:
        return self.root / "claims" / f"{stage.kind}-{stage.key}.claim"

    def try_claim(self, stage: Stage, timeout: float, shard: str = "") -> bool:
        path = self.claim_path(stage)
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

    def claim_state(self, stage: Stage, timeout: float) -> str | None:
        """None (no claim), 'live' or 'stale'."""
        path = self.claim_path(stage)
        if not path.exists():
            return None
        return "stale" if _claim_is_stale(path, timeout) else "live"

    def release(self, stage: Stage) -> None:
        path = self.claim_path(stage)
        info = _read_claim(path)
        if info is not None and info.get("pid") == os.getpid() and info.get("host") == HOST:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def heartbeat(self, stage: Stage) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.claim_path(stage))

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


def _append(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@contextlib.contextmanager
def root_lock(store: Store):
    """An exclusive lock held by every writer of files directly in the experiment folder
    (config.toml, results.nc, examples.npz), so that while it is held any temporary file there is
    a killed process's leftover."""
    store.root.mkdir(parents=True, exist_ok=True)
    with locked(store.root / ".lock"):
        yield


def adopt_finished(stages: Iterable[Stage], store: Store, base: Store) -> int:
    """Hard-link (or copy) into ``store`` each of ``stages`` finished in ``base`` (for a ``--set`` run: the
    folder of the config without overrides; same key, same stage). Returns how many were adopted."""

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    n = 0
    for stage in stages:
        src, dst = base.dir(stage), store.dir(stage)
        if store.is_done(stage) or not base.is_done(stage) or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".tmp-adopt-{stage.key}-{os.getpid()}"
        shutil.copytree(src, tmp, copy_function=link, ignore=shutil.ignore_patterns(".tmp-*", "checkpoint.pt"))
        try:
            os.rename(tmp, dst)
            n += 1
        except OSError:  # another job adopted it first
            shutil.rmtree(tmp, ignore_errors=True)
    return n


def largest_pretrain_model(root: Path) -> Path | None:
    """``model.pt`` of the finished pre-training stage with the most images (smallest seed on a tie)
    in the experiment folder ``root`` (the folder holding ``results.nc``); None when there is none."""
    best = None
    for rec_path in sorted(Path(root).glob("stages/pretrain/*/record.json")):
        model = rec_path.parent / "model.pt"
        if not (rec_path.parent / "done").is_file() or not model.is_file():
            continue
        rec = read_json(rec_path)
        rank = (int(rec["pretrain"]), -int(rec["seed"]))
        if best is None or rank > best[0]:
            best = (rank, model)
    return None if best is None else best[1]
