"""Run the study grid: ``python -m diminish.run --config experiments/demo.toml --all``.

Also under Accelerate (one GPU, several GPUs, several nodes)::

    accelerate launch -m diminish.run --config experiments/paper.toml --all

What it does, in order: build the plan (every stage and its key, :mod:`diminish.runner.plan`); skip
what is finished; check that the datasets the remaining stages need exist (naming any missing
folder and the expected layout) and prepare their caches; then repeatedly claim a unit of work
whose upstream is finished (a pre-training, an intermediate stage, or a cell: fine-tune +
evaluate), run it (:mod:`diminish.runner.stages`) and release it, until the grid is done
(:mod:`diminish.runner.schedule`); finally assemble ``<out>/<name>/results.nc`` and ``examples.npz``
(:mod:`diminish.runner.assemble`). This module owns the command line: its options, the checks made
before any work and the run itself; the accelerator and trackers are set up by
:mod:`diminish.runner.accel`, and ``--dry-run`` and ``--status`` print through :mod:`diminish.runner.overview`.

``--shard k/N`` (k = 0 .. N-1) lets N jobs share one output folder: each job first takes the
units dealt to it (round-robin in plan order), then helps with any unclaimed unit; claims make
sure no stage runs twice; a job whose next units wait on another job's stage polls until it is done.

Exit status: 0 when the grid is complete, 1 on an error (the failed stage is recorded and
named), 128 + signal number after SIGINT/SIGTERM (progress saved; the message says how to resume).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..clihelp import HelpFormatter, examples, launcher_note, launcher_rank
from ..config import ADAMW_KERNELS, FP16_REFUSED, PRECISIONS, RESIDENT, ConfigError, RuntimeConfig, load
from ..console import guard
from ..data.readers import DataError
from ..errors import NonFiniteLossError
from ..overrides import apply_overrides
from .digests import DamagedFile
from .overview import print_plan, print_status
from .plan import build_plan
from .reuse import adopt_finished
from .schedule import RunOptions, parse_shard
from .store import Store

DEFAULT_CONFIG = "experiments/paper.toml"
FIXABLE = (DataError, DamagedFile, OSError, NonFiniteLossError)  # reported in one line, status 1
RESUME_HINT = ("nothing finished is lost; fix the cause and rerun the same command to resume "
               "(--status lists failed stages)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m diminish.run",
        description="Run the study grid (pretrain -> intermediate -> finetune -> evaluate) with reuse, "
        "resume and sharding, and assemble results.nc.",
        formatter_class=HelpFormatter,
        epilog=examples("python -m diminish.run --config experiments/demo.toml --all --jobs 2",
                        "python -m diminish.run --config experiments/paper.toml --dry-run --set finetune.lr=1e-3",
                        "accelerate launch -m diminish.run --config experiments/paper.toml --all "
                        "--mixed-precision bf16"),
    )
    p.add_argument("--config", default=None,
                   help=f"experiment TOML (default: {DEFAULT_CONFIG}, the full study: about 140 GB of data)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                   help="override one config value, read as TOML (repeatable), e.g. --set finetune.lr=1e-3; "
                        "validated like the file; results go to OUT/<name>+KEY.PATH=VALUE/ unless --set name=...")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="run every unfinished stage of the grid")
    what.add_argument("--dry-run", action="store_true",
                      help="print the plan (stages to run/reuse, image-steps); needs no data")
    what.add_argument("--status", action="store_true", help="print done/running/pending/failed counts of the grid")
    p.add_argument("--shard", default="0/1", metavar="K/N",
                   help="this job's share of the work among N jobs (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="run J worker processes on this machine, each a shard with cores/J threads; "
                        "GPUs are dealt round-robin, so J > GPUs runs several small stages per GPU at "
                        "once; default: %(default)s")
    p.add_argument("--no-assemble", action="store_true", help=argparse.SUPPRESS)  # --jobs workers
    p.add_argument("--resume-command", default=None, help=argparse.SUPPRESS)  # --jobs workers: the parent's
    p.add_argument("--gpu-share", type=int, default=1, help=argparse.SUPPRESS)  # --jobs workers on one GPU
    p.add_argument("--out", default="results", help="output root; results go to OUT/<name>/ (default: %(default)s)")
    p.add_argument("--cache-dir", default="cache", help="preprocessed dataset caches (default: %(default)s)")
    p.add_argument("--save-models", action="store_true", help="keep the fine-tuned weights (OUT/<name>/models/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per finished stage)")
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms (slower on GPU)")
    p.add_argument("--mixed-precision", choices=PRECISIONS, default=None,
                   help="autocast precision for training and evaluation (weights, optimiser and losses stay "
                        "fp32); default: what `accelerate launch`/`accelerate config` set, else no. bf16 is "
                        "about 2x faster on GPUs and on CPUs with AVX512-BF16/AMX; it is recorded in results.nc. "
                        "fp16 is refused (no gradient scaler is tested)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each training model: pays on GPUs for long stages; costs one compile "
                        "per model kind and process (about 40 s cold on a CPU, reused by later stages)")
    p.add_argument("--checkpoint-every", type=float, default=None, metavar="S",
                   help="write an epoch-end checkpoint only when S seconds have passed since the last one; "
                        "0: after every epoch (default: 0 on CPUs, 30 on GPUs)")
    p.add_argument("--resident", choices=RESIDENT, default="auto",
                   help="dataset caches held in device memory and indexed there: auto = on a GPU when they fit "
                        "a quarter of its memory (split among its --jobs workers); always = on any device, the "
                        "CPU too; never = batches gathered from the memory map (default: %(default)s)")
    p.add_argument("--sync-every", type=int, default=None, metavar="N",
                   help="steps between host reads of the losses (their finiteness check, progress, the stop "
                        "flag); the window spans epoch ends (default: 1 on CPUs, 25 on GPUs)")
    p.add_argument("--adamw", choices=ADAMW_KERNELS, default="auto",
                   help="AdamW kernel: auto = fused on GPUs, foreach on CPUs; fused or foreach on any device "
                        "(default: %(default)s)")
    p.add_argument("--dist-timeout", type=float, default=None, metavar="S",
                   help="seconds a process of a multi-process run may wait for the others in a collective "
                        "before the job ends (default: torch's, 10 minutes); caches are built before the "
                        "processes connect, so their decoding does not count")
    p.add_argument("--claim-timeout", type=float, default=1800.0, metavar="S",
                   help="a claim untouched for S seconds counts as abandoned (default: %(default)s)")
    p.add_argument("--poll", type=float, default=5.0, metavar="S",
                   help="seconds between checks while waiting on another job")
    return p.parse_args(argv)


def runtime(args: argparse.Namespace) -> RuntimeConfig:
    return RuntimeConfig(out_dir=Path(args.out), cache_dir=Path(args.cache_dir), progress=not args.no_progress,
                         save_models=args.save_models, deterministic=args.deterministic,
                         compile=args.compile, mixed_precision=args.mixed_precision,
                         checkpoint_every=args.checkpoint_every, resident=args.resident,
                         sync_every=args.sync_every, adamw=args.adamw, dist_timeout=args.dist_timeout)


def run_options(args: argparse.Namespace, rt: RuntimeConfig) -> RunOptions:
    """The ``--all`` run's options, read once from the parsed command line (``--shard`` checked)."""
    k, n = parse_shard(args.shard)
    return RunOptions(config=args.config, overrides=tuple(args.overrides), rt=rt, shard=k, shards=n, jobs=args.jobs,
                      poll=args.poll, claim_timeout=args.claim_timeout, assemble=not args.no_assemble,
                      resume_command=args.resume_command, gpu_share=args.gpu_share)


def speaks_for_the_run(args: argparse.Namespace) -> bool:
    """Whether this process says what is said once per run (the config line, config warnings): not
    a ``--jobs`` worker (``--no-assemble``), nor a process of rank > 0 under a multi-process launch."""
    return not args.no_assemble and launcher_rank() == 0


def main(argv: list[str] | None = None, step_hook=None) -> int:
    """The command line; ``step_hook`` goes to every training step of a ``--all`` run in this
    process (:func:`diminish.core.loop.train_one_epoch`; the fault-injection harness's)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    explicit = args.config is not None
    args.config = args.config or DEFAULT_CONFIG
    args.resume_command = args.resume_command or "python -m diminish.run " + " ".join(map(shlex.quote, argv))
    speaks = speaks_for_the_run(args)
    try:  # late milestones are warned about once, those of the config that runs
        base_cfg = load(args.config, warn=speaks and not args.overrides)
        cfg = apply_overrides(base_cfg, args.overrides, args.config, warn=speaks)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rt = runtime(args)
    plan = build_plan(cfg)
    store = Store(rt.out_dir / cfg.name)
    base = Store(rt.out_dir / base_cfg.name) if base_cfg.name != cfg.name else None
    if args.dry_run:
        print_plan(plan, store, args.config, base)
        return 0
    if args.status:
        print_status(plan, store, args.claim_timeout)
        return 0
    if args.all and speaks:
        how = "" if explicit else " (the default --config: the full study; the demo is --config experiments/demo.toml)"
        print(f"config: {args.config}{how}; {cfg.name} (config {cfg.hash}) -> {store.root}", flush=True)
    if not args.all:
        print("nothing to do: give --all (run the grid), --dry-run or --status; see --help", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.sync_every is not None and args.sync_every < 1:
        print(f"--sync-every must be >= 1, got {args.sync_every}", file=sys.stderr)
        return 2
    if args.mixed_precision == "fp16":
        print(f"error: {FP16_REFUSED}", file=sys.stderr)
        return 2
    opts = run_options(args, rt)
    if base is not None and base.root.is_dir():
        n = adopt_finished(plan.stages(), store, base)
        if n:
            print(f"reusing {n} finished stages of {base.root} (same keys) in {store.root}", flush=True)
    # The one import made inside a function: the part of the runner that trains loads torch and
    # accelerate (seconds), so --help, --dry-run and --status above never import it.
    from . import launch

    if args.jobs > 1:
        return launch.run_jobs(opts, plan, store)
    return launch.run_all(opts, cfg, plan, store, step_hook)


def cli(argv: list[str] | None = None, step_hook=None) -> int:
    """The command line: :func:`main`, with errors a user can fix (bad or missing data, a damaged
    file, a full or unwritable disk, a non-finite loss) reported as one message naming the file or
    stage and the problem, exit status 1, instead of a traceback. The failed stage is recorded
    (``--status``); rerunning the same command after fixing the cause resumes from its last checkpoint."""
    try:
        code = guard(lambda a: main(a, step_hook), argv, errors=FIXABLE, status=1, hint=RESUME_HINT,
                     text_exits=True)
    except SystemExit as e:
        if e.code not in (0, None):
            launcher_note(e.code if isinstance(e.code, int) else 2, "command-line error (see above)")
        raise
    if code:
        launcher_note(code, "see the error above")
    return code


if __name__ == "__main__":
    sys.exit(cli())
