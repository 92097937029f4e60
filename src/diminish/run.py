"""Run the study grid: ``python -m diminish.run --config experiments/demo.toml --all``.

Also under Accelerate (one GPU, several GPUs, several nodes)::

    accelerate launch -m diminish.run --config experiments/paper.toml --all

What it does, in order: build the plan (every stage and its key, :mod:`diminish.stages`); skip
what is finished; check that the datasets the remaining stages need exist (naming any missing
folder and the expected layout) and prepare their caches; then repeatedly claim a unit of work
whose upstream is finished (a pre-training, an intermediate stage, or a cell: fine-tune +
evaluate), run it and release it, until the grid is done; finally assemble
``<out>/<name>/results.nc`` and ``examples.npz``.

``--shard k/N`` (k = 0 .. N-1) lets N jobs share one output folder: each job first takes the
units dealt to it (round-robin in plan order), then helps with any unclaimed unit; claims make
sure no stage runs twice; a job whose next units wait on another job's stage polls until it is done.

Exit status: 0 when the grid is complete, 1 on an error (the failed stage is recorded and
named), 128 + signal number after SIGINT/SIGTERM (progress saved; the message says how to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from . import __version__
from .config import ConfigError, RuntimeConfig, load
from .stages import (
    INTEL_TRAIN_IMAGES,
    KINDS,
    Plan,
    Stage,
    StageInterrupted,
    Store,
    atomic_write_bytes,
    build_plan,
    image_steps,
)

NEEDS = {"pretrain": "imagenet", "intermediate": "intel", "evaluate": "pets"}
WAIT, DONE = "wait", "done"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m diminish.run",
        description="Run the study grid (pretrain -> intermediate -> finetune -> evaluate) with reuse, "
        "resume and sharding, and assemble results.nc.",
    )
    p.add_argument("--config", default="experiments/paper.toml", help="experiment TOML (default: %(default)s)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="run every unfinished stage of the grid")
    what.add_argument("--dry-run", action="store_true", help="print the plan (stages to run/reuse, image-steps); needs no data")
    what.add_argument("--status", action="store_true", help="print done/running/pending/failed counts of the grid")
    p.add_argument("--shard", default="0/1", metavar="K/N", help="this job's share of the work among N jobs (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="run J worker processes on this machine, each a shard with cores/J threads "
                        "(one GPU each when there are J GPUs); default: %(default)s")
    p.add_argument("--no-assemble", action="store_true", help=argparse.SUPPRESS)  # --jobs workers
    p.add_argument("--out", default="results", help="output root; results go to OUT/<name>/ (default: %(default)s)")
    p.add_argument("--cache-dir", default="cache", help="preprocessed dataset caches (default: %(default)s)")
    p.add_argument("--save-models", action="store_true", help="keep the fine-tuned weights (OUT/<name>/models/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per finished stage)")
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms (slower on GPU)")
    p.add_argument("--checkpoint-every", type=float, default=None, metavar="S",
                   help="write an epoch-end checkpoint only when S seconds have passed since the last one; "
                        "0: after every epoch (default: 0 on CPUs, 30 on GPUs)")
    p.add_argument("--claim-timeout", type=float, default=1800.0, metavar="S",
                   help="a claim untouched for S seconds counts as abandoned (default: %(default)s)")
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between checks while waiting on another job")
    return p.parse_args(argv)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise SystemExit(f"--shard {text!r}: need N >= 1 and 0 <= K < N")
    return k, n


# -- units of work ----------------------------------------------------------------------------
def units_of(plan: Plan) -> list[Stage]:
    """Pre-training (largest first), intermediate, then the cells (their evaluate stages)."""
    pre = sorted(plan.stages("pretrain"), key=lambda s: (-s.pretrain, s.seed))
    return pre + plan.stages("intermediate") + plan.stages("evaluate")


def deps(unit: Stage) -> list[Stage]:
    up = unit.upstream.upstream if unit.kind == "evaluate" else unit.upstream
    return [up] if up is not None else []


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


# -- dry run and status -----------------------------------------------------------------------
def intel_size(cfg) -> tuple[int, str]:
    """Intel training images for the plan: counted in the folder if present, else the published size."""
    root = Path(cfg.data.intel_root)
    for cand in (root / "seg_train" / "seg_train", root / "seg_train"):
        if cand.is_dir():
            n = sum(1 for f in cand.glob("*/*") if f.is_file() and not f.name.startswith("."))
            if n:
                n = min(n, cfg.data.limit) if cfg.data.limit else n
                return n, f"counted in {cand}"
    return INTEL_TRAIN_IMAGES, "assumed: the published archive's seg_train (folder absent)"


def print_plan(plan: Plan, store: Store, cfg_path: str) -> None:
    cfg = plan.cfg
    n_intel, how = intel_size(cfg)
    print(f"plan for {cfg_path}: {cfg.name} (config {cfg.hash}) -> {store.root}")
    print(f"grid: pretrain {list(cfg.pretrain.sizes)} x intermediate {list(cfg.intermediate.conditions)} x "
          f"finetune {list(cfg.finetune.sizes)} x seeds {list(cfg.seeds)}")
    print(f"{'stage':<13}{'total':>7}{'reuse':>7}{'run':>7}{'image-steps to run':>22}  per stage")
    per = {"pretrain": f"P x {cfg.pretrain.epochs} epochs, batch {cfg.pretrain.batch_size}",
           "intermediate": f"{n_intel:,} Intel images x {cfg.intermediate.epochs} epochs, batch "
                           f"{cfg.intermediate.batch_size} ({how})",
           "finetune": f"F x {cfg.finetune.epochs} epochs, batch {cfg.finetune.batch_size}",
           "evaluate": f"{cfg.finetune.test_size:,} test images, forward only"}
    total = 0
    for kind in KINDS:
        stages = plan.stages(kind)
        todo = [s for s in stages if not store.is_done(s)]
        steps = sum(image_steps(s, cfg, n_intel) for s in todo)
        if kind != "evaluate":
            total += steps
        print(f"{kind:<13}{len(stages):>7}{len(stages) - len(todo):>7}{len(todo):>7}{steps:>22,}  {per[kind]}")
    print(f"training image-steps to run: {total:,}")


def print_status(plan: Plan, store: Store, timeout: float) -> dict:
    counts = {k: Counter() for k in KINDS}
    for kind in KINDS:
        for s in plan.stages(kind):
            if kind == "finetune" and not store.is_done(s):  # runs under its cell's claim
                cell = unit_state(store, plan.evaluate[s.cell], timeout)
                state = "running" if cell == "running" else ("failed" if store.failure(s) else "pending")
            else:
                state = unit_state(store, s, timeout)
            counts[kind][state] += 1
    print(f"{plan.cfg.name}: {store.root}")
    print(f"{'stage':<13}{'done':>7}{'running':>9}{'pending':>9}{'failed':>8}")
    for kind in KINDS:
        c = counts[kind]
        print(f"{kind:<13}{c['done']:>7}{c['running']:>9}{c['pending']:>9}{c['failed']:>8}")
    cfg = plan.cfg
    print("cells done (of seeds), by pretrain P, intermediate I and finetune size:")
    print(f"{'P':>9} {'I':>2} " + "".join(f"{f:>8}" for f in cfg.finetune.sizes))
    for p in cfg.pretrain.sizes:
        for i in sorted(cfg.intermediate.conditions):
            row = [sum(store.is_done(plan.evaluate[p, i, f, s]) for s in cfg.seeds) for f in cfg.finetune.sizes]
            print(f"{p:>9} {int(i):>2} " + "".join(f"{f'{n}/{len(cfg.seeds)}':>8}" for n in row))
    for kind in KINDS:
        for s in plan.stages(kind):
            fail = store.failure(s)
            if fail and not store.is_done(s):
                print(f"failed: {s.label}: {fail['error']}")
    return counts


# -- checks before any work -------------------------------------------------------------------
def check_data(cfg, needed: set[str]) -> None:
    """Fail at once, naming every missing dataset folder and its expected layout."""
    from .data.readers import DataMissingError, imagenet_train_dir, intel_split_dir, pets_root

    find = {"pets": pets_root, "intel": intel_split_dir, "imagenet": imagenet_train_dir}
    problems = []
    for name in ("imagenet", "intel", "pets"):
        if name in needed:
            try:
                find[name](getattr(cfg.data, f"{name}_root"))
            except DataMissingError as e:
                problems.append(f"  data.{name}_root: {e}")
    if problems:
        raise SystemExit("missing datasets (set the roots in the config's [data] table):\n" + "\n".join(problems))


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
    from .data.splits import finetune_subset, pets_split, pretrain_subset

    cfg = plan.cfg
    try:
        if any(u.kind == "pretrain" for u in todo):
            pretrain_subset(len(ctx.cache("imagenet")), max(cfg.pretrain.sizes), cfg.pretrain.data_seed)
        if any(u.kind == "evaluate" for u in todo):
            _, pool = pets_split(len(ctx.cache("pets")), cfg.finetune.test_size, cfg.finetune.split_seed)
            finetune_subset(pool, max(cfg.finetune.sizes), cfg.seeds[0])
    except ValueError as e:
        raise SystemExit(f"config {cfg.name}: {e}") from None


# -- the run ----------------------------------------------------------------------------------
def make_accelerator(cfg, store: Store, rt: RuntimeConfig):
    import torch
    from accelerate import Accelerator

    kw = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        kw["cpu"] = True  # several processes on CPUs (torchrun/accelerate launch): DDP over gloo
    trackers = [t for t in cfg.trackers if _tracker_available(t)]
    if trackers:
        kw.update(log_with=trackers, project_dir=str(store.root / "trackers"))
    return Accelerator(**kw)


def _tracker_available(name: str) -> bool:
    import importlib.util

    module = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "aim": "aim",
              "comet_ml": "comet_ml", "clearml": "clearml", "dvclive": "dvclive"}.get(name, name)
    if importlib.util.find_spec(module) is None and not (name == "tensorboard" and importlib.util.find_spec("tensorboardX")):
        print(f"tracker {name!r} is not installed; skipping it", file=sys.stderr)
        return False
    return True


class Trackers:
    """Per-stage runs on Accelerate's trackers (one project per stage)."""

    def __init__(self, acc) -> None:
        self.acc, self.active = acc, None

    def log(self, stage: Stage, values: dict, step: int) -> None:
        if self.active != stage.key:
            if self.active is not None:
                self.acc.end_training()
            self.acc.init_trackers(f"{stage.kind}-{stage.key}", config=_flat(stage.spec))
            self.active = stage.key
        self.acc.log(values, step=step)

    def close(self) -> None:
        if self.active is not None:
            self.acc.end_training()
            self.active = None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def run_all(args: argparse.Namespace, cfg, plan: Plan, store: Store, rt: RuntimeConfig) -> int:
    import torch

    from . import engine, stages

    k, n = parse_shard(args.shard)
    units = units_of(plan)
    todo = [u for u in units if not store.is_done(u)]
    acc = None
    if todo:
        check_data(cfg, {NEEDS[u.kind] for u in todo})
        check_writable(store.root)
        if rt.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        acc = make_accelerator(cfg, store, rt)
        stop = engine.StopRequest().install()
        try:
            ctx = stages.Context(cfg, rt, store, acc, stop=stop, fault=engine.Fault.from_env(),
                                 claim_timeout=args.claim_timeout)
            if cfg.trackers and acc.is_main_process and acc.log_with:
                ctx.trackers = Trackers(acc)
            for name in sorted({NEEDS[u.kind] for u in todo}):
                ctx.cache(name)
            check_sizes(ctx, plan, todo)
            if acc.is_main_process:
                with root_lock(store):
                    atomic_write_bytes(store.root / "config.toml", cfg.source_text.encode())
            code = schedule(ctx, plan, units, owners(units, n), f"{k}/{n}", args)
            if ctx.trackers is not None:
                ctx.trackers.close()
        finally:
            stop.restore()
        if code:
            return code
    main = acc.is_main_process if acc is not None else int(os.environ.get("RANK", "0")) == 0
    if main and not args.no_assemble:
        _finish(plan, store, rt, args.claim_timeout)
    return 0


def _finish(plan: Plan, store: Store, rt: RuntimeConfig, claim_timeout: float = 1800.0) -> None:
    with root_lock(store):
        tidy(plan, store, rt, claim_timeout)
        path = assemble(plan, store, rt)
    missing = [u for u in units_of(plan) if not store.is_done(u)]
    say = f"{path}" + (f" ({len(missing)} units not finished)" if missing else " (grid complete)")
    print(f"results: {say}", flush=True)


def schedule(ctx, plan: Plan, units: list[Stage], owner: dict[str, int], shard: str, args) -> int:
    """Claim and run units until none is left; returns the exit status."""
    from accelerate.utils import broadcast_object_list

    from .engine import agree
    from .stages import execute

    store, acc, me = ctx.store, ctx.acc, int(shard.split("/")[0])
    index = {u.key: i for i, u in enumerate(units)}
    order = sorted(units, key=lambda u: (owner[u.key] != me, index[u.key]))
    ran, waited_on = 0, None
    total = len(units)
    while True:
        choice: list = [None]
        if acc.is_main_process:
            choice[0] = pick(store, order, index, ctx.claim_timeout, shard)
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
            time.sleep(args.poll)
            continue
        unit, waited_on = units[c], None
        t0 = time.perf_counter()
        try:
            record = execute(ctx, plan, unit)
        except StageInterrupted as e:
            if acc.is_main_process:
                store.release(unit)
            return _stopped(ctx, str(e))
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


def run_jobs(args: argparse.Namespace, argv: list[str], plan: Plan, store: Store, rt: RuntimeConfig) -> int:
    """``--jobs J``: J local worker processes, each ``--shard``, sharing the output folder."""
    import signal

    j = args.jobs
    k, n = parse_shard(args.shard)
    rest, skip = [], False
    for a in argv:  # drop --jobs/--shard (and their values) from the children's arguments
        if skip:
            skip = False
            continue
        if a in ("--jobs", "--shard"):
            skip = True
            continue
        if not a.startswith(("--jobs=", "--shard=")):
            rest.append(a)
    threads = max(1, (os.cpu_count() or 1) // j)
    gpus = _cuda_count()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "DIMINISH_RESUME_CMD": "python -m diminish.run " + " ".join(shlex.quote(a) for a in argv)}
    kids = []
    for i in range(j):
        e = dict(env)
        if gpus >= j:
            e["CUDA_VISIBLE_DEVICES"] = str(i)
        cmd = [sys.executable, "-m", "diminish.run", *rest, "--no-progress", "--no-assemble",
               "--shard", f"{k * j + i}/{n * j}"]
        kids.append(subprocess.Popen(cmd, env=e))
    print(f"{j} worker processes ({threads} CPU threads each{', one GPU each' if gpus >= j else ''}): "
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
    _finish(plan, store, rt, args.claim_timeout)
    return 0


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPUs to hand out
        return 0


# -- results ----------------------------------------------------------------------------------
@contextlib.contextmanager
def root_lock(store: Store):
    """An exclusive lock held by every writer of files directly in the experiment folder
    (config.toml, results.nc, examples.npz), so that while it is held any temporary file there is
    a killed process's leftover."""
    import fcntl

    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tidy(plan: Plan, store: Store, rt: RuntimeConfig, claim_timeout: float) -> None:
    """Remove what killed processes left behind (call holding :func:`root_lock`): temporary files
    in the experiment folder, claims on finished units whose owner is gone, and the weights of
    evaluated cells that a kill kept from being deleted (without --save-models)."""
    for tmp in store.root.glob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            tmp.unlink()
    for unit in units_of(plan):
        if store.is_done(unit) and store.claim_state(unit, claim_timeout) == "stale":
            with contextlib.suppress(FileNotFoundError):
                store.claim_path(unit).unlink()
    if not rt.save_models:
        for unit in plan.stages("evaluate"):
            if store.is_done(unit):
                with contextlib.suppress(FileNotFoundError):
                    (store.dir(unit.upstream) / "model.pt").unlink()


def assemble(plan: Plan, store: Store, rt: RuntimeConfig) -> Path:
    """results.nc (and examples.npz) from every finished record; NaN where a cell is not done."""
    import shutil

    from . import results

    cfg = plan.cfg
    done = {k: [s for s in plan.stages(k) if store.is_done(s)] for k in KINDS}
    recs = {k: [store.record(s) for s in v] for k, v in done.items()}
    attrs = provenance(cfg, rt, recs)
    ds = results.from_records(cfg.pretrain.sizes, cfg.intermediate.conditions, cfg.finetune.sizes, cfg.seeds,
                              recs["evaluate"], recs["pretrain"], recs["intermediate"], attrs)
    path = results.write_results(ds, store.root / "results.nc")
    ex = plan.evaluate.get(plan.examples_cell)
    if ex is not None and (store.dir(ex) / "examples.npz").is_file():
        tmp = store.root / f".tmp-examples-{os.getpid()}.npz"
        shutil.copyfile(store.dir(ex) / "examples.npz", tmp)
        os.replace(tmp, store.root / "examples.npz")
    return path


def provenance(cfg, rt: RuntimeConfig, recs: dict) -> dict:
    import accelerate
    import torch

    def joined(values) -> str:
        vals = sorted({str(v) for v in values if v})
        return ",".join(vals) if vals else "none"

    inter = recs["intermediate"]
    return {
        "config_name": cfg.name, "config_hash": cfg.hash, "config_text": cfg.source_text,
        "description": cfg.description, "synthetic": int(cfg.synthetic),
        "package_version": __version__, "git_commit": git_commit(),
        "torch_version": torch.__version__, "accelerate_version": accelerate.__version__,
        "device": joined(r.get("device") for k in KINDS for r in recs[k]),
        "pets_root": str(Path(cfg.data.pets_root).resolve()),
        "intel_root": str(Path(cfg.data.intel_root).resolve()),
        "imagenet_root": str(Path(cfg.data.imagenet_root).resolve()),
        "cache_hash_pets": joined(r.get("cache_hash") for r in recs["evaluate"]),
        "cache_hash_intel": joined(r.get("cache_hash") for r in inter),
        "cache_hash_imagenet": joined(r.get("cache_hash") for r in recs["pretrain"]),
        "intermediate_accuracy_split": joined(r.get("accuracy_split") for r in inter),
        "batch_sizes": f"pretrain {cfg.pretrain.batch_size}, intermediate {cfg.intermediate.batch_size}, "
                       f"finetune {cfg.finetune.batch_size}",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rt = RuntimeConfig(out_dir=Path(args.out), cache_dir=Path(args.cache_dir), progress=not args.no_progress,
                       save_models=args.save_models, deterministic=args.deterministic,
                       checkpoint_every=args.checkpoint_every)
    plan = build_plan(cfg)
    store = Store(rt.out_dir / cfg.name)
    if args.dry_run:
        print_plan(plan, store, args.config)
        return 0
    if args.status:
        print_status(plan, store, args.claim_timeout)
        return 0
    if not args.all:
        print("nothing to do: give --all (run the grid), --dry-run or --status; see --help", file=sys.stderr)
        return 2
    parse_shard(args.shard)
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.jobs > 1:
        return run_jobs(args, list(sys.argv[1:] if argv is None else argv), plan, store, rt)
    return run_all(args, cfg, plan, store, rt)


def cli(argv: list[str] | None = None) -> int:
    """The command line: :func:`main`, with errors a user can fix (bad or missing data, a full or
    unwritable disk, a non-finite loss) reported as one message naming the file or stage and the
    problem, exit status 1, instead of a traceback. The failed stage is recorded (``--status``);
    rerunning the same command after fixing the cause resumes from its last checkpoint."""
    from .data.readers import DataError
    from .engine import NonFiniteLossError

    try:
        return main(argv)
    except (DataError, NonFiniteLossError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        print("nothing finished is lost; fix the cause and rerun the same command to resume "
              "(--status lists failed stages)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(cli())
