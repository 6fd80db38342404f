"""Tables and files of the quality suite (:mod:`restoreae.evaluate.quality`).

The results object (written to ``quality.json``)::

    {"format": 1, "settings": {...}, "notes": [str],
     "sets": {set: {"n", "source", "ocr_clean", "seconds",
                    "conditions": {cond: {"kind": "main"|"op", "ops", "k",
                                          "variants": {variant: {"psnr", "ssim", "ocr",
                                                                 "readability_recovered"}}}}}}}

(``psnr``, ``ssim``: the metrics of :func:`~restoreae.evaluate.metrics.table_metrics`.)

Variants: ``input`` (the damaged input), ``restored_ref`` (restored with the character's
reference), ``restored_noref`` (restored with an empty reference channel). PSNR/SSIM are means
over images against the clean image (for ``none``: the undamaged input); OCR is a share in
[0, 1]; ``None`` marks what was not measured.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from restoreae.evaluate.metrics import table_metrics
from restoreae.evaluate.results_json import results_json
from restoreae.utils import atomic_write

__all__ = ["quality_markdown", "main_table", "per_op_table", "write_quality", "csv_columns"]


def csv_columns() -> tuple[str, ...]:
    """The columns of ``quality-images.csv``: one per metric of the quality table
    (:func:`~restoreae.evaluate.metrics.table_metrics`) after the image's description."""
    return (
        "set",
        "id",
        "path",
        "char",
        "alt",
        "size",
        "damage",
        "ops",
        "variant",
        *(m.name for m in table_metrics()),
        "reading",
        "correct",
    )


_LABELS = {
    "input": "damaged input",
    "restored_ref": "restored, with reference",
    "restored_noref": "restored, no reference",
}


def _num(value: float | None, spec: str) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:{spec}}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _md(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def main_table(results: dict[str, Any]) -> str:
    """Per set: the clean images (OCR), then each main damage condition (``none`` first: the
    undamaged inputs restored) with its input and restored rows."""
    metrics = table_metrics()
    header = ["set", "damage", "images", "n", *(m.label for m in metrics), "OCR"]
    header.append("readability recovered")
    body: list[list[str]] = []
    for name, s in results["sets"].items():
        blank = ["—"] * len(metrics)
        body.append([name, "—", "clean", str(s["n"]), *blank, _pct(s["ocr_clean"]), "—"])
        for cname, c in s["conditions"].items():
            if c["kind"] != "main":
                continue
            for v, q in c["variants"].items():
                label = _LABELS[v]
                if cname == "none":
                    label = label.replace("restored", "undamaged → restored")
                body.append(
                    [
                        name,
                        cname,
                        label,
                        str(s["n"]),
                        *(_num(q.get(m.name), m.table_fmt) for m in metrics),
                        _pct(q["ocr"]),
                        _pct(q["readability_recovered"]),
                    ]
                )
    return _md(header, body)


def per_op_table(results: dict[str, Any]) -> str | None:
    """One row per set × single-op condition; cells ``PSNR / SSIM / OCR`` (the metrics of
    :func:`~restoreae.evaluate.metrics.table_metrics`). None without op sets."""
    variants = ["input", "restored_ref", "restored_noref"]
    with_ocr = any(
        q.get("ocr") is not None
        for s in results["sets"].values()
        for c in s["conditions"].values()
        if c["kind"] == "op"
        for q in c["variants"].values()
    )
    body: list[list[str]] = []
    for name, s in results["sets"].items():
        for cname, c in s["conditions"].items():
            if c["kind"] != "op":
                continue
            cells = []
            for v in variants:
                q = c["variants"].get(v)
                if q is None:
                    cells.append("—")
                    continue
                cell = " / ".join(_num(q.get(m.name), m.table_fmt) for m in table_metrics())
                cells.append(cell + (f" / {_pct(q['ocr'])}" if with_ocr else ""))
            body.append([name, cname, *cells])
    if not body:
        return None
    return _md(["set", "op", *(_LABELS[v] for v in variants)], body)


def _shorts(sep: str) -> str:
    """The short names of the quality table's metrics ("PSNR/SSIM")."""
    return sep.join(m.short for m in table_metrics())


def quality_markdown(results: dict[str, Any]) -> str:
    """The whole report: settings line, main table, per-op table, notes (Markdown)."""
    st = results["settings"]
    parts = [
        f"model `{st['model']}` ({st['backend']}, {st['device']}); "
        f"{st['num']} images per set (seed {st['seed']}); damage "
        + ", ".join(f"`{d}`" for d in st["damage"])
        + "; restored with `Restorer.restore_many` at each image's own size, polarity auto; "
        + (f"OCR PP-OCRv4 at width {st['ocr_width']}" if st["ocr"] else "no OCR")
        + f"; {st['seconds']:.0f} s.",
        "",
        main_table(results),
        "",
        f"{_shorts('/')}: means over images against the clean image (uint8, no crop); for `none` "
        "against the undamaged input itself. OCR: share read as the character (or its `alt` "
        "form); readability recovered = OCR / OCR of the clean images.",
    ]
    ops = per_op_table(results)
    if ops is not None:
        cells = _shorts(" / ") + (" / OCR" if st.get("per_op_ocr") else "")
        parts += ["", f"Per damage op (one op at a time; cells {cells}):", "", ops]
    for note in results.get("notes") or []:
        parts += ["", f"Note: {note}"]
    return "\n".join(parts) + "\n"


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    columns = csv_columns()
    w.writerow(columns)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if v is None:
                cells.append("")
            elif isinstance(v, float):
                cells.append("inf" if math.isinf(v) else f"{v:.4f}")
            else:
                cells.append(str(v))
        w.writerow(cells)
    return buf.getvalue().encode("utf-8")


def write_quality(
    out: Path, results: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Path]:
    """Write ``quality.md``, ``quality.json`` and ``quality-images.csv`` into ``out`` atomically;
    returns their paths by name. Non-finite numbers are written as the strings ``"inf"``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "quality.md": atomic_write(out / "quality.md", quality_markdown(results).encode("utf-8")),
        "quality.json": atomic_write(out / "quality.json", results_json(results)),
        "quality-images.csv": atomic_write(out / "quality-images.csv", _csv_bytes(rows)),
    }
