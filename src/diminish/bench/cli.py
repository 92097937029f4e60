"""Command line of ``python -m diminish.bench``: options -> :func:`run` -> table (and JSON with ``--out-file``).

The model, batch sizes and grid come from ``--config`` (default ``experiments/paper.toml`` when it
exists, else the built-in paper defaults). ``--worker SPEC`` is internal: it turns the process into
one of the concurrent fine-tuning workers of ``many.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..clihelp import HelpFormatter, examples, hidden_alias
from ..config import PRECISIONS, ConfigError, ExperimentConfig
from ..overrides import apply_overrides, load_with_overrides
from . import many
from .measure import run
from .options import STAGES, Options
from .table import format_table

DESCRIPTION = "Throughput benchmark: ``python -m diminish.bench`` (``make bench``)."
OLD_DTYPE = {"fp32": "no", "bf16": "bf16", "auto": "auto"}  # the hidden --dtype alias -> --mixed-precision


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m diminish.bench", description=DESCRIPTION, formatter_class=HelpFormatter,
        epilog=examples("python -m diminish.bench --quick",
                        "python -m diminish.bench --stages finetune --no-reference --no-data --no-eval --repeats 3",
                        "python -m diminish.bench --mixed-precision bf16 --many 2 --out-file benchmarks/out/cpu.json"))
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--mixed-precision", default="no", choices=[p for p in PRECISIONS if p != "fp16"] + ["auto"],
                   help="autocast precision, as in diminish.run: no (fp32), bf16, or auto (bf16 on CUDA "
                        "where supported, else fp32); not fp16, which would need a gradient scaler")
    hidden_alias(p, "--dtype", "dtype", choices=list(OLD_DTYPE))  # the old spelling
    p.add_argument("--batch-size", type=int, default=0, help="override every stage's batch size (0: as configured)")
    p.add_argument("--eval-batch-size", type=int, default=0, help="evaluation batch (0: finetune.eval_batch_size)")
    p.add_argument("--repeats", type=int, default=5, help="timing rounds (median reported)")
    p.add_argument("--target-seconds", type=float, default=1.0, help="minimum length of one timing")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (and the reference)")
    p.add_argument("--compile-mode", default=None,
                   help="torch.compile mode, e.g. reduce-overhead (CUDA graphs) or max-autotune")
    p.add_argument("--optimizer", default="auto", choices=["auto", "foreach"],
                   help="auto: fused AdamW on CUDA (fastpath.make_optimizer); foreach: torch's foreach AdamW")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    p.add_argument("--no-reference", action="store_true", help="skip vit-pytorch")
    p.add_argument("--no-data", action="store_true", help="skip the data path")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation timings (projection without eval)")
    p.add_argument("--many", type=int, default=0, help="K > 1: measure K concurrent fine-tuning runs")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--neighbours", type=int, default=0, metavar="K",
                   help="CPU: also time fine-tuning beside K busy processes, alone and shared in each round")
    p.add_argument("--no-tune-allocator", action="store_true",
                   help="leave glibc malloc as it is (default: keep freed memory in the process)")
    p.add_argument("--config", type=Path, default=None,
                   help="experiment TOML for model, batch sizes and grid (default experiments/paper.toml "
                        "if present, else the built-in paper defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                   help="override one config value, read as TOML (repeatable), e.g. --set finetune.batch_size=32")
    p.add_argument("--quick", action="store_true", help="batch 8, 2 short rounds: checks the machinery")
    p.add_argument("--out-file", type=Path, default=None, metavar="FILE", help="also write the result as JSON to FILE")
    hidden_alias(p, "--out", "out_file", type=Path)  # the old spelling
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cfg_path = a.config or (Path("experiments/paper.toml") if Path("experiments/paper.toml").is_file() else None)
    try:
        if cfg_path:  # late milestones warned about once, those of the config that runs
            cfg = load_with_overrides(cfg_path, a.overrides)
        else:
            cfg = apply_overrides(ExperimentConfig(name="paper"), a.overrides, "the built-in paper defaults")
    except ConfigError as e:
        p.exit(2, f"error: {e}\n")
    stages = tuple(s.strip() for s in a.stages.split(",") if s.strip())
    bad = [s for s in stages if s not in STAGES]
    if bad:
        p.error(f"--stages: unknown {bad}; choose from {list(STAGES)}")
    precision = OLD_DTYPE[a.dtype] if getattr(a, "dtype", None) else a.mixed_precision
    kw = {"device": a.device, "precision": precision, "compile": a.compile or bool(a.compile_mode),
          "compile_mode": a.compile_mode, "optimizer": a.optimizer, "stages": stages,
          "reference": not a.no_reference, "data": not a.no_data, "eval": not a.no_eval,
          "many": a.many, "threads": a.threads, "neighbours": a.neighbours,
          "tune_allocator": not a.no_tune_allocator, "config": cfg}
    explicit = {"batch_size": a.batch_size, "eval_batch_size": a.eval_batch_size}
    if a.quick:
        opts = Options.quick(**kw, **{k: v for k, v in explicit.items() if v})
        if a.repeats != 5:
            opts.repeats = a.repeats
    else:
        opts = Options(**kw, **explicit, repeats=a.repeats, target_seconds=a.target_seconds)
    return opts, a


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        many._worker(argv[1])
        return 0
    opts, a = parse_args(argv)
    res = run(opts, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_table(res))
    if a.out_file:
        a.out_file.parent.mkdir(parents=True, exist_ok=True)
        a.out_file.write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {a.out_file}")
    return 0
