"""The `restoreae` command: parses arguments and dispatches to the package's modules.

No logic lives here. Each subcommand has an ``_add_<name>`` function declaring its arguments and a
``_run_<name>`` function that imports the implementing module lazily (so ``--help`` is fast) and
calls it. A :class:`~restoreae.errors.RestoreAEError` becomes ``error: <message>`` and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import functools
import sys
from pathlib import Path

from restoreae.errors import RestoreAEError

DESCRIPTION = (
    "Restore damaged images of Chinese characters (rubbings, inscriptions, calligraphy, "
    "handwriting) with a neural network that runs on your computer. Start with "
    "`restoreae restore PICTURE.png --char 永` (results go to results/), `restoreae serve` for a "
    "web page, or `restoreae demo`. Training your own model: build-data, train, eval, export."
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (``--help``) without repeating one the help text states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, "", argparse.SUPPRESS, []):
            return text
        return super()._get_help_string(action)


def _int_at_least(low: int, high: int | None = None):
    """An argparse ``type`` accepting whole numbers in ``[low, high]`` (one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


_positive = _int_at_least(1)
_port = _int_at_least(1, 65535)


_MODEL_SPEC = (
    "a shipped model name, a run folder, a .safetensors or .onnx file, or ARCH:FILE.safetensors"
)
_BACKENDS = ("auto", "onnx", "torch")
_BACKEND_HELP = (
    "auto (default): ONNX Runtime on the CPU (exported once, cached beside the weights), "
    "PyTorch on a GPU; onnx or torch to choose"
)


# --------------------------------------------------------------------------- build-data
def _add_build_data(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--workers", type=_positive, default=1, help="rendering processes")
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


# --------------------------------------------------------------------------- preview-damage
def _add_preview_damage(sub: argparse._SubParsersAction) -> None:
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


# --------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameters and GFLOPs")
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="only models whose name matches this shell pattern, e.g. 'unet*'",
    )
    p.add_argument(
        "--size", type=int, default=224, help="image side the FLOPs are counted for (×32)"
    )
    p.add_argument(
        "--in-chans",
        type=int,
        default=2,
        choices=(1, 2),
        help="input channels: 1 (damaged glyph) or 2 (with the reference)",
    )
    p.add_argument(
        "--format", choices=("table", "markdown", "json"), default="table", help="output format"
    )
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from restoreae.models.summary import models_command

    return models_command(args)


# --------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (also under torchrun)")
    p.add_argument("-c", "--config", type=Path, required=True, help="YAML config of the run")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="run folder or state file to resume (default: RUN_DIR/state/last.pt if present); "
        "with --eval-only: run folder or .safetensors to evaluate",
    )
    p.add_argument(
        "--eval-only", action="store_true", help="only compute validation metrics of a checkpoint"
    )
    p.add_argument(
        "--stop-at-step",
        type=int,
        default=None,
        metavar="N",
        help="save and exit at optimizer step N without changing the schedule (resume later)",
    )
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from restoreae.train.engine import train_command

    return train_command(args)


# --------------------------------------------------------------------------- eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
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
        "checkpoints", nargs="*", help=f"models to compare: {_MODEL_SPEC} (none: baselines)"
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
    p.add_argument(
        "--model", default=None, help=f"--suite/--real: {_MODEL_SPEC} (default: shipped)"
    )
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
    p.add_argument("--batch-size", type=_positive, default=64, help="glyphs per model call")
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
        from restoreae.evaluate.quality import quality_command

        return quality_command(args)
    from restoreae.evaluate.runner import eval_command

    if args.data is None:
        raise RestoreAEError("eval: --data CORPUS is required (or use --suite / --real)")
    args.num = 500 if args.num is None else args.num
    args.out = Path("eval-report") if args.out is None else args.out
    return eval_command(args)


# --------------------------------------------------------------------------- restore
def _add_restore(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--model", default=None, help=f"{_MODEL_SPEC} (default: the shipped model)")
    p.add_argument("--no-reference", action="store_true", help="leave the reference channel empty")
    p.add_argument(
        "--force",
        action="store_true",
        help="restore even pictures that show no ink or several characters",
    )
    p.add_argument("--backend", choices=_BACKENDS, default="auto", help=_BACKEND_HELP)
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
    p.add_argument("--batch-size", type=_positive, default=16, help="pictures per model call (≥ 1)")
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


# --------------------------------------------------------------------------- restore-page
def _add_restore_page(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--model", default=None, help=f"{_MODEL_SPEC} (default: the shipped model)")
    p.add_argument("--backend", choices=_BACKENDS, default="auto", help=_BACKEND_HELP)
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


# --------------------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it")
    p.add_argument("checkpoint", metavar="MODEL", help=_MODEL_SPEC)
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from restoreae.restore.export import export_command

    return export_command(args)


# --------------------------------------------------------------------------- serve
def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the local web page")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=_port, default=8765, help="TCP port (1–65535)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra host name the page may be reached by (repeatable); the names of --host "
        "(and localhost for a loopback address) are always allowed; requests naming any other "
        "host, or posted from another site, are refused",
    )
    p.add_argument(
        "--max-queued", type=_positive, default=4, help="jobs waiting at most (then 429)"
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help=f"model offered in the page, {_MODEL_SPEC} (repeatable; the shipped default is "
        "always listed)",
    )
    p.add_argument("--backend", choices=_BACKENDS, default="auto", help=_BACKEND_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="limit per file (default 10)")
    p.add_argument("--max-files", type=_positive, default=16, help="files per request (default 16)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log detail",
    )
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from restoreae.web.app import serve_command

    return serve_command(args)


# --------------------------------------------------------------------------- demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="restore the bundled samples and write a side-by-side PNG")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from restoreae.restore.demo import demo_command

    return demo_command(args)


def build_parser() -> argparse.ArgumentParser:
    from restoreae import __version__

    parser = argparse.ArgumentParser(
        prog="restoreae", description=DESCRIPTION, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"restoreae {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=_HelpFormatter),
    )
    for add in (
        _add_build_data,
        _add_preview_damage,
        _add_models,
        _add_train,
        _add_eval,
        _add_restore,
        _add_restore_page,
        _add_export,
        _add_serve,
        _add_demo,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RestoreAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            "error: out of memory (try smaller inputs or a smaller --batch-size)", file=sys.stderr
        )
        return 1
    except OSError as exc:  # the system's own one-line reason: disk full, permission, port in use
        where = f"{exc.filename}: " if exc.filename else ""
        reason = (
            "no space left on device"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else (exc.strerror or str(exc)).lower()
        )
        print(f"error: {where}{reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
