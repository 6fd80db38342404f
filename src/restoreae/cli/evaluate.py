"""Arguments and dispatch of `restoreae eval`: leaderboard, or quality table (--suite/--real)."""

from __future__ import annotations

import argparse
from pathlib import Path

from restoreae.cli.options import MODEL_SPEC, positive
from restoreae.errors import RestoreAEError


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="PSNR / SSIM / OCR readability against baselines; --suite: the quality table",
        description="Without --suite/--real: restore seeded damaged corpus glyphs with each "
        "checkpoint and the baselines (leaderboard). With --suite or --real: damage labelled "
        "images (font held-out writers, real-dev, --real sets), restore them through the "
        "Restorer (the path of `restoreae restore`) with and without the reference and write "
        "quality.md / quality.json / quality-images.csv.",
    )
    p.add_argument(
        "checkpoints", nargs="*", help=f"models to compare: {MODEL_SPEC} (none: baselines)"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="corpus folder (required without --suite/--real; --suite default data/corpus128; "
        "'none': no font set)",
    )
    p.add_argument(
        "--suite",
        action="store_true",
        help="the whole quality table: font held-out writers + real-dev, seed and real damage",
    )
    p.add_argument(
        "--real",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="labelled real images: labels CSV (path,char[,alt,set,polarity]) or folder "
        "root/<char>/<writer>.png (repeatable)",
    )
    p.add_argument(
        "--real-dev",
        type=Path,
        default=None,
        help="--suite: real-dev folder (default ../shared/real-dev next to the repo; 'none': skip)",
    )
    p.add_argument("--model", default=None, help=f"--suite/--real: {MODEL_SPEC} (default: shipped)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="--suite/--real")
    p.add_argument(
        "--per-op-ops",
        default="seed",
        help="--suite/--real: ops of the one-op-at-a-time table: seed, real, all or a "
        "comma-separated list (default seed)",
    )
    p.add_argument(
        "--per-op-ocr",
        action="store_true",
        help="--suite/--real: also read the one-op sets with OCR (doubles the run time)",
    )
    p.add_argument(
        "--split",
        default="heldout-writers",
        choices=("heldout-writers", "heldout-chars", "val"),
        help="which glyphs: writers or characters the models never saw, or validation",
    )
    p.add_argument(
        "--damage",
        default=None,
        help="damage YAML config or preset (seed, real); default: seed; --suite/--real: a "
        "comma-separated list (--suite default seed,real)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default eval-report; --suite: quality-report)",
    )
    p.add_argument(
        "--num",
        type=int,
        default=None,
        help="number of glyphs evaluated (default 500); --suite/--real: per set (default 80)",
    )
    p.add_argument("--batch-size", type=positive, default=64, help="glyphs per model call")
    p.add_argument("--seed", type=int, default=0, help="seed of the glyph sample and damage")
    p.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:N")
    p.add_argument("--no-ocr", action="store_true", help="skip the OCR readability judge")
    p.add_argument("--no-baselines", action="store_true", help="skip the classical baselines")
    p.add_argument("--no-per-op", action="store_true", help="skip the one-op-at-a-time sets")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency timing")
    p.add_argument(
        "--ocr-width",
        type=int,
        default=320,
        help="OCR input width at height 48 (default 320 as shipped; 48 is ~5x faster)",
    )
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    if args.suite or args.real:
        from restoreae.evaluate.suite import quality_command

        return quality_command(args)
    from restoreae.evaluate.runner import eval_command

    if args.data is None:
        raise RestoreAEError("eval: --data CORPUS is required (or use --suite / --real)")
    args.num = 500 if args.num is None else args.num
    args.out = Path("eval-report") if args.out is None else args.out
    return eval_command(args)
