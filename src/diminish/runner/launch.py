"""The ``--all`` run, the runner's part that loads torch: the checks before any work, the accelerator
and the datasets (:func:`run_all`), the loop that claims and runs units (:func:`run_units`,
:func:`diminish.runner.stages.execute` for each), and ``--jobs`` worker processes (:func:`run_jobs`).
:mod:`.cli` imports this module only when a grid is to run, so that ``--help``, ``--dry-run`` and
``--status`` never load torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list

from ..clihelp import launcher_rank
from ..core import fastpath, loop
from ..data.readers import DataMissingError, imagenet_train_dir, intel_split_dir, pets_root
from ..data.splits import finetune_subset, pets_split, pretrain_subset
from ..host import usable_cores
from .accel import Trackers, make_accelerator
from .assemble import tidy_and_assemble
from .atomic import atomic_write_bytes
from .context import Context, Datasets, prepare_caches
from .digests import UpstreamDamaged
from .kinds import KINDS
from .plan import Plan, Stage, units_of
from .schedule import DONE, RunOptions, owners, pick, verify_finished
from .stages import execute
from .store import StageInterrupted, Store, root_lock

DEMO_HINT = ("to try the whole pipeline on synthetic data instead (minutes on a CPU): make demo, or\n"
             "  python -m diminish.data synth --out data/synth && "
             "python -m diminish.run --config experiments/demo.toml --all")


# -- checks before any work -------------------------------------------------------------------
def check_data(cfg, needed: set[str]) -> None:
    """Fail at once, naming every missing dataset folder and its expected layout."""
    find = {"pets": pets_root, "intel": intel_split_dir, "imagenet": imagenet_train_dir}
    problems = []
    for name in ("imagenet", "intel", "pets"):
        if name in needed:
            try:
                find[name](getattr(cfg.data, f"{name}_root"))
            except DataMissingError as e:
                problems.append(f"  data.{name}_root: {e}")
    if problems:
        raise SystemExit("missing datasets (set the roots in the config's [data] table):\n" + "\n".join(problems)
                         + "\n" + DEMO_HINT)


def check_writable(folder: Path) -> None:
    """Fail before any work when the output folder cannot be created or written to."""
    probe = folder / f".tmp-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink(missing_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"output folder is not writable ({e.strerror or e})", str(folder)) from None


def check_sizes(ctx, plan: Plan, todo: list[Stage]) -> None:
    """Every requested subset fits its pool (the split functions name both numbers)."""
    cfg = plan.cfg
    try:
        if any(u.kind == "pretrain" for u in todo):
            pretrain_subset(len(ctx.data.cache("imagenet")), max(cfg.pretrain.sizes), cfg.pretrain.data_seed)
        if any(u.kind == "evaluate" for u in todo):
            _, pool = pets_split(len(ctx.data.cache("pets")), cfg.finetune.test_size, cfg.finetune.split_seed)
            finetune_subset(pool, max(cfg.finetune.sizes), cfg.seeds[0])
    except ValueError as e:
        raise SystemExit(f"config {cfg.name}: {e}") from None


# -- the run ----------------------------------------------------------------------------------
def run_all(opts: RunOptions, cfg, plan: Plan, store: Store, step_hook=None) -> int:
    """The ``--all`` run in this process (one rank of several under a launcher): check, prepare
    the data, claim and run units until the grid is done, then assemble results.nc (the main
    process, unless ``opts.assemble`` is off). ``step_hook`` goes to every training step
    (:func:`diminish.core.loop.train_one_epoch`; the fault-injection harness's)."""
    rt = opts.rt
    units = units_of(plan)
    verify_finished(plan, store)
    todo = [u for u in units if not store.is_done(u)]
    acc = None
    if todo:
        needed = {KINDS[u.kind].dataset for u in todo} - {None}
        check_data(cfg, needed)
        check_writable(store.root)
        if rt.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        # the caches before the accelerator: no rank waits in a collective while another decodes images
        caches = prepare_caches(cfg, rt, needed, speaks=launcher_rank() == 0)
        acc = make_accelerator(cfg, store, rt)
        fastpath.setup_device(acc.device)  # CPU: keep freed buffers in the process; CUDA: TF32 matmuls
        stop = loop.StopRequest().install()
        try:
            trackers = Trackers(acc) if cfg.trackers and acc.is_main_process and acc.log_with else None
            ctx = Context(cfg, rt, store.ranked(acc.is_main_process, acc.wait_for_everyone), acc,
                          Datasets(cfg, rt, acc, opts.gpu_share, caches), stop=stop, trackers=trackers,
                          step_hook=step_hook, claim_timeout=opts.claim_timeout)
            check_sizes(ctx, plan, todo)
            if acc.is_main_process:
                with root_lock(store):
                    atomic_write_bytes(store.root / "config.toml", cfg.source_text.encode())
            code = run_units(ctx, plan, units, opts)
            if ctx.trackers is not None:
                ctx.trackers.close()
        finally:
            stop.restore()
        if code:
            return code
    main = acc.is_main_process if acc is not None else PartialState().is_main_process
    if main and opts.assemble:
        tidy_and_assemble(plan, store, rt, opts.claim_timeout)
    return 0


def run_units(ctx: Context, plan: Plan, units: list[Stage], opts: RunOptions) -> int:
    """Claim and run units until none is left, this shard's own first; returns the exit status.
    Under several processes the main one picks each unit and broadcasts it."""
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
        if loop.agree(ctx.stop.requested, acc):  # collective: every process stops together
            if acc.is_main_process and isinstance(c, int):
                store.claims.release(units[c])
            return _stopped(ctx, opts, None)
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
                store.claims.release(unit)
            return _stopped(ctx, opts, str(e))
        except UpstreamDamaged:  # marked not done (execute said which file); picked up again below
            if acc.is_main_process:
                store.claims.release(unit)
            continue
        except KeyboardInterrupt:
            if acc.is_main_process:
                store.claims.release(unit)
            print("aborted without saving the current step; rerun the same command to resume from the last "
                  "checkpoint", file=sys.stderr)
            return 130
        except BaseException:
            if acc.is_main_process:
                store.claims.release(unit)
            raise
        if acc.is_main_process:
            store.claims.release(unit)
            ran += 1
            done = sum(store.is_done(u) for u in units)
            print(f"[{done}/{total}] {unit.label}: {_summary(record)} ({time.perf_counter() - t0:.1f} s)", flush=True)


def _summary(rec: dict) -> str:
    if "miou" in rec:
        return f"mIoU {100 * rec['miou']:.2f}%, accuracy {100 * rec['accuracy']:.2f}%"
    if "accuracy" in rec:
        return f"Intel {rec['accuracy_split']} accuracy {100 * rec['accuracy']:.2f}%, loss {rec['final_loss']:.4f}"
    return f"final loss {rec['final_loss']:.4f}" if "final_loss" in rec else "done"


def _stopped(ctx: Context, opts: RunOptions, detail: str | None) -> int:
    msg = detail or "stopped between stages"
    if ctx.is_main:
        cmd = opts.resume_command or "the same command"
        print(f"\n{msg}.\nResume with the same command: {cmd}", file=sys.stderr, flush=True)
    return ctx.stop.exit_code


def visible_devices(environ, count: int) -> list[str]:
    """The GPUs this process may hand to its workers, as ``CUDA_VISIBLE_DEVICES`` names them: the
    parent's own list when it has one (SLURM without device cgroups gives e.g. ``2,3``; MIG
    devices are UUIDs), cut to the ``count`` devices torch sees, else ``0 .. count-1``."""
    mask = environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None or not mask.strip():
        return [str(i) for i in range(count)]
    names = [m.strip() for m in mask.split(",") if m.strip()]
    return names[:count] if count else []


def worker_devices(jobs: int, devices: list[str]) -> list[tuple[str | None, int]]:
    """(``CUDA_VISIBLE_DEVICES`` of worker i, workers sharing that GPU) for each of ``jobs``
    workers, dealt round-robin over ``devices`` (None and 1 each without GPUs)."""
    if not devices:
        return [(None, 1)] * jobs
    g = len(devices)
    return [(devices[i % g], sum(1 for w in range(jobs) if w % g == i % g)) for i in range(jobs)]


def run_jobs(opts: RunOptions, plan: Plan, store: Store) -> int:
    """``--jobs J``: J local worker processes (:meth:`RunOptions.worker`) sharing the output
    folder, each with cores/J threads (the cores of this process's affinity: SLURM's
    ``--cpus-per-task``); each GPU of this process's ``CUDA_VISIBLE_DEVICES`` list goes to the
    workers dealt to it. A stopped worker says to rerun the parent's command."""
    j = opts.jobs
    threads = max(1, usable_cores() // j)
    devices = visible_devices(os.environ, _cuda_count())
    gpus = len(devices)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    kids = []
    for i, (device, share) in enumerate(worker_devices(j, devices)):
        e = dict(env)
        if device is not None:  # J > GPUs puts several small runs on each GPU at once
            e["CUDA_VISIBLE_DEVICES"] = device
        cmd = [sys.executable, "-m", "diminish.run", *opts.worker(i, opts.resume_command, share).argv()]
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
    if opts.assemble:  # --no-assemble: the stages only (gpu_check's --jobs step, where netCDF4 may be absent)
        tidy_and_assemble(plan, store, opts.rt, opts.claim_timeout)
    return 0


def _cuda_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPUs to hand out
        return 0
