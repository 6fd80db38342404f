"""The picture helpers: glyph grids and panel rows with CJK-capable labels."""

from __future__ import annotations

import numpy as np
import pytest

from restoreae.figures import glyph_grid, label_faces, label_strip, panel_row


def test_cjk_label_is_drawn_not_replaced() -> None:
    if not label_faces():
        pytest.skip("no CJK label font installed")
    yong, other = label_strip("永", 40, 24), label_strip("字", 40, 24)
    assert (yong < 128).sum() > 10  # ink, not an empty box or a '?'
    assert not np.array_equal(yong, other)  # two characters, two drawings
    assert not np.array_equal(yong, label_strip("?", 40, 24))


def test_long_label_shrinks_to_its_cell() -> None:
    strip = label_strip("a rather long column label", 30, 14)
    assert strip.shape == (14, 30) and (strip < 128).any()


def test_glyph_grid_layouts() -> None:
    a = np.full((2, 8, 8), 255, np.uint8)
    b = np.zeros((2, 8, 8), np.uint8)
    g = glyph_grid({"a": a, "b": b}, gutter=2, header=0)
    assert g.shape == (2 * 10 + 2, 2 * 10 + 2) and g[2, 2] == 255 and g[2, 12] == 0
    inner = glyph_grid([("x", a), ("x", b)], gutter=2, header=12, outer=False)
    assert inner.shape == (12 + 2 * 10, 2 * 10)  # labels may repeat; no outer gutter
    assert inner[14, 0] == 255 and inner[14, 10] == 0
    with pytest.raises(ValueError, match="column 'b'"):
        glyph_grid({"a": a, "b": b[:, :4]})


def test_panel_row_scales_panels_to_one_height() -> None:
    wide = np.zeros((10, 40), np.uint8)
    row = panel_row([wide, None], ["输入", "restored"], height=32)
    assert row.dtype == np.uint8 and row.shape == (32 + 14 + 2 * 6, 6 + 128 + 6 + 32 + 6)
    two_lines = panel_row([wide, None], ["input", "reference\n永 (TW-Kai)"], height=32)
    assert two_lines.shape[0] == 32 + 2 * 14 + 2 * 6
