"""``python -m diminish.bench``: see :mod:`diminish.bench.cli` (also the entry of the ``--worker`` processes)."""

from ..config import ConfigError
from ..console import guard
from .cli import main

raise SystemExit(guard(main, errors=(ConfigError, FileNotFoundError)))
