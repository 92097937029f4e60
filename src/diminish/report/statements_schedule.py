"""Sentences about how long pre-training ran, each computed from the schedule numbers it cites.

How many optimiser steps a pre-training stage took follows from its size, epochs and batch size
(one step per batch, the last batch of an epoch possibly smaller, as ``training.py`` counts them).
Whether the loss looks flat at the end says little when the learning rate was cut inside the last
epochs by which the flatness is judged; :func:`schedule_sentence` says so where it happens.
"""

from __future__ import annotations

import math

from .latex import Tex, integer, num
from .statements import join_words, plural


def optimiser_steps(size: int, epochs: int, batch: int) -> int:
    """Optimiser steps of one pre-training stage on ``size`` images: epochs x ceil(size / batch)."""
    return int(epochs) * math.ceil(int(size) / int(batch)) if size > 0 else 0


def drops_in_tail(milestones, epochs: int, tail_epochs: int) -> list[int]:
    """The milestones (epochs, counted from 0, at which the learning rate is multiplied by gamma) that fall in
    the last ``tail_epochs`` of ``epochs``."""
    return sorted(int(m) for m in milestones if epochs - tail_epochs <= int(m) < epochs)


def schedule_sentence(sizes, epochs: int, batch: int, milestones, gamma: float, tail_epochs: int) -> Tex:
    """'Pre-training took 8 to 52 optimiser steps in all (4 epochs in batches of 64 on 100 to 800 images). Its
    learning rate was cut 10-fold at epoch 3 of 4, inside the last epoch by which the loss is judged, ...'"""
    pos = sorted(int(p) for p in sizes if int(p) > 0)
    if not pos:
        return Tex("")
    lo, hi = optimiser_steps(pos[0], epochs, batch), optimiser_steps(pos[-1], epochs, batch)
    steps = f"{integer(lo)}" if lo == hi else f"{integer(lo)} to {integer(hi)}"
    imgs = f"{integer(pos[0])}" if len(pos) == 1 else f"{integer(pos[0])} to {integer(pos[-1])}"
    out = (f"Pre-training took {steps} optimiser steps in all ({plural(epochs, 'epoch')} in batches of "
           f"{integer(batch)} on {imgs} images).")
    drops = drops_in_tail(milestones, epochs, tail_epochs)
    if drops and 0 < gamma < 1:
        at = join_words([str(m + 1) for m in drops])  # milestone m (0-based) lowers the rate from epoch m + 1 on
        out += (f" Its learning rate was cut {num(1 / gamma, 0)}-fold from epoch{'s' if len(drops) > 1 else ''} {at} "
                f"of {epochs} (counting from 1), inside the last {plural(tail_epochs, 'epoch')} by which the loss "
                "is judged, so a flat loss there may reflect the smaller steps rather than convergence.")
    return Tex(out)
