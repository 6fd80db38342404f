"""scripts/subset_corpus.py: a smaller corpus that opens like any other, keeps the splits, zeroes
the test writers and rounds grey levels (for carrying a corpus to a lent GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from restoreae.data.corpus import Corpus

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "subset_corpus.py"


def _script():
    spec = importlib.util.spec_from_file_location("subset_corpus", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_subset_keeps_splits_zeroes_test_writers_and_quantizes(tiny_corpus, tmp_path) -> None:
    sub = _script()
    src = Corpus.open(tiny_corpus)
    out = tmp_path / "sub"
    sub.write_subset(tiny_corpus, out, n_chars=20, seed=3, drop_test=True, levels=16)
    c = Corpus.open(out)
    assert len(c.chars) == 20 and c.splits == src.splits
    assert not set(c.chars) & set(src.splits["heldout_chars"])  # only chars training can use
    assert [w["id"] for w in c.writers] == [w["id"] for w in src.writers]
    levels = np.unique(c.glyphs)
    assert set(levels.tolist()) <= {round(i * 17) for i in range(16)}
    for wid in src.splits["test_writers"]:
        w = c.writer_index(wid)
        assert not c.coverage[w].any() and not c.glyphs[w].any()
    w0 = c.writer_index(src.splits["val_writers"][0])
    for j, ch in enumerate(c.chars):
        i = src.char_index(ch)
        assert c.coverage[w0, j] == src.coverage[w0, i]
        diff = np.abs(c.glyphs[w0, j].astype(int) - src.glyphs[w0, i].astype(int))
        assert diff.max() <= 9  # 16 levels: at most half a step (8.5) off
    # the same seed draws the same characters; the folder is never overwritten
    again = tmp_path / "again"
    sub.write_subset(tiny_corpus, again, n_chars=20, seed=3, drop_test=False, levels=256)
    assert Corpus.open(again).chars == c.chars
    assert np.array_equal(
        Corpus.open(again).reference, src.reference[[src.char_index(x) for x in c.chars]]
    )
    with pytest.raises(SystemExit, match="already holds a corpus"):
        sub.write_subset(tiny_corpus, out, n_chars=20, seed=3, drop_test=True, levels=16)
