"""Make docs/page-before-after.png: a generated damaged page and its restoration by restore-page.

The page is laid out by :mod:`restoreae.evaluate.pages` from glyphs of the shipped model's held-out
writers (a rubbing: light strokes on dark stone, a grid, a stamped seal, cracks, a lost corner,
stains), then restored with ``Restorer.restore_page`` and written as original | restored.

    python scripts/page_before_after.py                  # the shipped model
    python scripts/page_before_after.py --model runs/x --out /tmp/page.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from restoreae.evaluate.pages import PAGE_GLYPH_DAMAGE, GlyphSource, make_page  # noqa: E402
from restoreae.restore.api import Restorer  # noqa: E402
from restoreae.restore.page_io import compare_image  # noqa: E402
from restoreae.utils import atomic_write  # noqa: E402

TEXT = "永和九年岁在癸丑暮春之初会于会稽山阴之兰亭修禊事也群贤毕至少长咸集此地有崇山峻岭"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "page-before-after.png")
    args = p.parse_args(argv)
    source = GlyphSource.from_fonts(TEXT, size=128)
    page = make_page(
        source,
        np.random.default_rng(args.seed),
        n_lines=5,
        per_line=6,
        char_size=72,
        colour=True,
        grid=True,
        seal=True,
        damage=True,
        glyph_damage=PAGE_GLYPH_DAMAGE,
    )
    result = Restorer(args.model).restore_page(page.image)
    from PIL import Image

    img = Image.fromarray(compare_image(page.image, result.restored))
    atomic_write(args.out, lambda tmp: img.save(tmp, format="PNG"))
    read = "".join(c.char or "?" for c in result.characters)
    print(
        f"wrote {args.out}: {len(result.characters)} of {len(page.boxes)} characters, read {read}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
