"""Command line: ``python -m diminish.data prepare|synth ...`` (see ``--help`` of each)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..clihelp import HelpFormatter, examples, hidden_alias
from ..console import guard
from .cache import prepare
from .readers import DATASETS, DataError
from .synth import DEFAULT_SIZES, write_synthetic

EXAMPLES = examples(
    "python -m diminish.data synth --out data/synth",
    "python -m diminish.data prepare --dataset pets --root data/oxford-iiit-pet --cache-dir cache",
    "python -m diminish.data prepare --dataset intel --root data/intel-image-classification --split test --jobs 2")


def _sizes(text: str) -> dict[str, int]:
    out = {}
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep or key not in DEFAULT_SIZES:
            raise argparse.ArgumentTypeError(
                f"bad size {part!r}: expected KEY=N with KEY in {', '.join(DEFAULT_SIZES)}"
            )
        try:
            out[key] = int(val)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {part!r}: {val!r} is not an integer") from None
        if out[key] < 0:
            raise argparse.ArgumentTypeError(f"bad size {part!r}: must be >= 0")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m diminish.data",
        description="Prepare the one-time uint8 caches of the datasets, or write synthetic stand-ins.",
        formatter_class=HelpFormatter, epilog=EXAMPLES,
    )
    sub = p.add_subparsers(dest="command", required=True)

    pp = sub.add_parser(
        "prepare",
        help="decode and resize a dataset once into a memory-mapped cache (reused when unchanged)",
        description="Decode every used image of a dataset once, resize to 128x128 and store uint8 "
        "arrays plus a manifest under the cache folder. A second call with unchanged files and "
        "settings reuses the cache without decoding.",
        formatter_class=HelpFormatter, epilog=EXAMPLES,
    )
    pp.add_argument("--dataset", required=True, choices=DATASETS)
    pp.add_argument("--root", required=True, type=Path,
                    help="dataset folder in its published layout (e.g. data/oxford-iiit-pet)")
    pp.add_argument("--split", default="train", choices=("train", "test"),
                    help="intel only: 'test' reads seg_test (default: train)")
    pp.add_argument("--limit", type=int, default=0, help="keep at most N examples (0 = all)")
    pp.add_argument("--cache-dir", type=Path, default=Path("cache"), help="where the caches go")
    pp.add_argument("--skip-bad", action="store_true",
                    help="leave unreadable/inconsistent files out (and list them) instead of stopping")
    pp.add_argument("--jobs", type=int, default=None, metavar="N", help="decoding processes (default: all cores)")
    hidden_alias(pp, "--workers", "jobs", type=int)  # the old spelling
    pp.add_argument("--no-progress", action="store_true", help="no progress bar")

    ps = sub.add_parser(
        "synth",
        help="write synthetic Pets / Intel / ImageNet stand-ins in the real layouts",
        description="Write deterministic synthetic datasets (JPEG images, PNG trimaps) under OUT: "
        "OUT/oxford-iiit-pet, OUT/intel-image-classification, OUT/imagenet.",
        formatter_class=HelpFormatter, epilog=EXAMPLES,
    )
    ps.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder to write the datasets into")
    ps.add_argument("--seed", type=int, default=0, help="seed of the synthetic images")
    ps.add_argument(
        "--sizes", type=_sizes, default={},
        help="comma-separated counts, e.g. pets=600,intel=100,intel_test=20,imagenet=800 "
        "(intel and intel_test are per class; defaults: "
        + ",".join(f"{k}={v}" for k, v in DEFAULT_SIZES.items()) + ")",
    )
    ps.add_argument("--jobs", type=int, default=None, metavar="N", help="processes (default: up to 8 cores)")
    hidden_alias(ps, "--workers", "jobs", type=int)  # the old spelling
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "prepare":
            t0 = time.perf_counter()
            cache = prepare(args.dataset, args.root, args.cache_dir, split=args.split, limit=args.limit,
                            skip_bad=args.skip_bad, workers=args.jobs, progress=not args.no_progress)
            dt = time.perf_counter() - t0
            verb = "built" if cache.built else "reused"
            print(f"{verb} {args.dataset}/{args.split}: {len(cache)} examples in {dt:.1f} s -> {cache.path}")
            print(f"hash {cache.hash}")
            if cache.manifest["ignored"]:
                print(f"ignored {len(cache.manifest['ignored'])} non-image file(s)")
            if cache.skipped:
                print(f"skipped {len(cache.skipped)} bad file(s):")
                for f, why in cache.skipped:
                    print(f"  {f}: {why}")
        else:
            sizes = {**DEFAULT_SIZES, **args.sizes}
            t0 = time.perf_counter()
            roots = write_synthetic(args.out, seed=args.seed, pets=sizes["pets"], intel_per_class=sizes["intel"],
                                    imagenet=sizes["imagenet"], intel_test_per_class=sizes["intel_test"],
                                    workers=args.jobs)
            print(f"synthetic data (seed {args.seed}) written in {time.perf_counter() - t0:.1f} s:")
            for name, path in roots.items():
                print(f"  {name}: {path}")
    except BrokenPipeError:  # output closed early: console.guard ends quietly
        raise
    except (DataError, OSError, ValueError) as e:  # OSError: e.g. a cache folder that cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(guard(main))
