"""The experiment folder ``<out>/<name>/`` and the lifecycle of its stages.

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

Every file is written atomically (:mod:`.atomic`). Lifecycle events of every stage are also
appended to ``<out>/<name>/executions.jsonl``; claims live in ``claims/`` (:mod:`.claims`). Files
directly in the experiment folder (config.toml, results.nc, examples.npz) are written while
holding :func:`root_lock`.

A store knows which process it serves (:meth:`Store.ranked`): off the main process every write is
skipped, so the stages call it alike on every rank. :meth:`Store.running` is a stage's lifecycle:
begin, then finish with the record the block sets, or record the failure; a stage that was
interrupted, whose upstream was found damaged, or that was stopped by Ctrl-C is not failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..locks import locked
from .atomic import append_line, atomic_write_bytes, atomic_write_json, json_bytes, now, read_json
from .claims import HOST, Claims
from .digests import DamagedFile, UpstreamDamaged, digest, digest_problem, file_digest
from .plan import Stage

LIFECYCLE = ("start", "resume", "done", "failed", "interrupted")


class StageInterrupted(Exception):
    """A stop was requested; the stage saved its progress."""

    def __init__(self, stage: Stage, epoch: int, step: int, where: Path) -> None:
        super().__init__(f"interrupted in {stage.label} at epoch {epoch}, step {step}; "
                         f"progress saved in {where}")
        self.stage = stage


@dataclass
class Running:
    """The stage a :meth:`Store.running` block runs; the block sets ``record`` before it ends."""

    stage: Stage
    record: dict | None = field(default=None)


def _no_barrier() -> None:
    pass


class Store:
    """Files of one experiment: ``<out_dir>/<name>/``, as seen by one process."""

    def __init__(self, root: Path, is_main: bool = True, barrier: Callable[[], None] = _no_barrier) -> None:
        self.root = Path(root)
        self.is_main, self.barrier = is_main, barrier
        self.claims = Claims(self.root / "claims")

    def ranked(self, is_main: bool, barrier: Callable[[], None]) -> Store:
        """This store for one process of a multi-process run: writes only on the main process,
        ``barrier`` (all processes wait) at the end of every :meth:`running` block."""
        return Store(self.root, is_main, barrier)

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

    def failure(self, stage: Stage) -> dict | None:
        p = self.dir(stage) / "failed.json"
        try:
            info = read_json(p)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            info = None
        return info if isinstance(info, dict) and "error" in info else {"error": f"{p}: unreadable failure record"}

    def executions(self) -> list[dict]:
        return _read_lines(self.root / "executions.jsonl")

    # -- writes (main process only) -----------------------------------------------------------
    def undo(self, stage: Stage, path: Path, problem: str) -> None:
        """Mark a done stage as not done because ``path`` is damaged, saying so in one line; it
        then runs again like any unfinished stage."""
        if not self.is_main:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.dir(stage) / "done").unlink()
        print(f"warning: {path}: {problem}; {stage.label} is marked not done and runs again",
              file=sys.stderr, flush=True)

    def begin(self, stage: Stage) -> Path:
        """Prepare a stage's folder for (re)running: not done, spec written, stale temporary files
        removed; returns the folder."""
        d = self.dir(stage)
        if not self.is_main:
            return d
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (d / "done").unlink()  # a stage that runs again (its weights were gone) is not done meanwhile
        for tmp in d.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not (d / "spec.json").is_file():
            atomic_write_json(d / "spec.json", {"label": stage.label, **stage.spec})
        return d

    def finish(self, stage: Stage, record: dict) -> None:
        if not self.is_main:
            return
        d = self.dir(stage)
        text = json_bytes({"label": stage.label, "key": stage.key, **record})
        atomic_write_bytes(d / "record.json", text)
        files = {"record.json": digest(text)}
        for name in ("model.pt", "examples.npz"):  # written moments ago by this process
            if (d / name).is_file():
                files[name] = file_digest(d / name)
        atomic_write_json(d / "done", {"time": now(), "host": HOST, "pid": os.getpid(), "files": files})
        for name in ("checkpoint.pt", "checkpoint.json", "failed.json"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        self.log(stage, "done")

    def fail(self, stage: Stage, error: BaseException) -> None:
        if not self.is_main:
            return
        d = self.dir(stage)
        d.mkdir(parents=True, exist_ok=True)
        msg = f"{type(error).__name__}: {error}"
        atomic_write_json(d / "failed.json", {"error": msg, "time": now(), "host": HOST, "pid": os.getpid()})
        self.log(stage, "failed", error=msg)

    def log(self, stage: Stage, event: str, **fields) -> None:
        """Append to the stage's log.jsonl and, for lifecycle events, to executions.jsonl."""
        if not self.is_main:
            return
        line = {"time": now(), "event": event, **fields}
        append_line(self.dir(stage) / "log.jsonl", line)
        if event in LIFECYCLE:
            append_line(self.root / "executions.jsonl", {
                **line, "kind": stage.kind, "key": stage.key, "label": stage.label,
                "pid": os.getpid(), "host": HOST})

    @contextlib.contextmanager
    def running(self, stage: Stage):
        """Run ``stage`` inside the block: begin; at the end, finish with the ``record`` the block
        set on the yielded :class:`Running`, then wait for every process. An exception records the
        stage as failed - unless it was interrupted (progress saved), stopped by Ctrl-C, or found
        its upstream damaged (that stage is marked not done and reruns; this one is not to blame)."""
        run = Running(stage)
        self.begin(stage)
        try:
            yield run
        except (StageInterrupted, KeyboardInterrupt):
            raise
        except UpstreamDamaged as e:
            self.undo(e.stage, e.path, e.problem)
            raise
        except BaseException as e:
            with contextlib.suppress(OSError):  # e.g. a full disk must not hide the original error
                self.fail(stage, e)
            raise
        if run.record is None:
            raise RuntimeError(f"{stage.label}: the stage ended without a record")
        self.finish(stage, run.record)
        self.barrier()


def _read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@contextlib.contextmanager
def root_lock(store: Store):
    """An exclusive lock held by every writer of files directly in the experiment folder
    (config.toml, results.nc, examples.npz), so that while it is held any temporary file there is
    a killed process's leftover."""
    store.root.mkdir(parents=True, exist_ok=True)
    with locked(store.root / ".lock"):
        yield
