"""Leaderboard (Markdown + JSON) and a self-contained HTML report from an evaluation's results.

The HTML page is the Jinja2 template ``templates/report.html.j2`` (package data, autoescaped);
this module computes the cells it shows.

The results object is the JSON-ready dict written to ``metrics.json`` by
:mod:`restoreae.evaluate.runner`::

    {"format": 1, "settings": {...}, "main_set": "mixed",
     "sets": {set_name: {"ops": [...], "k": int, "n": int, "ocr_clean": float|None,
                         "ocr_damaged": float|None}},
     "models": [{"name", "kind" ("baseline"|"checkpoint"), "source", "params", "gflops",
                 "latency_ms": {"batch1", "batched", "batch_size"} | None,
                 "sets": {set_name: {"psnr", "ssim", "mae", "ocr", "readability_recovered"}}}]}

The quality figures are the registered metrics (:data:`restoreae.evaluate.metrics.METRICS`, by
name; a newly registered one gets its own leaderboard column), means over the glyphs of a set;
OCR figures are shares in [0, 1] (shown as percentages); ``None`` marks what was not measured
(``--no-ocr``, ``--no-latency``).
"""

from __future__ import annotations

import base64
import functools
import json
import math
from typing import Any

from restoreae.evaluate.metrics import METRICS, table_metrics

__all__ = ["leaderboard_rows", "leaderboard_markdown", "per_damage_markdown", "render_html"]


def _fmt(value: float | None, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value * scale:{spec}}{suffix}"


#: PSNR that counts as perfect in the ranking score (dB); higher is clipped.
SCORE_PSNR_DB = 40.0
#: How the leaderboard ranks (also printed under the table).
SCORE_RULE = (
    f"score = mean of PSNR/{SCORE_PSNR_DB:.0f} dB (clipped to 1), SSIM and, when measured, "
    "OCR restored; ranked by score, then PSNR"
)


def ranking_score(psnr: float, ssim: float, ocr: float | None = None) -> float:
    """The leaderboard's score in [0, 1]: the mean of ``min(psnr / 40 dB, 1)``, ``ssim`` and
    (when not None) ``ocr`` (share read correctly). No single metric decides: a model that
    gains PSNR by blurring (SSIM falling, e.g. 0.31 after 60 steps) ranks below the damaged
    input it was given."""
    p = 1.0 if math.isinf(psnr) and psnr > 0 else max(0.0, min(psnr / SCORE_PSNR_DB, 1.0))
    parts = [p, float(ssim)] + ([float(ocr)] if ocr is not None else [])
    return sum(parts) / len(parts)


def leaderboard_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model on the main set, ranked by :func:`ranking_score` (then PSNR), best
    first (see :data:`SCORE_RULE`).

    Row keys: ``rank``, ``score``, ``name``, ``kind``, ``params``, ``gflops``, one per registered
    metric (``psnr``, ``ssim``, ``mae``), ``ocr``, ``readability_recovered``,
    ``latency_ms_batch1``, ``latency_ms_batched``, ``batch_size``, ``per_damage`` (set name →
    the metrics, ``ocr``, ``readability_recovered``).
    """
    main = results["main_set"]
    rows = []
    for m in results["models"]:
        q = m["sets"][main]
        lat = m.get("latency_ms") or {}
        rows.append(
            {
                "name": m["name"],
                "kind": m["kind"],
                "params": m.get("params"),
                "gflops": m.get("gflops"),
                **{name: q.get(name) for name in METRICS},
                "ocr": q.get("ocr"),
                "readability_recovered": q.get("readability_recovered"),
                "latency_ms_batch1": lat.get("batch1"),
                "latency_ms_batched": lat.get("batched"),
                "batch_size": lat.get("batch_size"),
                "per_damage": {s: v for s, v in m["sets"].items() if s != main},
                "score": ranking_score(q["psnr"], q["ssim"], q.get("ocr")),
            }
        )
    rows.sort(key=lambda r: (-r["score"], -r["psnr"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def _header() -> list[str]:
    """The leaderboard's columns: one per registered metric between GFLOPs and OCR."""
    return [
        "#",
        "model",
        "kind",
        "score",
        "params (M)",
        "GFLOPs",
        *(m.label for m in METRICS.values()),
        "OCR restored",
        "readability recovered",
        "CPU ms/glyph (b=1)",
        "CPU ms/glyph (batched)",
    ]


def _row_cells(r: dict[str, Any]) -> list[str]:
    params = r["params"]
    return [
        str(r["rank"]),
        r["name"],
        r["kind"],
        _fmt(r["score"], ".3f"),
        "—" if not params else f"{params / 1e6:.2f}",
        _fmt(r["gflops"], ".3f") if r["gflops"] else "—",
        *(_fmt(r.get(name), m.fmt) for name, m in METRICS.items()),
        _fmt(r["ocr"], ".1f", 100, "%"),
        _fmt(r["readability_recovered"], ".1f", 100, "%"),
        _fmt(r["latency_ms_batch1"], ".2f"),
        _fmt(r["latency_ms_batched"], ".2f"),
    ]


def _conventions() -> str:
    """The registered metrics' conventions, one clause each."""
    return "; ".join(m.convention for m in METRICS.values() if m.convention)


def _cells_note() -> str:
    """What a per-damage cell shows: the compact tables' metrics, then OCR."""
    return " / ".join([*(m.label for m in table_metrics()), "OCR restored"])


def _md_table(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines)


def _summary_line(results: dict[str, Any], markdown: bool = True) -> str:
    st = results["settings"]
    main = results["sets"][results["main_set"]]
    q = "`" if markdown else ""
    parts = [
        f"split {q}{st['split']}{q}",
        f"{main['n']} glyphs",
        f"size {st['size']}",
        f"seed {st['seed']}",
        f"damage: {', '.join(main['ops'])} (k={main['k']})",
    ]
    if main.get("ocr_clean") is not None:
        parts.append(f"OCR clean {main['ocr_clean'] * 100:.1f}%")
        parts.append(f"OCR damaged {main['ocr_damaged'] * 100:.1f}%")
    return "; ".join(parts)


def leaderboard_markdown(results: dict[str, Any]) -> str:
    """The leaderboard as a Markdown table preceded by a one-line description of the set."""
    rows = leaderboard_rows(results)
    table = _md_table(_header(), [_row_cells(r) for r in rows])
    bs = next((r["batch_size"] for r in rows if r["batch_size"]), None)
    notes = (
        f"Ranking: {SCORE_RULE}. "
        f"{'/'.join(m.short for m in METRICS.values())}: means over glyphs ({_conventions()}). "
        "OCR: share read exactly as the right character by PP-OCRv4; readability recovered = "
        "OCR restored / OCR clean. GFLOPs: per glyph (2 × MACs). "
        f"Latency: CPU, batch 1 and batch {bs if bs else '—'}."
    )
    return f"{_summary_line(results)}\n\n{table}\n\n{notes}\n"


def _per_damage_table(results: dict[str, Any], describe: bool) -> tuple[list[str], list[list[str]]]:
    names = [m["name"] for m in results["models"]]
    header = ["damage set", "OCR clean", "OCR damaged", *names]
    body = []
    for s, info in results["sets"].items():
        label = f"{s} ({', '.join(info['ops'])}, k={info['k']})" if describe else s
        cells = [
            label,
            _fmt(info.get("ocr_clean"), ".1f", 100, "%"),
            _fmt(info.get("ocr_damaged"), ".1f", 100, "%"),
        ]
        for m in results["models"]:
            q = m["sets"].get(s)
            if q is None:
                cells.append("—")
                continue
            cell = " / ".join(_fmt(q.get(m.name), m.table_fmt) for m in table_metrics())
            if q.get("ocr") is not None:
                cell += f" / {_fmt(q['ocr'], '.0f', 100, '%')}"
            cells.append(cell)
        body.append(cells)
    return header, body


def per_damage_markdown(results: dict[str, Any]) -> str:
    """Per damage set × model: ``PSNR / SSIM / OCR`` cells (the metrics of the compact tables,
    :func:`~restoreae.evaluate.metrics.table_metrics`) and the damaged OCR per set."""
    header, body = _per_damage_table(results, describe=False)
    return _md_table(header, body) + f"\n\nCells: {_cells_note()}.\n"


#: The report's template (package data: ``restoreae/evaluate/templates/``).
REPORT_TEMPLATE = "report.html.j2"


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    """The Jinja2 environment of the report templates: autoescaped (model names and settings come
    from user files), undefined names an error, loaded from the installed package."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("restoreae.evaluate", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(results: dict[str, Any], grid_png: bytes | None = None) -> str:
    """A self-contained HTML page: settings, leaderboard, per-damage table, the grid (base64 PNG)
    and the metric conventions. No external resources. Rendered from the template
    :data:`REPORT_TEMPLATE` with autoescaping: every value is inserted as text."""
    rows = leaderboard_rows(results)
    damage_header, damage_rows = _per_damage_table(results, describe=True)
    conventions = (
        f"{_conventions()}. Each is averaged over the glyphs of a set. OCR: PP-OCRv4 recognition "
        "(rapidocr_onnxruntime 1.4.4) reads each glyph rendered black on white with a margin at "
        "48 px height; a glyph counts as read when the reading, stripped of whitespace and "
        "punctuation, is exactly the expected character. Readability recovered = OCR accuracy "
        "on restored glyphs / on clean glyphs. Per-damage sets apply one damage op alone (k=1) "
        "to the same glyphs."
    )
    template = _environment().get_template(REPORT_TEMPLATE)
    return template.render(
        split=results["settings"]["split"],
        summary=_summary_line(results, markdown=False),
        main_set=results["main_set"],
        score_rule=SCORE_RULE,
        board_header=_header(),
        board_rows=[_row_cells(r) for r in rows],
        cells_note=_cells_note(),
        damage_header=damage_header,
        damage_rows=damage_rows,
        grid_b64=None if grid_png is None else base64.b64encode(grid_png).decode("ascii"),
        conventions=conventions,
        settings=json.dumps(results["settings"], ensure_ascii=False, indent=2),
    )
