"""Shared fixtures: a tiny glyph corpus rendered from the installed CJK fonts."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Characters of the tiny corpus: 48 GB2312 level-1 characters spread over the whole set.
TINY_SIZE = 64


@pytest.fixture(scope="session")
def gb_chars() -> str:
    """48 GB2312 level-1 characters (every 78th), the character set of ``tiny_corpus``."""
    from restoreae.data.charsets import GB2312_LEVEL1

    return GB2312_LEVEL1[::78][:48]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory, gb_chars: str) -> Path:
    """Path of a corpus built from the installed fonts: 48 chars, size 64, seed 0,
    1 validation writer family, 1 test writer family, 5% held-out characters.

    Skips the requesting tests when fewer than three CJK writer families are installed.
    """
    from restoreae.data.corpus import build_corpus
    from restoreae.data.fonts import discover_fonts

    faces = discover_fonts()
    if len({f.family for f in faces}) < 3:
        pytest.skip("tiny_corpus needs at least three installed CJK font families")
    out = tmp_path_factory.mktemp("tiny_corpus") / "corpus"
    return build_corpus(
        out,
        gb_chars,
        faces,
        TINY_SIZE,
        val_writers=1,
        test_writers=1,
        heldout_chars=0.05,
        seed=0,
        workers=1,
        charset_name="gb2312-1[::78][:48]",
    )
