"""Every formula that turns names and numbers into a seed or a key, side by side.

They differ on purpose, and each is part of every result made so far, so none may change: a test
(``tests/test_seeds.py``) pins their values. Merging them would reseed the whole study.

* :func:`derive_seed` - the training streams: model initialisation (``(seed, "init")``), each head,
  the data order of an epoch and every step's augmentation and SimMIM mask.
* :func:`subset_seed` - the data subsets (``data/splits.py``): the Pets test split, the nested
  fine-tuning subsets and the pre-training subsets.
* :func:`stable_seed` - the analysis's bootstrap and simulation streams (32 bits, for numpy).
* :func:`stable_hash` - the hex digest of a JSON value: stage keys and config hashes (16 digits),
  the cache fingerprints (all 64).

All four are pure functions of their arguments: no process state, no ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_MASK63 = (1 << 63) - 1


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that is a stable function of ``parts`` (strings, numbers, bools)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "little") & _MASK63


def subset_seed(stream: str, seed: int) -> int:
    """A 63-bit generator seed for (stream, seed), stable across machines and versions."""
    digest = hashlib.sha256(f"diminish/{stream}/{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & _MASK63


def stable_seed(*parts: object) -> int:
    """A 32-bit integer derived from the parts' text (independent of PYTHONHASHSEED and order)."""
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def stable_hash(obj: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``obj`` as sorted, compact JSON."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
