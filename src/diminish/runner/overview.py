"""What ``python -m diminish.run --dry-run`` and ``--status`` print: the plan with the stages to
run or reuse and their image-steps (:func:`print_plan`; needs no data), and the done, running,
pending and failed counts of a results folder (:func:`print_status`). Both only read: the plan,
the store's files and, for the Intel image count, the dataset folder if it is there.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .kinds import KINDS
from .plan import INTEL_TRAIN_IMAGES, Plan, grid_cost
from .schedule import unit_state
from .store import Store


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


def print_plan(plan: Plan, store: Store, cfg_path: str, base: Store | None = None) -> None:
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
    todo = {s.key for s in plan.stages() if not store.is_done(s) and not (base and base.is_done(s))}
    cost = grid_cost(plan, n_intel, include=lambda s: s.key in todo)
    steps = {k: c["image_steps"] for k, c in cost.items()} | {"evaluate": cost["finetune"]["eval_images"]}
    for kind in KINDS:
        stages = plan.stages(kind)
        run = sum(s.key in todo for s in stages)
        print(f"{kind:<13}{len(stages):>7}{len(stages) - run:>7}{run:>7}{steps[kind]:>22,}  {per[kind]}")
    print(f"training image-steps to run: {sum(c['image_steps'] for c in cost.values()):,}")
    if base is not None:
        print(f"(reuse counts stages finished in {base.root}: --all links them into {store.root})")


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
