"""``python -m diminish.bench``: see :mod:`diminish.bench.cli` (also the entry of the ``--worker`` processes)."""

from ..host import quiet_openmp

quiet_openmp()  # before torch loads (the modules below import it): libgomp reads it at start

from ..config import ConfigError  # noqa: E402 - after the OpenMP setting, on purpose
from ..console import guard  # noqa: E402
from .cli import main  # noqa: E402

raise SystemExit(guard(main, errors=(ConfigError, FileNotFoundError)))
