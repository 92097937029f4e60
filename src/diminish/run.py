"""``python -m diminish.run``: the study grid's command line (:mod:`diminish.runner.cli`)."""

import sys

from .host import quiet_openmp

quiet_openmp()  # before the runner imports torch: libgomp reads it at load

from .runner.cli import cli  # noqa: E402 - after the OpenMP setting, on purpose

if __name__ == "__main__":
    sys.exit(cli())
