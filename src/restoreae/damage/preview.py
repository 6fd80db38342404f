"""``restoreae preview-damage``: a grid PNG showing what the damage ops do.

Layout: a header row of column names, then one row per glyph: ``clean``, with ``--style`` each
style op of the config alone, the whole style (``writer``) and the style followed by the damage
(``writer+dmg``: a training input), then the configured damage pipeline three times
(``pipeline 1..3``) and each damage op alone (one column per op, named in the header).
Cells are separated by grey lines; images are white ink on black.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from restoreae.damage.pipeline import DamageConfig, DamagePipeline
from restoreae.damage.registry import DAMAGE_OPS, list_damage_ops
from restoreae.damage.style import STYLE_OPS, StyleConfig, StyleTransform
from restoreae.errors import ConfigError, DataError
from restoreae.figures import glyph_grid
from restoreae.utils import atomic_write

PIPELINE_COLUMNS = 3
PREVIEW_CHARS = "永字玉書風龍國心靈鬱飛鳥"
_GAP = 2
_GAP_LEVEL = 96


def _header_height(cell: int) -> int:
    return max(14, cell // 6)


def _check_ops(ops: Sequence[str] | None) -> list[str]:
    if ops is None:
        return list_damage_ops()
    for name in ops:
        DAMAGE_OPS.get_entry(name, where="--ops")
    return list(ops)


def make_preview_grid(
    glyphs: Sequence[np.ndarray],
    config: DamageConfig | None = None,
    ops: Sequence[str] | None = None,
    seed: int = 0,
    style: StyleConfig | None = None,
) -> np.ndarray:
    """Grid ``uint8 (H, W)`` for square ``uint8 (S, S)`` glyphs (white on black).

    Columns: clean, [with ``style``: each of its ops alone, the whole style, the style then one
    run of the damage pipeline], ``PIPELINE_COLUMNS`` runs of ``config``'s pipeline, then each
    op of ``ops`` (default: all registered) alone with ``config``'s parameters. Size:
    ``H = header + n * (S + 2)``, ``W = (1 + [len(style ops) + 2] + 3 + len(ops)) * (S + 2)``.
    """
    if not len(glyphs):
        raise DataError("no glyphs to preview")
    config = config if config is not None else DamageConfig()
    op_names = _check_ops(ops)
    pipeline = DamagePipeline(config)
    size = glyphs[0].shape[0]
    style_names = sorted(style.ops, key=list(STYLE_OPS).index) if style is not None else []
    style_cols = [*style_names, "writer", "writer+dmg"] if style is not None else []
    cols = [
        "clean",
        *style_cols,
        *(f"pipeline {i + 1}" for i in range(PIPELINE_COLUMNS)),
        *op_names,
    ]
    rows: list[list[np.ndarray]] = []
    for r, glyph in enumerate(glyphs):
        if glyph.shape != (size, size) or glyph.dtype != np.uint8:
            raise DataError(
                f"glyph {r}: expected uint8 {(size, size)}, got {glyph.dtype} {glyph.shape}"
            )
        row = [glyph]
        if style is not None:
            row.extend(_style_cells(glyph, style, style_names, pipeline, [seed, r]))
        for i in range(PIPELINE_COLUMNS):
            row.append(pipeline(glyph, np.random.default_rng([seed, r, i]))[0])
        for j, name in enumerate(op_names):
            rng = np.random.default_rng([seed, r, PIPELINE_COLUMNS + j])
            row.append(pipeline.apply_op(name, glyph, rng))
        rows.append(row)
    columns = [(name, np.stack([row[c] for row in rows])) for c, name in enumerate(cols)]
    grid = glyph_grid(
        columns,
        gutter=_GAP,
        gutter_value=_GAP_LEVEL,
        header=_header_height(size),
        outer=False,
        header_background=40,
        label_ink=255,
        align="center",
    )
    return grid


def _style_cells(
    glyph: np.ndarray,
    style: StyleConfig,
    names: Sequence[str],
    pipeline: DamagePipeline,
    seed: Sequence[int],
) -> list[np.ndarray]:
    """Each style op alone (p = 1), the whole style, the style then the damage pipeline."""
    import torch

    x = torch.from_numpy(np.array(glyph, np.float32) / 255.0)[None, None]
    cells = []
    for j, name in enumerate(names):
        params = {k: v for k, v in style.ops[name].items() if k != "p"}
        one = StyleTransform(StyleConfig({name: {**params, "p": 1.0}}))
        cells.append(one(x, torch.Generator().manual_seed(int(seed[0]) * 1000 + int(seed[1]) + j)))
    cells.append(StyleTransform(style)(x, torch.Generator().manual_seed(int(seed[1]) + 7919)))
    out = [np.rint(c[0, 0].numpy() * 255).astype(np.uint8) for c in cells]
    out.append(pipeline(out[-1], np.random.default_rng([*seed, 99]))[0])
    return out


def _glyphs_from_corpus(path: Path, rows: int, size: int, seed: int) -> list[np.ndarray]:
    from restoreae.data.corpus import Corpus

    corpus = Corpus.open(path)
    writers, chars = np.nonzero(np.asarray(corpus.coverage))
    if writers.size == 0:
        raise DataError(f"{path}: the corpus holds no glyphs")
    rng = np.random.default_rng(seed)
    pick = rng.choice(writers.size, size=min(rows, writers.size), replace=False)
    out = []
    for i in sorted(pick):
        g = np.asarray(corpus.glyphs[writers[i], chars[i]])
        if g.shape != (size, size):
            g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(g, dtype=np.uint8))
    return out


def _glyphs_from_fonts(rows: int, size: int) -> list[np.ndarray]:
    from restoreae.data.fonts import discover_fonts, render_glyph

    faces = discover_fonts()
    if not faces:
        raise DataError("no CJK fonts found to render preview glyphs (give --corpus)")
    out: list[np.ndarray] = []
    attempt = 0
    while len(out) < rows and attempt < rows * len(PREVIEW_CHARS):
        face = faces[attempt % len(faces)]
        glyph = render_glyph(face, PREVIEW_CHARS[attempt % len(PREVIEW_CHARS)], size)
        attempt += 1
        if glyph is not None:
            out.append(glyph)
    if not out:
        raise DataError("the installed fonts draw none of the preview characters")
    return out


def preview_damage_command(args: argparse.Namespace) -> int:
    """Write the preview grid PNG to ``args.out`` (atomically); print its path and size."""
    if args.rows < 1:
        raise ConfigError(f"--rows must be >= 1, got {args.rows}")
    if not 16 <= args.size <= 1024:
        raise ConfigError(f"--size must be between 16 and 1024, got {args.size}")
    config = DamageConfig.resolve(args.config, where="--config")
    ops = None
    if args.ops:
        ops = _check_ops([name.strip() for name in args.ops.split(",") if name.strip()])
    if args.corpus is not None:
        glyphs = _glyphs_from_corpus(args.corpus, args.rows, args.size, args.seed)
    else:
        glyphs = _glyphs_from_fonts(args.rows, args.size)
    style = StyleConfig.resolve(str(args.style)) if getattr(args, "style", None) else None
    grid = make_preview_grid(glyphs, config, ops, seed=args.seed, style=style)
    ok, png = cv2.imencode(".png", grid)
    if not ok:
        raise DataError(f"{args.out}: PNG encoding failed")
    atomic_write(args.out, png.tobytes())
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}, {len(glyphs)} glyphs)")
    return 0
