"""Sharing the grid's units of work among runners, without torch: which job owns which unit
(``--shard k/N`` deals them round-robin per kind in plan order, :func:`owners`), the next unit a job
may claim (:func:`pick`: one whose upstream is finished, its own first), a unit's state as
``--status`` reports it (:func:`unit_state`), the check of finished stages' files before any work
(:func:`verify_finished`), and :class:`RunOptions`, a ``--all`` run's options, parsed once from the
command line by :mod:`.cli` and written back as a ``--jobs`` worker's command line by
:meth:`RunOptions.argv`. Running the claimed units is :mod:`.launch`'s.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from ..config import RuntimeConfig
from .kinds import KINDS
from .plan import Plan, Stage, deps
from .store import Store

WAIT, DONE = "wait", "done"


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise SystemExit(f"--shard {text!r}: need N >= 1 and 0 <= K < N")
    return k, n


@dataclass(frozen=True)
class RunOptions:
    """What one ``--all`` run was asked to do: the experiment (config file and ``--set``
    overrides), the switches that do not change results, this job's share of the grid (``shard``
    of ``shards``), ``jobs`` local workers, the waiting and claim times, and whether to assemble
    results.nc at the end (``--jobs`` workers leave that to their parent)."""

    config: str
    overrides: tuple[str, ...] = ()
    rt: RuntimeConfig = RuntimeConfig()
    shard: int = 0
    shards: int = 1
    jobs: int = 1
    poll: float = 5.0
    claim_timeout: float = 1800.0
    assemble: bool = True
    resume_command: str | None = None  # what a stopped run says to rerun (a --jobs worker: its parent's command)
    gpu_share: int = 1  # processes sharing this process's GPU (they split its memory for caches)

    @property
    def shard_label(self) -> str:
        """``K/N``, as ``--shard`` takes it and claims record it."""
        return f"{self.shard}/{self.shards}"

    def worker(self, i: int, resume_command: str | None = None, gpu_share: int = 1) -> RunOptions:
        """Worker ``i`` of ``--jobs``: shard ``K*J + i`` of ``N*J``, no progress bars, no assembly;
        ``resume_command`` is the parent's command, ``gpu_share`` the workers on its GPU."""
        return dataclasses.replace(self, shard=self.shard * self.jobs + i, shards=self.shards * self.jobs,
                                   jobs=1, assemble=False, rt=dataclasses.replace(self.rt, progress=False),
                                   resume_command=resume_command, gpu_share=gpu_share)

    def argv(self) -> list[str]:
        """The ``python -m diminish.run`` arguments that give these options back."""
        rt = self.rt
        out = ["--config", self.config, *(a for o in self.overrides for a in ("--set", o)), "--all",
               "--out", str(rt.out_dir), "--cache-dir", str(rt.cache_dir),
               "--shard", self.shard_label, "--jobs", str(self.jobs),
               "--poll", repr(self.poll), "--claim-timeout", repr(self.claim_timeout)]
        flags = {"--save-models": rt.save_models, "--no-progress": not rt.progress,
                 "--deterministic": rt.deterministic, "--compile": rt.compile, "--no-assemble": not self.assemble}
        out += [f for f, on in flags.items() if on]
        if rt.mixed_precision is not None:
            out += ["--mixed-precision", rt.mixed_precision]
        if rt.checkpoint_every is not None:
            out += ["--checkpoint-every", repr(rt.checkpoint_every)]
        if rt.resident != "auto":
            out += ["--resident", rt.resident]
        if rt.sync_every is not None:
            out += ["--sync-every", str(rt.sync_every)]
        if rt.adamw != "auto":
            out += ["--adamw", rt.adamw]
        if rt.dist_timeout is not None:
            out += ["--dist-timeout", repr(rt.dist_timeout)]
        if self.resume_command is not None:
            out += ["--resume-command", self.resume_command]
        if self.gpu_share != 1:
            out += ["--gpu-share", str(self.gpu_share)]
        return out


def verify_finished(plan: Plan, store: Store) -> int:
    """Check the files of every finished stage against the sizes and checksums recorded when they
    were written; a stage with a missing or damaged file is marked not done (one line each), so
    it runs again. Returns how many were."""
    n = 0
    for kind in KINDS.values():  # fine-tuned weights are checked when used: they go once their cell is scored
        for s in plan.stages(kind.name):
            if store.is_done(s) and (bad := store.check(s, kind.needed)):
                store.undo(s, *bad[0])
                n += 1
    return n


def owners(units: list[Stage], n: int) -> dict[str, int]:
    count: Counter = Counter()
    out = {}
    for u in units:
        out[u.key] = count[u.kind] % n
        count[u.kind] += 1
    return out


def unit_state(store: Store, unit: Stage, timeout: float) -> str:
    if store.is_done(unit):
        return "done"
    claim = store.claims.state(unit, timeout)
    if claim == "live":
        return "running"
    return "failed" if store.failure(unit) else "pending"


def pick(store: Store, order: list[Stage], index: dict[str, int], timeout: float, shard: str):
    """Index of a unit this job has claimed, (WAIT, label of what it waits for) or DONE."""
    remaining = [u for u in order if not store.is_done(u)]
    if not remaining:
        return DONE
    blocked_by = None
    for u in remaining:
        pending = [d for d in deps(u) if not store.is_done(d)]
        if pending:
            blocked_by = blocked_by or pending[0]
            continue
        if store.claims.take(u, timeout, shard):
            if store.is_done(u):  # finished by another job between our look and our claim
                store.claims.release(u)
                continue
            return index[u.key]
    return (WAIT, (blocked_by or remaining[0]).label)


