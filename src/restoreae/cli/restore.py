"""Arguments and dispatch of `restoreae restore`, `restore-page`, `export` (ONNX) and `demo`."""

from __future__ import annotations

import argparse
from pathlib import Path

from restoreae.cli.options import BACKEND_HELP, BACKENDS, MODEL_SPEC, positive


def add_restore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore",
        help="restore image files or folders",
        description="Restore pictures of single characters (PNG/JPEG/TIFF/BMP/WebP, any polarity). "
        "Results keep the input's name, size and polarity and go to results/ unless -o says "
        "otherwise (16-bit inputs are written as 8-bit). A blank picture is written unchanged; "
        "one showing several characters is refused (see restore-page). Exit status 1 if any "
        "input failed.",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders (recursive)")
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="output folder")
    p.add_argument(
        "--suffix",
        default="",
        help="added to each output name: NAME_SUFFIX.EXT (empty: the input's name)",
    )
    p.add_argument(
        "--ext",
        choices=("same", "png", "jpg"),
        default="same",
        help="output format: the input's own (same), png or jpg",
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument(
        "--char",
        default=None,
        help="the character shown, in any form a font draws (simplified, traditional, variant), "
        "for the reference channel; 'auto': let the recogniser choose it (restoreae[ocr])",
    )
    p.add_argument(
        "--chars-csv",
        type=Path,
        default=None,
        help="CSV with columns path,char (path or file name; char may be 'auto'); --char covers "
        "unlisted files",
    )
    p.add_argument("--model", default=None, help=f"{MODEL_SPEC} (default: the shipped model)")
    p.add_argument("--no-reference", action="store_true", help="leave the reference channel empty")
    p.add_argument(
        "--force",
        action="store_true",
        help="restore even pictures that show no ink or several characters",
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument(
        "--polarity",
        choices=("auto", "dark-on-light", "light-on-dark"),
        default="auto",
        help="ink darker or lighter than its background (auto: detected per picture)",
    )
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="also write NAME.compare.png (input | reference | restored)",
    )
    p.add_argument("--batch-size", type=positive, default=16, help="pictures per model call (≥ 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--single",
        action="store_true",
        help="restore every image as one character (skip the check for several characters, "
        "which sends pages to restore-page)",
    )
    p.set_defaults(func=_run_restore)


def _run_restore(args: argparse.Namespace) -> int:
    from restoreae.restore.command import restore_command

    return restore_command(args)


def add_restore_page(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore-page",
        help="restore whole pages: rubbings, inscriptions, manuscript sheets",
        description="Find every character of each page (columns read right to left, or rows), "
        "identify it (OCR, or --text), restore it and paste it back. Writes NAME.png, "
        "NAME.compare.png, NAME.json and NAME/NNNN.png crops into the output folder. "
        "Exit status 1 if any page failed.",
    )
    p.add_argument("pages", nargs="+", type=Path, help="page images or folders (recursive)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument(
        "--layout",
        choices=("columns", "rows"),
        default="columns",
        help="columns: vertical, read right to left (default); rows: horizontal, top to bottom",
    )
    p.add_argument("--text", default=None, help="the page's transcription in reading order")
    p.add_argument("--text-file", type=Path, default=None, help="the transcription, UTF-8 file")
    p.add_argument("--no-ocr", action="store_true", help="do not recognise the characters")
    p.add_argument("--model", default=None, help=f"{MODEL_SPEC} (default: the shipped model)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument(
        "--polarity",
        choices=("auto", "dark-on-light", "light-on-dark"),
        default="auto",
        help="ink on the page: detected (auto), dark ink on paper, or light strokes on a rubbing",
    )
    p.add_argument("--batch-size", type=int, default=32, help="characters per model batch")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    p.add_argument("--device", default="cpu", help="torch device for the torch backend")
    p.set_defaults(func=_run_restore_page)


def _run_restore_page(args: argparse.Namespace) -> int:
    from restoreae.restore.page_io import restore_page_command

    return restore_page_command(args)


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it")
    p.add_argument("checkpoint", metavar="MODEL", help=MODEL_SPEC)
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from restoreae.restore.export import export_command

    return export_command(args)


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="restore the bundled samples and write a side-by-side PNG")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    p.add_argument("--model", default=None, help=f"{MODEL_SPEC} (default: the shipped model)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from restoreae.restore.demo import demo_command

    return demo_command(args)
