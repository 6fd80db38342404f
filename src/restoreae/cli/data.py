"""Arguments and dispatch of `restoreae build-data` (the glyph corpus) and `preview-damage`."""

from __future__ import annotations

import argparse
from pathlib import Path

from restoreae.cli.options import positive


def add_build_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-data", help="render the glyph corpus from installed CJK fonts")
    p.add_argument("out", type=Path, help="corpus folder to create or complete")
    p.add_argument("--size", type=int, default=224, help="glyph size in pixels (default 224)")
    p.add_argument(
        "--charset",
        default="gb2312-1",
        help="built-in charset name (gb2312-1) or a UTF-8 file of any characters; append "
        "+traditional to add their traditional forms (OpenCC s2t)",
    )
    p.add_argument("--font", action="append", default=[], type=Path, help="extra font file")
    p.add_argument("--font-dir", action="append", default=[], type=Path, help="extra font folder")
    p.add_argument(
        "--images", action="append", default=[], type=Path, help="folder root/<char>/<writer>.png"
    )
    p.add_argument("--no-system-fonts", action="store_true", help="use only --font/--font-dir")
    p.add_argument("--reference-font", default=None, help="font file or writer id for reference")
    p.add_argument("--traditional", action="store_true", help="reference in traditional forms")
    p.add_argument(
        "--val-writers",
        type=_count_or_names,
        default=2,
        help="validation writer families: a number drawn at random, or names a,b (default 2)",
    )
    p.add_argument(
        "--test-writers",
        type=_count_or_names,
        default=2,
        help="test writer families: a number drawn at random, or names a,b (default 2)",
    )
    p.add_argument("--heldout-chars", type=float, default=0.05, help="fraction of chars held out")
    p.add_argument("--seed", type=int, default=0, help="seed of the writer and character splits")
    p.add_argument("--workers", type=positive, default=1, help="rendering processes")
    p.set_defaults(func=_run_build_data)


def _count_or_names(text: str) -> int | list[str]:
    """``"2"`` → 2; ``"noto-serif-cjk,smiley-sans"`` → the family names."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a number or comma-separated family names")
    return names


def _run_build_data(args: argparse.Namespace) -> int:
    from restoreae.data.corpus import build_data_command

    return build_data_command(args)


def add_preview_damage(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview-damage", help="write a clean | damaged grid PNG")
    p.add_argument("--out", type=Path, default=Path("damage-preview.png"), help="PNG file to write")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: render)")
    p.add_argument(
        "--config", type=Path, default=None, help="damage YAML or preset seed|real (default: seed)"
    )
    p.add_argument("--ops", default=None, help="comma-separated ops, a column each (default: all)")
    p.add_argument(
        "--style",
        default=None,
        help="also show synthetic-writer style ops: preset (writers) or YAML (default: none)",
    )
    p.add_argument("--rows", type=int, default=8, help="number of glyphs (rows)")
    p.add_argument("--size", type=int, default=128, help="glyph size in pixels")
    p.add_argument("--seed", type=int, default=0, help="seed of the random damage")
    p.set_defaults(func=_run_preview_damage)


def _run_preview_damage(args: argparse.Namespace) -> int:
    from restoreae.damage.preview import preview_damage_command

    return preview_damage_command(args)
