"""Finished stages found in other folders: :func:`adopt_finished` links into a ``--set`` run's folder
the stages the un-overridden run already finished (same key, same stage), and
:func:`largest_pretrain_model` finds the pre-training model a reconstruction figure shows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .atomic import read_json
from .plan import Stage
from .store import Store


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
