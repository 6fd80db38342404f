"""``restoreae restore``: restore image files and folders from the command line.

Inputs are files or folders (searched recursively for ``.png .jpg .jpeg .tif .tiff .bmp .webp``).
Each restored image is written under ``--output`` (default ``results/``) as
``NAME[_SUFFIX].EXT`` (a folder input's relative path is kept): ``--ext same`` keeps the input's
extension when PIL can write it (else ``.png``), ``--ext png`` / ``--ext jpg`` choose one; 16-bit
inputs are written as 8-bit, TIFFs deflate-compressed. An existing output is replaced only with
``--overwrite``. With ``--side-by-side`` a ``NAME.compare.png`` (input | reference | restored) is
written next to it. Writes are atomic and durable; temporary files left in ``--output`` by a
killed run are removed on start.

Each picture must show one character: a blank one (no ink) is written unchanged with a warning,
one showing several characters is an error (crop it, or use ``restoreae restore-page``); ``--force``
restores them anyway. A bad input is reported on stderr by name (whatever went wrong, including
running out of memory) and the rest are still restored; the exit status is 1 if any input failed,
0 otherwise.

The character shown in an image (for models with a reference channel) comes from ``--chars-csv``
(columns ``path,char``; ``path`` matched as given, resolved, relative to the CSV, or by file name)
and, for files the CSV does not list, from ``--char``. A file listed nowhere is an error naming it
(with a reference model and without ``--char`` / ``--no-reference``); CSV rows that match no input
are named with their line. Any character a font draws may be given (simplified, traditional, a
variant); ``auto`` (as ``--char`` or in the CSV) lets the recogniser choose it
(:mod:`restoreae.restore.auto`). ``OUTPUT/restore-results.csv`` lists, per restored input, the
output, the character used and where it came from, ``auto``'s confidence and candidates, and the
form and font of the reference.

Input and output files: :mod:`restoreae.restore.files`; ``--chars-csv``:
:mod:`restoreae.restore.charmap`; the side-by-side picture: :func:`restoreae.figures.panel_row`.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.figures import panel_row
from restoreae.restore.charmap import CharMap
from restoreae.restore.files import (
    DEFAULT_OUTPUT,
    EXTENSIONS,
    InputItem,
    collect_inputs,
    output_path,
    save_image,
)
from restoreae.restore.inkcheck import NotOneCharacterError, check_one_character
from restoreae.restore.preprocess import (
    Prepared,
    load_image,
    prepare,
    to_input_polarity,
)
from restoreae.utils import atomic_write, clean_stale_temp_files

#: The per-input table written into ``--output``.
RESULTS_CSV = "restore-results.csv"
RESULTS_COLUMNS = (
    "input",
    "output",
    "char",
    "char_source",
    "confidence",
    "candidates",
    "reference_form",
    "reference_font",
)


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


def cli_reference_error(exc: RestoreAEError) -> str:
    """A missing reference in the CLI's words (flags instead of the API's ``char=``)."""
    from restoreae.restore.api import NoReferenceError

    if isinstance(exc, NoReferenceError):
        return (
            f"no installed font draws {exc.char!r} (U+{ord(exc.char):04X}), so it has no "
            "reference glyph; give another form of the character with --char or --chars-csv, "
            "use --char auto to let the recogniser choose, or restore with --no-reference"
        )
    return str(exc)


def _describe_failure(path: Path, exc: BaseException) -> str:
    """One line for a file that could not be restored (no traceback)."""
    if isinstance(exc, RestoreAEError):
        msg = cli_reference_error(exc)
        return msg if str(path) in msg else f"{path}: {msg}"
    if isinstance(exc, MemoryError):
        return f"{path}: not enough memory to restore this picture (skipped)"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
        return f"{path}: cannot write{where} ({exc.strerror.lower()})"
    return f"{path}: cannot restore ({type(exc).__name__}: {exc})"


def _run_batch(restorer, inputs: list[np.ndarray]) -> np.ndarray | None:
    """The model's output for a batch, or None when it fails (the caller retries one by one)."""
    try:
        return restorer.run(np.stack(inputs))
    except (MemoryError, RuntimeError):
        if len(inputs) == 1:
            raise
        return None


@dataclass
class _Ready:
    """An input prepared for the model, with what the results table reports about it."""

    item: InputItem
    prep: Prepared
    dest: Path
    fmt: str
    char: str | None
    source: str  # given | csv | auto | none
    label: str = ""
    confidence: float | None = None
    candidates: str = ""
    form: str = ""
    font: str = ""

    def row(self) -> dict[str, str]:
        """This input's line of ``restore-results.csv`` (:data:`RESULTS_COLUMNS`)."""
        return {
            "input": str(self.item.path),
            "output": str(self.dest),
            "char": self.char or "",
            "char_source": self.source,
            "confidence": "" if self.confidence is None else f"{self.confidence:.4f}",
            "candidates": self.candidates,
            "reference_form": self.form,
            "reference_font": self.font,
        }


def _results_rows(rows: list[dict[str, str]], out_dir: Path) -> None:
    """Write ``out_dir/restore-results.csv`` (atomically) with ``rows`` under
    :data:`RESULTS_COLUMNS`."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULTS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / RESULTS_CSV, buf.getvalue().encode("utf-8"))


def _pick_chars(restorer, autos: list[_Ready], report: _Reporter, bar) -> list[np.ndarray]:
    """Run ``auto`` on ``autos`` (batched; one by one if the batch fails); fills each entry's
    choice and returns the kept model outputs in order. A failed entry is reported and removed."""
    try:
        picked = restorer.picker().pick([e.prep for e in autos])
    except (MemoryError, RuntimeError):
        picked = None  # retried one by one below, so only the failing input is reported
    kept: list[tuple[_Ready, np.ndarray]] = []
    for i, entry in enumerate(list(autos)):
        try:
            choice, y = picked[i] if picked is not None else restorer.picker().pick([entry.prep])[0]
            entry.char, entry.confidence = choice.char, choice.confidence
            entry.candidates = " ".join(f"{c}:{p:.3f}" for c, p in choice.candidates)
            entry.label = choice.describe()
            if choice.char is not None and restorer.uses_reference:
                ref = restorer.reference_glyph(choice.char)
                entry.form, entry.font = ref.drawn, ref.font
                entry.label += f"\n{ref.describe()}"
            kept.append((entry, y))
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - reported per file
            report.error(_describe_failure(entry.item.path, exc))
            bar.update(1)
    autos[:] = [e for e, _ in kept]
    return [y for _, y in kept]


def restore_command(args: argparse.Namespace) -> int:
    """Run ``restoreae restore``; returns 0 when every input was restored, 1 otherwise."""
    from tqdm import tqdm

    from restoreae.devices import check_device
    from restoreae.restore.api import AUTO, Restorer, validate_char

    given = getattr(args, "char", None)
    if given is not None and given.strip() == AUTO:
        default_char: str | None = AUTO
    else:
        default_char = validate_char(given, "--char") if given else None
    charmap = CharMap(args.chars_csv) if getattr(args, "chars_csv", None) else None
    backend = getattr(args, "backend", None) or "auto"
    polarity = getattr(args, "polarity", "auto") or "auto"
    batch_size = getattr(args, "batch_size", 16)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise RestoreAEError(f"--batch-size must be a whole number ≥ 1, got {batch_size!r}")
    no_reference = bool(getattr(args, "no_reference", False))
    if no_reference and default_char == AUTO:
        raise RestoreAEError("--char auto and --no-reference contradict each other; pick one")
    side = bool(getattr(args, "side_by_side", False))
    single = bool(getattr(args, "single", False))
    force = bool(getattr(args, "force", False))
    overwrite = bool(getattr(args, "overwrite", False))
    suffix = str(getattr(args, "suffix", "") or "")
    if any(c in suffix for c in "/\\") or suffix in (".", ".."):
        raise RestoreAEError(f"--suffix must not contain a path separator, got {suffix!r}")
    ext = getattr(args, "ext", "same") or "same"
    if ext not in EXTENSIONS:
        raise RestoreAEError(f"--ext must be one of {', '.join(EXTENSIONS)}, got {ext!r}")
    device = check_device(getattr(args, "device", "cpu") or "cpu")
    out_dir = Path(args.output) if getattr(args, "output", None) is not None else DEFAULT_OUTPUT
    if out_dir.exists() and not out_dir.is_dir():
        raise RestoreAEError(f"{out_dir}: --output exists and is not a folder")

    items, input_errors = collect_inputs(args.inputs)
    restorer = Restorer(
        getattr(args, "model", None),
        backend=backend,
        device=device,
    )
    wants_auto = default_char == AUTO or (charmap is not None and charmap.has_auto)
    if wants_auto and not no_reference:
        restorer.picker()  # load the recogniser now: a missing extra fails before any work
    stale = clean_stale_temp_files(out_dir, recursive=True)
    used: set[Path] = set()
    rows: list[dict[str, str]] = []
    written = unchanged = 0
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
        if stale:
            report.warning(
                f"removed {len(stale)} temporary file(s) left in {out_dir} by an interrupted run"
            )
        for msg in input_errors:
            report.error(msg)
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            ready: list[_Ready] = []
            inputs: list[np.ndarray] = []
            autos: list[_Ready] = []
            for item in chunk:
                try:
                    dest, fmt = output_path(item, out_dir, suffix, ext)
                    dest = _unique_dest(dest, used)
                    if dest.resolve() == item.path.resolve():
                        raise RestoreAEError(f"{item.path}: output would overwrite the input")
                    if dest.exists() and not overwrite:
                        raise RestoreAEError(
                            f"{item.path}: {dest} exists; pass --overwrite to replace it "
                            "(or --suffix / -o to write elsewhere)"
                        )
                    char = charmap.lookup(item.path, item.given) if charmap else None
                    source = "csv" if char else "given"
                    char = char or default_char
                    if (
                        charmap is not None
                        and char is None
                        and restorer.uses_reference
                        and not no_reference
                    ):
                        raise RestoreAEError(
                            f"{item.path}: not listed in {charmap.csv_path}; add a line "
                            f"'{item.given},<char>', or pass --char for unlisted files or "
                            "--no-reference"
                        )
                    if no_reference or char is None:
                        char, source = None, "none"
                    grey, info = load_image(item.path)
                    if not force:
                        try:
                            check_one_character(grey, str(item.path))
                        except NotOneCharacterError as exc:
                            if exc.count != 0:  # several: check_single_character says it
                                pass
                            elif dest.suffix.lower() == item.path.suffix.lower():
                                atomic_write(dest, item.path.read_bytes())  # byte for byte
                            else:
                                rgb = info.get("rgb")
                                save_image(grey if rgb is None else rgb, dest, fmt)
                            if exc.count == 0:
                                unchanged += 1
                                report.warning(f"{exc}: written unchanged (--force restores it)")
                                bar.update(1)
                                continue
                    if not (single or force):
                        check_single_character(grey, item.path)
                    prep = prepare(grey, restorer.img_size, polarity, colour=info.get("rgb"))
                    entry = _Ready(item, prep, dest, fmt, char, "auto" if char == AUTO else source)
                    if char == AUTO:
                        autos.append(entry)
                        continue
                    x = restorer.model_input(prep, char, use_reference=not no_reference)
                    if char is not None and restorer.uses_reference:
                        ref = restorer.reference_glyph(char)
                        entry.form, entry.font = ref.drawn, ref.font
                        entry.label = f"reference\n{ref.describe()}"
                except (Exception, MemoryError) as exc:  # noqa: BLE001 - reported per file
                    report.error(_describe_failure(item.path, exc))
                    bar.update(1)
                    continue
                ready.append(entry)
                inputs.append(x)
            restored = _run_batch(restorer, inputs) if inputs else None
            outputs: list[np.ndarray | None] = [
                None if restored is None else restored[i] for i in range(len(inputs))
            ]
            if autos:
                outputs.extend(_pick_chars(restorer, autos, report, bar))
                ready.extend(autos)
            for i, entry in enumerate(ready):
                try:
                    y = outputs[i] if outputs[i] is not None else restorer.run(inputs[i][None])[0]
                    out = restorer.finish(entry.prep, y)
                    save_image(out, entry.dest, entry.fmt)
                    if side:
                        _write_compare(restorer, entry, out)
                    written += 1
                    rows.append(entry.row())
                except (Exception, MemoryError) as exc:  # noqa: BLE001 - reported per file
                    report.error(_describe_failure(entry.item.path, exc))
                bar.update(1)
            del inputs, ready, outputs
        if charmap is not None:
            for msg in charmap.unused():
                report.warning(msg)
        if rows:
            try:
                _results_rows(rows, out_dir)
            except OSError as exc:
                report.error(_describe_failure(out_dir / RESULTS_CSV, exc))
    failed = len(report.failed)
    print(
        f"restored {written} of {len(items)} image(s) into {out_dir}"
        + (f"; {unchanged} written unchanged (no ink)" if unchanged else "")
        + (f"; {failed} failed" if failed else ""),
        file=sys.stdout,
    )
    return 1 if failed else 0


def _write_compare(restorer, entry: _Ready, out: np.ndarray) -> None:
    """``NAME.compare.png``: input | reference (labelled with its form and font) | restored."""
    ref = None
    if entry.char is not None and restorer.uses_reference:
        ref = to_input_polarity(restorer.model_reference(entry.prep, entry.char), entry.prep)
    label = entry.label or ("reference" if ref is not None else "no reference")
    if entry.source == "auto" and ref is None and not entry.label:
        label = "auto: none"
    panel = panel_row([entry.prep.grey, ref, out], ["input", label, "restored"])
    dest = entry.dest
    save_image(panel, dest.with_name(f"{dest.stem}.compare.png"), "PNG")
