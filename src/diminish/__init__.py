"""diminish: reproduce and extend 'Diminishing Returns in Self-Supervised Learning'."""

import os as _os

__version__ = "0.1.0"

# OpenMP threads that reach a barrier first spin for at most 10,000 rounds, then sleep (libgomp's
# default spins for 300,000). On a CPU shared with other jobs a spinning thread holds a core that
# its descheduled sibling needs, and 2-thread fine-tuning fell far below its share of the machine
# beside busy processes (benchmarks/README.md, "Shared CPUs"); a short spin still catches the quick
# barriers of a quiet machine. Set here, before torch is imported, so that libgomp reads it; an
# OMP_WAIT_POLICY or GOMP_SPINCOUNT of the user's wins.
SPINCOUNT = "10000"
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
