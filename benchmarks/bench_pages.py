"""Page benchmark: find, identify and restore every character of generated pages with truth.

Pages are laid out from glyphs of the shipped model's held-out writers (Noto Serif CJK SC, Smiley
Sans; ``--real-dev DIR`` adds real written characters from ``../shared/real-dev``, evaluation
only) by :mod:`restoreae.evaluate.pages`: columns read right to left, jitter, varied spacing,
random grids and seals, either polarity. Two sets:

- ``clean``: clean layout (no damage at all);
- ``damaged``: the glyphs damaged (strokes only) and page-level damage (stone / paper texture,
  cracks across characters, a lost corner, stains).

Reported per set: detection precision and recall (a found box matches a true one when its centre
lies inside it, one to one), identification accuracy (the character given to each true character's
matched box equals it — by OCR, and with the page's true text given as ``text=``, aligned to the
found boxes), page PSNR / SSIM (grey, against the clean page; whole page and inside the true boxes)
before and after restoration, and seconds per page (wall and CPU). ``--speed`` times one
3000 × 2000 page with 96 characters instead.

    python benchmarks/bench_pages.py --pages 10                 # both sets, shipped model
    python benchmarks/bench_pages.py --speed --backend onnx,torch   # the 3000 × 2000 page
    python benchmarks/bench_pages.py --detect-only --pages 40   # layout finder only (fast)
    python benchmarks/bench_pages.py --dbnet --pages 10         # DBNet's columns against ours

``--write`` puts the table in docs/RESULTS.md ("Pages", quality) or docs/PERFORMANCE.md
("Pages", ``--speed``) between ``<!-- bench_pages:... -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from restoreae.data.charsets import GB2312_LEVEL1  # noqa: E402
from restoreae.evaluate.pages import (  # noqa: E402
    PAGE_GLYPH_DAMAGE,
    GlyphSource,
    make_page,
    match_pairs,
    precision_recall,
)


def _grey(a: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a


def page_config(rng: np.random.Generator, damaged: bool) -> dict:
    """Random layout options of one benchmark page."""
    return {
        "n_lines": int(rng.integers(4, 8)),
        "per_line": int(rng.integers(5, 10)),
        "char_size": int(rng.integers(48, 96)),
        "dark_on_light": bool(rng.random() < 0.5),
        "colour": bool(rng.random() < 0.5),
        "grid": bool(rng.random() < 0.5),
        "seal": bool(rng.random() < 0.5),
        "damage": damaged,
        "glyph_damage": PAGE_GLYPH_DAMAGE if damaged else None,
    }


def _box_mask(shape: tuple[int, ...], boxes: np.ndarray) -> np.ndarray:
    """bool (H, W): inside any of the true character boxes."""
    m = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


def _psnr_in(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of uint8 grey ``a`` against ``b`` over the pixels of ``mask``."""
    d = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(d * d)) if d.size else 0.0
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def run_set(name, sources, n_pages, seed, restorer, detect_only, layout_fn) -> dict:
    """Score ``n_pages`` generated pages of set ``name`` (``clean`` or ``damaged``).

    Each page is restored twice through ``Restorer.restore_page``: with OCR (``identified``,
    ``psnr_after`` …) and with its true text given as ``text=`` (``identified_text``,
    ``psnr_after_text`` …), so the transcription's alignment to the found boxes is measured.
    """
    from restoreae.evaluate.metrics import psnr, ssim

    rng = np.random.default_rng(seed)
    matched = found = true = 0
    correct = {"ocr": 0, "text": 0}
    metric: dict[str, list[float]] = {}
    wall, cpu = [], []

    def add(key: str, value: float) -> None:
        metric.setdefault(key, []).append(float(value))

    for k in range(n_pages):
        source = sources[k % len(sources)]
        page = make_page(source, rng, **page_config(rng, name == "damaged"))
        t0, c0 = time.perf_counter(), time.process_time()
        if detect_only:
            boxes = layout_fn(page.image)
            results = {}
        else:
            results = {"ocr": restorer.restore_page(page.image)}
            boxes = np.array([c.box for c in results["ocr"].characters]).reshape(-1, 4)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if not detect_only:
            results["text"] = restorer.restore_page(page.image, text=page.chars)
        pairs = match_pairs(boxes, page.boxes)
        matched += len(pairs)
        found += len(boxes)
        true += len(page.boxes)
        if detect_only:
            continue
        clean = _grey(page.clean)
        before = _grey(page.image)
        inside = _box_mask(clean.shape, page.boxes)
        add("psnr_before", psnr(before, clean))
        add("ssim_before", ssim(before, clean))
        add("psnr_box_before", _psnr_in(before, clean, inside))
        for how, res in results.items():
            chars = [c.char for c in res.characters]
            correct[how] += sum(1 for f, t in pairs if chars[f] == page.chars[t])
            after = _grey(res.restored)
            add(f"psnr_after_{how}", psnr(after, clean))
            add(f"ssim_after_{how}", ssim(after, clean))
            add(f"psnr_box_after_{how}", _psnr_in(after, clean, inside))
    out = {
        "set": name,
        "pages": n_pages,
        "chars": true,
        "precision": matched / max(found, 1),
        "recall": matched / max(true, 1),
        "wall_s": float(np.mean(wall)),
        "cpu_s": float(np.mean(cpu)),
    }
    if not detect_only:
        out.update(
            identified=correct["ocr"] / max(true, 1),
            identified_text=correct["text"] / max(true, 1),
            **{key: float(np.mean(v)) for key, v in metric.items()},
        )
    return out


#: Height × width of the speed benchmark's page (the issue's 3000 × 2000 target).
SPEED_SHAPE: tuple[int, int] = (3000, 2000)


def speed_page(seed: int):
    """A damaged colour page of exactly :data:`SPEED_SHAPE` with 8 columns of 12 characters (and a
    grid and a seal): laid out at an em of 175 px (2993 × 2039), then resized to 3000 × 2000."""
    import cv2

    source = GlyphSource.from_fonts(GB2312_LEVEL1[::29][:120], size=128)
    rng = np.random.default_rng(seed)
    page = make_page(
        source,
        rng,
        n_lines=8,
        per_line=12,
        char_size=175,
        spacing=(0.3, 0.3),
        margin=0.25,
        colour=True,
        grid=True,
        seal=True,
        damage=True,
        glyph_damage=PAGE_GLYPH_DAMAGE,
    )
    H, W = SPEED_SHAPE
    h, w = page.image.shape[:2]
    page.image = cv2.resize(page.image, (W, H), interpolation=cv2.INTER_AREA)
    page.clean = cv2.resize(page.clean, (W, H), interpolation=cv2.INTER_AREA)
    sx, sy = W / w, H / h
    b = page.boxes.astype(np.float64) * [sx, sy, sx, sy]
    page.boxes = np.rint(b).astype(np.int64)
    return page


def speed(restorer, seed: int, repeats: int) -> dict:
    """Time ``restore_page`` on :func:`speed_page` (``repeats`` runs after one warm-up run on
    the same page, which loads the OCR model and builds the sessions): the fastest run's wall
    and CPU seconds and its stages."""
    page = speed_page(seed)
    restorer.restore_page(page.image)  # warm-up: OCR model, ONNX sessions, allocators
    runs = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = restorer.restore_page(page.image)
        runs.append((time.perf_counter() - t0, time.process_time() - c0, res))
    wall, cpu, res = min(runs, key=lambda r: r[0])
    p, r = precision_recall(np.array([c.box for c in res.characters]).reshape(-1, 4), page.boxes)
    return {
        "shape": page.image.shape,
        "chars": len(page.boxes),
        "found": len(res.characters),
        "precision": p,
        "recall": r,
        "wall_s": wall,
        "cpu_s": cpu,
        "walls": [w for w, _, _ in runs],
        "stages_s": dict(res.seconds),
    }


# --------------------------------------------------------------------------- DBNet
def dbnet_detector():
    """The PP-OCRv4 DBNet text detector shipped inside ``rapidocr_onnxruntime`` (its own
    defaults: limit the shorter side to 736 px, threshold 0.3, box threshold 0.5, unclip 1.6)."""
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector

    root = Path(rapidocr_onnxruntime.__file__).resolve().parent
    return TextDetector(
        {
            "model_path": str(root / "models" / "ch_PP-OCRv4_det_infer.onnx"),
            "limit_side_len": 736,
            "limit_type": "min",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "thresh": 0.3,
            "box_thresh": 0.5,
            "max_candidates": 1000,
            "unclip_ratio": 1.6,
            "use_dilation": True,
            "score_mode": "fast",
            "intra_op_num_threads": -1,
            "inter_op_num_threads": -1,
            "use_cuda": False,
            "use_dml": False,
        }
    )


def line_boxes(boxes: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """int (L, 4): the bounding box of each line's (column's) character boxes."""
    out = [[*boxes[lines == c, :2].min(0), *boxes[lines == c, 2:].max(0)] for c in np.unique(lines)]
    return np.array(out, np.int64).reshape(-1, 4)


def iou_matches(found: np.ndarray, truth: np.ndarray, min_iou: float = 0.5) -> int:
    """How many found boxes match a true box one to one with IoU ≥ ``min_iou`` (greedy by IoU)."""
    if len(found) == 0 or len(truth) == 0:
        return 0
    f = found.astype(np.float64)[:, None, :]
    t = truth.astype(np.float64)[None, :, :]
    iw = (np.minimum(f[..., 2], t[..., 2]) - np.maximum(f[..., 0], t[..., 0])).clip(0)
    ih = (np.minimum(f[..., 3], t[..., 3]) - np.maximum(f[..., 1], t[..., 1])).clip(0)
    inter = iw * ih
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    iou = inter / (area(f) + area(t) - inter)
    used_f, used_t, n = set(), set(), 0
    for i, j in sorted(zip(*np.nonzero(iou >= min_iou), strict=True), key=lambda p: -iou[p]):
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            n += 1
    return n


def dbnet_set(name: str, sources, n_pages: int, seed: int) -> dict:
    """Columns found by DBNet and by our finder on the pages of set ``name``, against the true
    columns (the bounding box of each true column's characters): precision and recall of column
    boxes matched one to one at IoU ≥ 0.5, per polarity; and our finder's character precision and
    recall on the same pages (DBNet finds text lines, not characters)."""
    import cv2

    from restoreae.restore.page import find_characters

    det = dbnet_detector()
    rng = np.random.default_rng(seed)
    acc: dict[str, dict[str, float]] = {}
    for k in range(n_pages):
        page = make_page(sources[k % len(sources)], rng, **page_config(rng, name == "damaged"))
        truth = line_boxes(page.boxes, page.columns)
        rgb = page.image if page.image.ndim == 3 else cv2.cvtColor(page.image, cv2.COLOR_GRAY2RGB)
        c0 = time.process_time()
        polys, _ = det(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        t_db = time.process_time() - c0
        polys = np.zeros((0, 4, 2)) if polys is None else np.asarray(polys)
        db = np.concatenate([polys.min(1), polys.max(1)], axis=1).round().astype(np.int64)
        c0 = time.process_time()
        layout = find_characters(page.image)
        t_ours = time.process_time() - c0
        arr = layout.as_array()
        ours = line_boxes(arr, np.array([b.line for b in layout.boxes], np.int64))
        pol = "paper" if page.dark_on_light else "rubbing"
        for key in ("all", pol):
            a = acc.setdefault(key, {})
            for who, boxes, t in (("dbnet", db, t_db), ("ours", ours, t_ours)):
                a[f"{who}_found"] = a.get(f"{who}_found", 0) + len(boxes)
                a[f"{who}_match"] = a.get(f"{who}_match", 0) + iou_matches(boxes, truth)
                a[f"{who}_cpu"] = a.get(f"{who}_cpu", 0.0) + t
            a["columns"] = a.get("columns", 0) + len(truth)
            a["pages"] = a.get("pages", 0) + 1
            a["chars"] = a.get("chars", 0) + len(page.boxes)
            for who, boxes in (("ours", arr), ("dbnet", db)):
                a[f"{who}_cfound"] = a.get(f"{who}_cfound", 0) + len(boxes)
                a[f"{who}_cmatch"] = a.get(f"{who}_cmatch", 0) + len(match_pairs(boxes, page.boxes))
    return {"set": name, **acc}


def dbnet_table(rows: list[dict], args) -> str:
    """The markdown of the DBNet comparison (RESULTS.md)."""
    lines = [
        f"Column segmentation, DBNet (PP-OCRv4 detector inside `rapidocr_onnxruntime`, its "
        f"defaults) against our finder, on the benchmark's generated pages ({args.pages} per "
        f"set, seed {args.seed}; glyphs: {args.glyphs}). A column is the bounding box of its "
        "characters; found and true columns match one to one at IoU ≥ 0.5. Characters match as "
        "in the detection figures (the found box's centre inside the true box, one to one); "
        "DBNet's boxes are scored as characters too, as it often boxes single characters when "
        "they stand apart.",
        "",
        "| set | polarity | pages | columns | characters | DBNet column P / R "
        "| ours column P / R | DBNet character P / R | ours character P / R "
        "| CPU s/page DBNet / ours |",
        "|---|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in rows:
        for key in ("paper", "rubbing", "all"):
            a = r.get(key)
            if not a:
                continue

            def pr(who: str, a=a) -> str:
                p = a[f"{who}_match"] / max(a[f"{who}_found"], 1)
                return f"{p:.3f} / {a[f'{who}_match'] / max(a['columns'], 1):.3f}"

            def cpr(who: str, a=a) -> str:
                m = a[f"{who}_cmatch"]
                return f"{m / max(a[f'{who}_cfound'], 1):.3f} / {m / max(a['chars'], 1):.3f}"

            lines.append(
                f"| {r['set']} | {key} | {a['pages']} | {a['columns']} | {a['chars']} "
                f"| {pr('dbnet')} | {pr('ours')} | {cpr('dbnet')} | {cpr('ours')} "
                f"| {a['dbnet_cpu'] / a['pages']:.2f} / {a['ours_cpu'] / a['pages']:.2f} |"
            )
    lines += [
        "",
        f"Command: `python benchmarks/bench_pages.py --dbnet --pages {args.pages} "
        f"--seed {args.seed}`.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- docs
def write_block(path: Path, name: str, body: str, section: str = "## Pages") -> None:
    """Put ``body`` between ``<!-- bench_pages:NAME -->`` markers in ``section`` of ``path``
    (the block is replaced when present, else appended to the section), atomically."""
    import re

    from restoreae.utils import atomic_write

    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- bench_pages:{name} -->", f"<!-- /bench_pages:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    blk_re = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if blk_re.search(text):
        text = blk_re.sub(lambda _: block, text, count=1)
    else:
        sec_re = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
        m = sec_re.search(text)
        if m is None:
            text = text.rstrip() + f"\n\n{section}\n\n{block}\n"
        else:
            sec = m.group(0).rstrip() + f"\n\n{block}\n"
            text = text[: m.start()] + sec + "\n" + text[m.end() :].lstrip()
    atomic_write(path, (text.rstrip() + "\n").encode("utf-8"))


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return f"{os.getloadavg()[0]:.1f}"


def quality_table(rows: list[dict], args, load_start: str) -> str:
    """The markdown of the quality run (RESULTS.md)."""
    cmd = f"python benchmarks/bench_pages.py --pages {args.pages} --seed {args.seed}"
    if args.detect_only:
        cmd += " --detect-only"
    lines = [
        f"{args.pages} pages per set, seed {args.seed}, backend {args.backend}, "
        f"{args.threads} thread(s); glyphs: {args.glyphs}. *Identified*: the character given "
        "to a true character's matched box equals it, over all true characters (a missed box "
        "counts as wrong) — by OCR, and with the page's text given (`--text`: aligned to the "
        "found boxes). PSNR / SSIM: grey, the whole page against the clean page (no texture, no "
        "damage), before and after `restore_page`; *in boxes*: PSNR over the true character "
        "boxes only (restoration keeps the page's texture, stains and cracks outside the "
        "strokes by design, so the whole-page figure moves less).",
        "",
        "| set | pages | chars | precision | recall | identified (OCR / text) "
        "| page PSNR before → after (OCR / text) | page SSIM before → after (OCR / text) "
        "| in-box PSNR before → after (OCR / text) |",
        "|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        if "identified" not in r:
            lines.append(
                f"| {r['set']} | {r['pages']} | {r['chars']} | {r['precision']:.3f} "
                f"| {r['recall']:.3f} | – | – | – | – |"
            )
            continue
        lines.append(
            f"| {r['set']} | {r['pages']} | {r['chars']} | {r['precision']:.3f} "
            f"| {r['recall']:.3f} | {r['identified']:.3f} / {r['identified_text']:.3f} "
            f"| {r['psnr_before']:.2f} → {r['psnr_after_ocr']:.2f} / {r['psnr_after_text']:.2f} "
            f"| {r['ssim_before']:.3f} → {r['ssim_after_ocr']:.3f} / {r['ssim_after_text']:.3f} "
            f"| {r['psnr_box_before']:.2f} → {r['psnr_box_after_ocr']:.2f} / "
            f"{r['psnr_box_after_text']:.2f} |"
        )
    secs = ", ".join(f"{r['set']} {r['wall_s']:.2f} / {r['cpu_s']:.2f}" for r in rows)
    lines += [
        "",
        f"Seconds per page with OCR (wall / CPU): {secs}; 1-minute load average at the start: "
        f"{load_start}, at the end: {_load()}.",
        "",
        f"Command: `{cmd}`.",
    ]
    return "\n".join(lines)


def speed_table(runs: list[tuple[str, dict]], args, load_start: str) -> str:
    """The markdown of the speed run (PERFORMANCE.md)."""
    cpu = f"{os.cpu_count()} CPU(s) visible"
    lines = [
        f"One damaged colour page of {SPEED_SHAPE[0]} × {SPEED_SHAPE[1]} px (height × width) "
        "with 8 columns of 12 characters (em ≈ 175 px), a ruled grid and a red seal, restored "
        f"by `Restorer.restore_page` with the shipped model, {args.threads} thread(s); fastest "
        f"of {args.repeats} run(s) after one warm-up run; {cpu}; 1-minute load average at the "
        f"start: {load_start}, at the end: {_load()}. CPU = user + system seconds of the process "
        "(all threads) over the same run.",
        "",
        "| backend | found / true | wall s | CPU s | layout | prepare | identify (OCR) | restore "
        "| paste |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in runs:
        st = r["stages_s"]
        lines.append(
            f"| {backend} | {r['found']} / {r['chars']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {st.get('layout', 0):.2f} | {st.get('prepare', 0):.2f} "
            f"| {st.get('identify', 0):.2f} "
            f"| {st.get('restore', 0):.2f} | {st.get('paste', 0):.2f} |"
        )
    lines += [
        "",
        "Stages in wall seconds. Command: `python benchmarks/bench_pages.py --speed --backend "
        f"{','.join(b for b, _ in runs)} --threads {args.threads} --repeats {args.repeats}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=10, help="pages per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model (default: the shipped one)")
    p.add_argument(
        "--backend", default="onnx", help="torch, onnx, or both comma-separated (--speed)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed runs of the --speed page")
    p.add_argument("--real-dev", type=Path, default=REPO.parent / "shared" / "real-dev")
    p.add_argument("--detect-only", action="store_true", help="time and score the finder only")
    p.add_argument("--speed", action="store_true", help="time one 3000 × 2000 page")
    p.add_argument(
        "--dbnet", action="store_true", help="compare DBNet's column boxes with our finder's"
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="put the table in docs/RESULTS.md (quality) or docs/PERFORMANCE.md (--speed)",
    )
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for b in backends:
        if b not in ("torch", "onnx"):
            p.error(f"--backend: expected torch or onnx, got {b!r}")
    if not args.speed and len(backends) != 1:
        p.error("several backends only with --speed")
    load_start = _load()

    if args.speed:
        from restoreae.restore.api import Restorer

        runs = []
        for b in backends:
            r = speed(
                Restorer(args.model, backend=b, threads=args.threads), args.seed, args.repeats
            )
            print(b, r)
            runs.append((b, r))
        text = speed_table(runs, args, load_start)
        print(text)
        if args.write:
            write_block(REPO / "docs" / "PERFORMANCE.md", "speed", text)
        return 0

    restorer = None
    if not (args.detect_only or args.dbnet):
        from restoreae.restore.api import Restorer

        restorer = Restorer(args.model, backend=backends[0], threads=args.threads)
    sources = [GlyphSource.from_fonts(GB2312_LEVEL1[::5][:700], size=128)]
    args.glyphs = "held-out fonts (Noto Serif CJK SC, Smiley Sans)"
    if args.real_dev.is_dir():
        sources.append(
            GlyphSource.from_folder(args.real_dev, 700, np.random.default_rng(args.seed))
        )
        args.glyphs += f" and {len(sources[1])} real-dev images (every other page)"
    print(f"glyphs: {args.glyphs}; load average at start: {load_start}")
    from restoreae.restore.page import find_characters

    def layout_fn(image):
        return find_characters(image).as_array()

    if args.dbnet:
        rows = [
            dbnet_set(n, sources, args.pages, sd)
            for n, sd in (("clean", args.seed), ("damaged", args.seed + 1))
        ]
        text = dbnet_table(rows, args)
        print(text)
        if args.write:
            write_block(REPO / "docs" / "RESULTS.md", "dbnet", text)
        return 0
    rows = []
    for name, seed in (("clean", args.seed), ("damaged", args.seed + 1)):
        rows.append(run_set(name, sources, args.pages, seed, restorer, args.detect_only, layout_fn))
        print(rows[-1])
    text = quality_table(rows, args, load_start)
    print(text)
    if args.write:
        write_block(REPO / "docs" / "RESULTS.md", "quality", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
