"""Corpus splits: validation and test writer families and held-out characters, chosen with a
seed. Whole font families fall on one side (weights and regional variants of one design look
alike); the reference font's family is never a test family.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from restoreae.data.writers import Writer
from restoreae.errors import DataError


def choose_splits(
    writers: list[Writer],
    chars: str,
    reference_family: str | None,
    val_writers: int | Sequence[str],
    test_writers: int | Sequence[str],
    heldout_chars: float,
    seed: int,
) -> dict:
    """Pick val/test writer families and held-out characters with ``seed`` (whole families).

    ``val_writers`` / ``test_writers``: a number of families drawn at random, or the family names
    themselves (pinned splits keep the same held-out writers when fonts are added).
    """
    families = sorted({w.family for w in writers})
    for key, value in (("val", val_writers), ("test", test_writers)):
        if isinstance(value, int):
            if value < 0:
                raise DataError(f"--{key}-writers must be >= 0")
        else:
            unknown = sorted(set(value) - set(families))
            if unknown:
                raise DataError(
                    f"--{key}-writers: unknown writer famil{'y' if len(unknown) == 1 else 'ies'} "
                    f"{', '.join(unknown)}; known: {', '.join(families)}"
                )
    if not 0.0 <= heldout_chars < 1.0:
        raise DataError(f"--heldout-chars must be a fraction in [0, 1), got {heldout_chars}")
    n_val = val_writers if isinstance(val_writers, int) else len(set(val_writers))
    n_test = test_writers if isinstance(test_writers, int) else len(set(test_writers))
    if n_val + n_test >= len(families):
        raise DataError(
            f"only {len(families)} writer families ({', '.join(families)}): cannot hold out "
            f"{n_val} for validation and {n_test} for test and keep one for training"
        )
    rng = np.random.default_rng(seed)
    if isinstance(test_writers, int):
        test_pool = [f for f in families if f != reference_family]
        if test_writers > len(test_pool):
            raise DataError(
                f"not enough writer families besides the reference font for {test_writers} test"
            )
        test = (
            sorted(rng.choice(test_pool, size=test_writers, replace=False).tolist())
            if test_writers
            else []
        )
    else:
        test = sorted(set(test_writers))
        if reference_family in test:
            raise DataError(f"--test-writers: {reference_family} is the reference font's family")
    if isinstance(val_writers, int):
        rest = [f for f in families if f not in test]
        val = (
            sorted(rng.choice(rest, size=val_writers, replace=False).tolist())
            if val_writers
            else []
        )
    else:
        val = sorted(set(val_writers))
        if set(val) & set(test):
            raise DataError(f"families both in validation and test: {sorted(set(val) & set(test))}")
    n_held = round(heldout_chars * len(chars))
    if heldout_chars > 0 and len(chars) >= 2:
        n_held = min(max(n_held, 1), len(chars) - 1)
    held_idx = np.sort(rng.permutation(len(chars))[:n_held]) if n_held else np.zeros(0, int)
    return {
        "val_writers": [w.id for w in writers if w.family in val],
        "test_writers": [w.id for w in writers if w.family in test],
        "val_families": val,
        "test_families": test,
        "heldout_chars": "".join(chars[i] for i in held_idx),
        "seed": int(seed),
    }
