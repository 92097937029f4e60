"""Command-line overrides of a config: ``--set key.path=value`` on ``diminish.run`` and
``diminish.bench``. An override is read as TOML and validated exactly as a config file is (by
:func:`diminish.config._build`, so an unknown key gets the same "did you mean" hint); the
overridden config gets a results folder name that says what changed (:func:`override_name`) and
a ``source_text`` holding the whole effective config as TOML (:func:`to_toml`), so ``config.toml``
and results.nc's ``config_text`` reproduce it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from .config import ConfigError, ExperimentConfig, _build, load, stable_hash, warn_late_milestones


def parse_override(item: str) -> tuple[str, Any]:
    """``"finetune.lr=1e-3"`` -> ``("finetune.lr", 0.001)``: the value is read as TOML (numbers, booleans,
    ``[lists]``, ``"strings"``); a bare word that is not TOML is taken as a string."""
    key, sep, raw = item.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. --set finetune.lr=1e-3")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # e.g. name=lr-sweep; a string where a number or list belongs fails validation
    return key, value


def override_name(name: str, items: list[str]) -> str:
    """The results folder name of an overridden config: ``paper+finetune.lr=1e-3``, as one safe path
    component (characters outside ``A-Za-z0-9._=,+-`` and runs of dots become ``_``; a long name ends in a
    hash)."""
    parts = [f"{k}={str(v) if isinstance(v, str) else raw}" for k, v, raw in
             ((*parse_override(i), i.partition("=")[2].strip()) for i in items)]
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", "+".join([name, *parts]))
    text = re.sub(r"\.{2,}", "_", text)  # no ".." in a folder name
    return text if len(text) <= 100 else f"{text[:83]}+{stable_hash(text)}"


def apply_overrides(cfg: ExperimentConfig, items: list[str] | tuple[str, ...], source: str = "<string>", *,
                    warn: bool = True) -> ExperimentConfig:
    """``cfg`` with ``--set`` items applied and validated as a config file is (unknown keys get the same
    "did you mean" hint; late milestones of the result are warned about when ``warn``). Unless ``name``
    is set, the name (and so the results folder) says what changed. The new ``source_text`` is the
    whole effective config as TOML, so ``config.toml`` and results.nc's ``config_text`` reproduce it."""
    items = list(items)
    if not items:
        return cfg
    data = cfg.to_dict()
    for item in items:
        key, value = parse_override(item)
        *path, leaf = key.split(".")
        node = data
        for i, part in enumerate(path):
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {item}: '{'.'.join(path[:i + 1])}' is a value, not a table")
            node = node.setdefault(part, {})
        node[leaf] = value
    where = f"{source} with --set {' '.join(items)}"
    new = _build(ExperimentConfig, data, "", where)
    if warn:
        warn_late_milestones(new, where)
    if not any(parse_override(i)[0] == "name" for i in items):
        new = dataclasses.replace(new, name=override_name(cfg.name, items))
    header = (f"# {source} with command-line overrides:\n"
              + "".join(f"#   --set {i}\n" for i in items) + "# the effective configuration:\n")
    return dataclasses.replace(new, source_text=header + to_toml(new.to_dict()))


def to_toml(d: dict[str, Any]) -> str:
    """A config dict (scalars, lists, one level of tables) as TOML text that :func:`loads` reads back."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) or v == v and abs(v) != float("inf") else str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ConfigError(f"cannot write {v!r} as TOML")

    top = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "".join(f"{kk} = {value(vv)}\n" for kk, vv in v.items())
              for k, v in d.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "".join(tables)


def load_with_overrides(path: str | Path, items: list[str] | tuple[str, ...] = (), *,
                        warn: bool = True) -> ExperimentConfig:
    """:func:`load`, then :func:`apply_overrides` (the file is validated alone first, so its own errors
    name only the file); late milestones are warned about once, those of the effective config."""
    cfg = load(path, warn=warn and not items)
    return apply_overrides(cfg, items, str(path), warn=warn)
