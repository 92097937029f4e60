"""The seed and key formulas (diminish/seeds.py) give the values every result so far was made with.

The numbers were printed by the formulas' earlier homes (engine.derive_seed, splits.subset_seed,
analysis.common.stable_seed, config.stable_hash and cache._hash) before they moved; a change to any
formula reseeds or rekeys the whole study, and this test fails first."""

from __future__ import annotations

import pytest

from diminish.seeds import derive_seed, stable_hash, stable_seed, subset_seed


@pytest.mark.parametrize(("value", "pinned"), [
    (lambda: derive_seed(0, "init"), 6808345638127189101),
    (lambda: derive_seed(1, "finetune", 250, 0, 0, 3), 1460852507987553862),
    (lambda: subset_seed("finetune", 0), 4449271437203175190),
    (lambda: subset_seed("pets-test", 42), 846040872831830121),
    (lambda: stable_seed("miou", 0, False, "log2"), 222264840),
    (lambda: stable_hash({"kind": "init", "seed": 0}), "44873099d9853ec6"),
    (lambda: stable_hash({"a": (1, 2)}, 64), "01530d164d479cf08e26d3b1ad9bdba927120d97e2d057a6d792db778780d720"),
])
def test_each_formula_gives_its_pinned_value(value, pinned):
    assert value() == pinned


def test_the_formulas_are_distinct_streams():
    """Same parts, different formulas, different numbers: they are not interchangeable."""
    assert len({derive_seed("finetune", 0), subset_seed("finetune", 0), stable_seed("finetune", 0)}) == 3
    assert 0 <= derive_seed("x") < 2**63 and 0 <= subset_seed("x", 1) < 2**63 and 0 <= stable_seed("x") < 2**32
