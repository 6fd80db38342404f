"""``restoreae restore``: restore image files and folders from the command line.

Inputs are files or folders (searched recursively for ``.png .jpg .jpeg .tif .tiff .bmp .webp``).
Each restored image is written under ``--output`` with the input's file name (a folder input's
relative path is kept) and extension when PIL can write it, else ``.png``; 16-bit inputs are
written as 8-bit. With ``--side-by-side`` a ``NAME.compare.png`` (input | reference | restored)
is written next to it. Writes are atomic. A bad input is reported on stderr by name and the rest
are still restored; the exit status is 1 if any input failed, 0 otherwise.

The character shown in an image (for models with a reference channel) comes from ``--chars-csv``
(columns ``path,char``; ``path`` matched as given, resolved, relative to the CSV, or by file name)
and otherwise from ``--char``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from restoreae.errors import RestoreAEError
from restoreae.restore.preprocess import (
    IMAGE_EXTENSIONS,
    Prepared,
    load_image,
    prepare,
    to_input_polarity,
)
from restoreae.utils import atomic_write

_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputItem:
    """One input file and its output path relative to ``--output``."""

    path: Path
    given: str
    rel: Path


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[InputItem], list[str]]:
    """Expand files and folders (recursively, image extensions only, sorted).

    Returns ``(items, errors)``; ``errors`` name the inputs that do not exist or hold no image.
    """
    items: list[InputItem] = []
    errors: list[str] = []
    for given in inputs:
        p = Path(given)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                errors.append(
                    f"{p}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
            items.extend(InputItem(f, str(f), f.relative_to(p)) for f in found)
        elif p.is_file():
            items.append(InputItem(p, str(given), Path(p.name)))
        else:
            errors.append(f"{p}: no such file or folder")
    return items, errors


class CharMap:
    """``path,char`` rows of a CSV: look up the character of an input file.

    A header row ``path,char`` is optional. Lookup order: the path as given, the resolved path,
    then the file name (when no two rows give one file name different characters).
    """

    def __init__(self, csv_path: str | Path) -> None:
        from restoreae.restore.api import validate_char

        self.csv_path = Path(csv_path)
        self.by_path: dict[str, str] = {}
        self.by_resolved: dict[Path, str] = {}
        self.by_name: dict[str, str | None] = {}
        try:
            text = self.csv_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise RestoreAEError(f"{self.csv_path}: no such CSV file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RestoreAEError(f"{self.csv_path}: cannot read as UTF-8 text ({exc})") from exc
        try:
            rows = list(csv.reader(text.splitlines()))
        except csv.Error as exc:
            raise RestoreAEError(f"{self.csv_path}: malformed CSV ({exc})") from exc
        base = self.csv_path.parent
        for lineno, row in enumerate(rows, start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if lineno == 1 and [c.strip().lower() for c in row] == ["path", "char"]:
                continue
            if len(row) != 2:
                raise RestoreAEError(
                    f"{self.csv_path}:{lineno}: expected 2 columns path,char, got {len(row)}: {row}"
                )
            path, char = row[0].strip(), row[1]
            if not path:
                raise RestoreAEError(f"{self.csv_path}:{lineno}: empty path")
            try:
                char = validate_char(char)
            except RestoreAEError as exc:
                raise RestoreAEError(f"{self.csv_path}:{lineno}: {exc}") from None
            self.by_path[path] = char
            for cand in (Path(path), base / path):
                self.by_resolved[cand.resolve()] = char
            name = Path(path).name
            if name in self.by_name and self.by_name[name] != char:
                self.by_name[name] = None  # ambiguous file name
            else:
                self.by_name[name] = char
        if not self.by_path:
            raise RestoreAEError(f"{self.csv_path}: no path,char rows")

    def lookup(self, path: Path, given: str | None = None) -> str | None:
        """The character of ``path`` (None when the CSV does not list it)."""
        if given is not None and given in self.by_path:
            return self.by_path[given]
        if str(path) in self.by_path:
            return self.by_path[str(path)]
        resolved = path.resolve()
        if resolved in self.by_resolved:
            return self.by_resolved[resolved]
        if path.name in self.by_name:
            char = self.by_name[path.name]
            if char is None:
                raise RestoreAEError(
                    f"{path}: {self.csv_path} lists file name {path.name!r} with different "
                    "characters; give its path instead"
                )
            return char
        return None

    def __len__(self) -> int:
        return len(self.by_path)


# --------------------------------------------------------------------------- outputs
def output_suffix(suffix: str) -> tuple[str, str]:
    """``(suffix, PIL format)`` for writing an image named like the input (``.png`` fallback)."""
    Image.init()
    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is not None and fmt in Image.SAVE:
        return suffix, fmt
    return ".png", "PNG"


def save_image(arr: np.ndarray, path: str | Path, fmt: str | None = None) -> Path:
    """Write uint8 (H, W) or (H, W, 3) ``arr`` to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    if fmt is None:
        _, fmt = output_suffix(path.suffix)
    img = Image.fromarray(np.ascontiguousarray(arr))
    opts = _SAVE_OPTIONS.get(fmt, {})
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **opts))


def _label_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def side_by_side(
    panels: Sequence[np.ndarray | None],
    labels: Sequence[str],
    height: int = 192,
    square: bool = False,
) -> np.ndarray:
    """One row of labelled panels: uint8 grey images (None: a blank grey panel), each scaled to
    ``height`` pixels (aspect kept; with ``square`` letterboxed into height×height cells on grey),
    framed, labels above. Returns uint8 (h, w).
    """
    pad, label_h = 6, (max(14, height // 10) if any(labels) else 0)
    scaled: list[np.ndarray] = []
    for panel in panels:
        if panel is None:
            scaled.append(np.full((height, height), 200, np.uint8))
            continue
        ph, pw = panel.shape[:2]
        scale = height / max(ph, pw) if square else height / ph
        nh, nw = max(1, round(ph * scale)), max(1, round(pw * scale))
        resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
        img = np.asarray(Image.fromarray(panel).resize((nw, nh), resample))
        if square:
            cell = np.full((height, height), 200, np.uint8)
            top, left = (height - nh) // 2, (height - nw) // 2
            cell[top : top + nh, left : left + nw] = img
            img = cell
        scaled.append(img)
    total_w = sum(p.shape[1] for p in scaled) + pad * (len(scaled) + 1)
    canvas = Image.new("L", (total_w, height + label_h + 2 * pad), 255)
    draw = ImageDraw.Draw(canvas)
    font = _label_font(max(10, label_h - 4))
    x = pad
    for panel, label in zip(scaled, labels, strict=True):
        canvas.paste(Image.fromarray(panel), (x, label_h + pad))
        draw.rectangle(
            (x - 1, label_h + pad - 1, x + panel.shape[1], label_h + pad + height), outline=128
        )
        draw.text((x, 2), label, fill=0, font=font)
        x += panel.shape[1] + pad
    return np.asarray(canvas)


# --------------------------------------------------------------------------- command
def check_single_character(grey: np.ndarray, path: str | Path) -> None:
    """Raise a RestoreAEError naming ``path`` when the image (uint8 (H, W)) holds several
    separate characters (:func:`restoreae.restore.page.count_characters` ≥ 2): restoring it as one
    glyph would smear them together."""
    from restoreae.restore.page import count_characters

    n = count_characters(grey)
    if n >= 2:
        raise RestoreAEError(
            f"{path}: the image holds {n} characters, and `restoreae restore` restores one "
            f"character per image; restore a page, column or row with "
            f"`restoreae restore-page {path} -o DIR` (or pass --single to restore it as one "
            "character anyway)"
        )


class _Reporter:
    """Prints per-file errors and warnings without breaking the progress bar."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.failed: list[str] = []

    def error(self, message: str) -> None:
        self.failed.append(message)
        self.bar.write(f"error: {message}", file=sys.stderr)

    def warning(self, message: str) -> None:
        self.bar.write(f"warning: {message}", file=sys.stderr)


def _unique_dest(dest: Path, used: set[Path]) -> Path:
    cand, n = dest, 2
    while cand in used:
        cand = dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
        n += 1
    used.add(cand)
    return cand


def restore_command(args: argparse.Namespace) -> int:
    """Run ``restoreae restore``; returns 0 when every input was restored, 1 otherwise."""
    from tqdm import tqdm

    from restoreae.restore.api import Restorer, validate_char

    default_char = validate_char(args.char) if getattr(args, "char", None) else None
    charmap = CharMap(args.chars_csv) if getattr(args, "chars_csv", None) else None
    onnx_path = getattr(args, "onnx", None)
    backend = "onnx" if onnx_path is not None else getattr(args, "backend", "torch")
    polarity = getattr(args, "polarity", "auto") or "auto"
    batch_size = int(getattr(args, "batch_size", 16) or 16)
    if batch_size < 1:
        raise RestoreAEError(f"--batch-size must be ≥ 1, got {batch_size}")
    no_reference = bool(getattr(args, "no_reference", False))
    side = bool(getattr(args, "side_by_side", False))
    single = bool(getattr(args, "single", False))
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise RestoreAEError(f"{out_dir}: --output exists and is not a folder")

    items, input_errors = collect_inputs(args.inputs)
    restorer = Restorer(
        getattr(args, "model", None),
        backend=backend,
        device=getattr(args, "device", "cpu") or "cpu",
        onnx_path=onnx_path,
    )
    used: set[Path] = set()
    written = 0
    with (
        tqdm(total=len(items), unit="img", disable=None, file=sys.stderr) as bar,
        warnings.catch_warnings(),
    ):
        report = _Reporter(bar)
        show_other = warnings.showwarning

        def show(message, category, *rest, **kw):  # restorer notes as "warning: ..." lines
            if issubclass(category, UserWarning):
                report.warning(str(message))
            else:
                show_other(message, category, *rest, **kw)

        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = show
        for msg in input_errors:
            report.error(msg)
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            ready: list[tuple[InputItem, Prepared, str | None, Path, str]] = []
            inputs: list[np.ndarray] = []
            for item in chunk:
                try:
                    suffix, fmt = output_suffix(item.path.suffix)
                    dest = _unique_dest((out_dir / item.rel).with_suffix(suffix), used)
                    if dest.resolve() == item.path.resolve():
                        raise RestoreAEError(f"{item.path}: output would overwrite the input")
                    char = charmap.lookup(item.path, item.given) if charmap else None
                    char = char or default_char
                    grey, info = load_image(item.path)
                    if not single:
                        check_single_character(grey, item.path)
                    prep = prepare(grey, restorer.img_size, polarity)
                    prep.colour = info.get("rgb")
                    x = restorer.model_input(prep, char, use_reference=not no_reference)
                except RestoreAEError as exc:
                    msg = str(exc)
                    report.error(msg if str(item.path) in msg else f"{item.path}: {msg}")
                    bar.update(1)
                    continue
                ready.append((item, prep, None if no_reference else char, dest, fmt))
                inputs.append(x)
            if not ready:
                continue
            restored = restorer.run(np.stack(inputs))
            for i, (item, prep, char, dest, fmt) in enumerate(ready):
                try:
                    out = restorer.finish(prep, restored[i])
                    save_image(out, dest, fmt)
                    if side:
                        ref = None
                        if char is not None and restorer.uses_reference:
                            ref = to_input_polarity(restorer.reference(char), prep)
                        panel = side_by_side(
                            [prep.grey, ref, out],
                            [
                                "input",
                                "reference" if ref is not None else "no reference",
                                "restored",
                            ],
                        )
                        save_image(panel, dest.with_name(f"{dest.stem}.compare.png"), "PNG")
                    written += 1
                except (RestoreAEError, OSError, ValueError) as exc:
                    report.error(f"{item.path}: cannot write {dest} ({exc})")
                bar.update(1)
    failed = len(report.failed)
    print(
        f"restored {written} of {len(items)} image(s) into {out_dir}"
        + (f"; {failed} failed" if failed else ""),
        file=sys.stdout,
    )
    return 1 if failed else 0
