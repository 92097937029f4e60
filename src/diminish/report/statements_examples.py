"""Sentences about the segmentation examples, each computed from the numbers it cites.

The examples come from one cell fixed by the plan (the largest pre-training and fine-tune sizes,
without the intermediate stage, the first seed), not picked for its score; the sentence says so and
where that run's score ranks among the runs of the same fine-tune size, and how often the model
predicts the border class against how often it is true on the images shown.
"""

from __future__ import annotations

import numpy as np

from .latex import Tex, escape, integer, isnan, num

BORDER = 2  # index of the border class in the tri-maps (data.classes.TRIMAP_CLASSES: pet, background, border)


def class_shares(truth, pred, cls: int = BORDER) -> tuple[float, float]:
    """(share of true pixels, share of predicted pixels) of class ``cls`` over the given label maps."""
    t, p = np.asarray(truth), np.asarray(pred)
    return float((t == cls).mean()) if t.size else np.nan, float((p == cls).mean()) if p.size else np.nan


def examples_sentence(cell: str, metric: str, score: object, rank: int, n: int, finetune: int, border_true: object,
                      border_pred: object) -> Tex:
    """'The examples come from the cell the plan fixes in advance (...), not one chosen for its score: its run scores
    38.2% mIoU, 7th of the 8 runs with F = 320 (1 = best). The border class covers 12.3% of the true pixels shown and
    0.0% of the predicted ones: the model never predicts it.'"""
    head = (f"The examples come from the cell the plan fixes in advance ({escape(cell)}: the largest sizes, without "
            "the intermediate stage, the first seed), not one chosen for its score")
    if isnan(score) or n < 2:
        out = head + "."
    else:
        out = (f"{head}: its run scores {num(score)}\\% {escape(metric)}, rank {integer(rank)} of the {integer(n)} "
               f"runs with $F={integer(finetune)}$ (1 = best).")
    if not (isnan(border_true) or isnan(border_pred)):
        t, p = 100 * float(border_true), 100 * float(border_pred)
        out += (f" The border class covers {num(t, 1)}\\% of the true pixels shown and {num(p, 1)}\\% of the "
                "predicted ones")
        out += (": the model never predicts it, so its IoU is 0 and the mean over the three classes cannot exceed "
                "66.7\\%."
                if p == 0 and t > 0 else ".")
    return Tex(out)
