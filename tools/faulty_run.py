"""``python -m diminish.run`` with a fault injected at one training step (for the fault tests).

    python tools/faulty_run.py ACTION@KIND:EPOCH:STEP [diminish.run arguments ...]

ACTION is ``kill`` (SIGKILL this process), ``term`` (SIGTERM this process, as a scheduler would)
or ``nan`` (that step's loss becomes NaN). The fault fires at most once per process, in the first
stage of kind KIND to reach step STEP of epoch EPOCH. It is a step hook of the runner's loop
(:func:`diminish.core.loop.train_one_epoch`), installed through :func:`diminish.runner.cli.cli`:
the package itself carries no fault code and reads no fault setting. ``--jobs`` workers are plain
runner processes (the fault is this process's only).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


class Fault:
    """A step hook that injects one fault: ``Fault("kill@finetune:1:0")``."""

    def __init__(self, spec: str) -> None:
        try:
            self.action, rest = spec.split("@")
            self.kind, epoch, step = rest.split(":")
            self.epoch, self.step = int(epoch), int(step)
        except ValueError:
            raise ValueError(f"fault {spec!r}: expected ACTION@KIND:EPOCH:STEP") from None
        if self.action not in ("kill", "term", "nan"):
            raise ValueError(f"fault {spec!r}: action must be kill, term or nan")

    def __call__(self, kind: str, epoch: int, step: int, loss):
        if self.action is None or (kind, epoch, step) != (self.kind, self.epoch, self.step):
            return loss
        action, self.action = self.action, None  # once per process
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "term":  # the stop flag is set; this step still finishes, with its real loss
            os.kill(os.getpid(), signal.SIGTERM)
        elif action == "nan":
            return loss * float("nan")
        return loss


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from diminish.host import quiet_openmp  # the runner's entry point does the same first

    quiet_openmp()
    from diminish.runner.cli import cli

    return cli(argv[1:], step_hook=Fault(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
