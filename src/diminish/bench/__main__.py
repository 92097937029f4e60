"""``python -m diminish.bench``: see :mod:`diminish.bench.cli` (also the entry of the ``--worker`` processes)."""

from .cli import main

raise SystemExit(main())
