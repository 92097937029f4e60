"""Sharing the grid's units of work among runners: claim a unit whose upstream is finished, run
it, release it, until none is left (:func:`schedule`, :func:`pick`); ``--shard k/N`` deals the
units round-robin in plan order (:func:`owners`) so each job starts on its own share before it
helps with any unclaimed unit; ``--jobs J`` starts J local worker processes, each a shard
(:func:`run_jobs`). Claims (:mod:`diminish.store`) make sure no stage runs twice; a job whose
next units wait on another job's stage polls until it is done. Also a unit's state as ``--status``
reports it (:func:`unit_state`), the parsing of ``--shard`` (:func:`parse_shard`) and
:class:`RunOptions`, a ``--all`` run's options, parsed once from the command line by
:mod:`diminish.run` and written back as a worker's command line by :meth:`RunOptions.argv`.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

from .assemble import finish
from .config import RuntimeConfig
from .digests import UpstreamDamaged
from .plan import KINDS, Plan, Stage, deps
from .store import Store
from .training import StageInterrupted

WAIT, DONE = "wait", "done"
# The files of a finished stage that later work reads (fine-tuned weights are checked when used:
# they are deleted once their cell is evaluated).
NEEDED = {"pretrain": ("record.json", "model.pt"), "intermediate": ("record.json", "model.pt"),
          "finetune": ("record.json",), "evaluate": ("record.json",)}


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

    @property
    def shard_label(self) -> str:
        """``K/N``, as ``--shard`` takes it and claims record it."""
        return f"{self.shard}/{self.shards}"

    def worker(self, i: int) -> RunOptions:
        """Worker ``i`` of ``--jobs``: shard ``K*J + i`` of ``N*J``, no progress bars, no assembly."""
        return dataclasses.replace(self, shard=self.shard * self.jobs + i, shards=self.shards * self.jobs,
                                   jobs=1, assemble=False, rt=dataclasses.replace(self.rt, progress=False))

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
        return out


def verify_finished(plan: Plan, store: Store) -> int:
    """Check the files of every finished stage against the sizes and checksums recorded when they
    were written; a stage with a missing or damaged file is marked not done (one line each), so
    it runs again. Returns how many were."""
    n = 0
    for kind in KINDS:
        for s in plan.stages(kind):
            if store.is_done(s) and (bad := store.check(s, NEEDED[kind])):
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
    claim = store.claim_state(unit, timeout)
    if claim == "live":
        return "running"
    return "failed" if store.failure(unit) else "pending"


def schedule(ctx, plan: Plan, units: list[Stage], opts: RunOptions) -> int:
    """Claim and run units until none is left, this shard's own first; returns the exit status."""
    # accelerate and the modules that import torch (seconds) load when a grid trains: diminish.run
    # imports this module, and its --help, --dry-run and --status need neither
    from accelerate.utils import broadcast_object_list

    from .engine import agree
    from .stages import execute

    store, acc, owner = ctx.store, ctx.acc, owners(units, opts.shards)
    index = {u.key: i for i, u in enumerate(units)}
    order = sorted(units, key=lambda u: (owner[u.key] != opts.shard, index[u.key]))
    ran, waited_on = 0, None
    total = len(units)
    while True:
        choice: list = [None]
        if acc.is_main_process:
            choice[0] = pick(store, order, index, ctx.claim_timeout, opts.shard_label)
        if acc.num_processes > 1:
            broadcast_object_list(choice)
        c = choice[0]
        if agree(ctx.stop.requested, acc):  # collective: every process stops together
            if acc.is_main_process and isinstance(c, int):
                store.release(units[c])
            return _stopped(ctx, None)
        if c == DONE:
            return 0
        if isinstance(c, tuple):  # (WAIT, label)
            if acc.is_main_process and c[1] != waited_on:
                print(f"waiting for {c[1]} (another job is running it)", flush=True)
                waited_on = c[1]
            time.sleep(opts.poll)
            continue
        unit, waited_on = units[c], None
        t0 = time.perf_counter()
        try:
            record = execute(ctx, plan, unit)
        except StageInterrupted as e:
            if acc.is_main_process:
                store.release(unit)
            return _stopped(ctx, str(e))
        except UpstreamDamaged:  # marked not done (execute said which file); picked up again below
            if acc.is_main_process:
                store.release(unit)
            continue
        except KeyboardInterrupt:
            if acc.is_main_process:
                store.release(unit)
            print("aborted without saving the current step; rerun the same command to resume from the last "
                  "checkpoint", file=sys.stderr)
            return 130
        except BaseException:
            if acc.is_main_process:
                store.release(unit)
            raise
        if acc.is_main_process:
            store.release(unit)
            ran += 1
            done = sum(store.is_done(u) for u in units)
            print(f"[{done}/{total}] {unit.label}: {_summary(record)} ({time.perf_counter() - t0:.1f} s)", flush=True)


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
        if store.try_claim(u, timeout, shard):
            if store.is_done(u):  # finished by another job between our look and our claim
                store.release(u)
                continue
            return index[u.key]
    return (WAIT, (blocked_by or remaining[0]).label)


def _summary(rec: dict) -> str:
    if "miou" in rec:
        return f"mIoU {100 * rec['miou']:.2f}%, accuracy {100 * rec['accuracy']:.2f}%"
    if "accuracy" in rec:
        return f"Intel {rec['accuracy_split']} accuracy {100 * rec['accuracy']:.2f}%, loss {rec['final_loss']:.4f}"
    return f"final loss {rec['final_loss']:.4f}"


def _stopped(ctx, detail: str | None) -> int:
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    cmd = os.environ.get("DIMINISH_RESUME_CMD") or f"python -m diminish.run {argv}"
    msg = detail or "stopped between stages"
    if ctx.acc.is_main_process:
        print(f"\n{msg}.\nResume with the same command: {cmd}", file=sys.stderr, flush=True)
    return ctx.stop.exit_code


def run_jobs(opts: RunOptions, argv: list[str], plan: Plan, store: Store) -> int:
    """``--jobs J``: J local worker processes (:meth:`RunOptions.worker`) sharing the output
    folder; ``argv``, the command as typed, is what a stopped worker says to rerun."""
    j = opts.jobs
    threads = max(1, (os.cpu_count() or 1) // j)
    gpus = _cuda_count()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "DIMINISH_RESUME_CMD": "python -m diminish.run " + " ".join(shlex.quote(a) for a in argv)}
    kids = []
    for i in range(j):
        e = dict(env)
        if gpus:  # dealt round-robin: J > GPUs puts several small runs on each GPU at once
            e["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
            e["DIMINISH_WORKERS_PER_GPU"] = str(sum(1 for w in range(j) if w % gpus == i % gpus))
        cmd = [sys.executable, "-m", "diminish.run", *opts.worker(i).argv()]
        kids.append(subprocess.Popen(cmd, env=e))
    per_gpu = "" if not gpus else ", one GPU each" if gpus >= j else f", {-(-j // gpus)} at most per GPU"
    print(f"{j} worker processes ({threads} CPU threads each{per_gpu}): "
          f"pids {' '.join(str(p.pid) for p in kids)}", flush=True)

    def forward(signum, frame):  # noqa: ARG001
        for p in kids:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [p.wait() for p in kids]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    bad = [c for c in codes if c != 0]
    if bad:
        return max(bad) if all(c > 0 for c in bad) else 1
    finish(plan, store, opts.rt, opts.claim_timeout)
    return 0


def _cuda_count() -> int:
    try:  # imported here, as in run_all: --help, --dry-run and --status need no torch
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPUs to hand out
        return 0
