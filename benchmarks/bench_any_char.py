"""Any character: restoring with no reference, with ``char="auto"``, and with the true character.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_any_char.py [--model default] [--num 300]
        [--num-forms 200] [--seed 0] [--k 5] [--ocr-width 48] [--real-dev ../shared/real-dev]
        [--sets real-dev-forms,font-forms,real-dev,font,corpus] [--data data/corpus128]
        [--split val|heldout-writers] [--style none|writers|brush|calligraphy] [--out any-char.json]

Two sets of clean glyphs (uint8 128×128, white on black), each damaged with the seed's damage pool
(``DamageConfig()``, 3 ops per glyph, seeded exactly as ``restoreae eval`` does) and restored
through :class:`restoreae.Restorer` (the whole user path: polarity, crop, model, paste back):

- **real-dev**: ``--num`` images drawn (seeded) from ``../shared/real-dev/labels.csv`` (real
  calligraphy and handwriting; evaluation only), loaded like a user's image folder writer
  (:func:`restoreae.data.corpus.load_writer_image`).
- **font held-out writer**: ``--num`` GB2312 level-1 characters drawn (seeded) and rendered with
  Noto Serif CJK SC (a test writer of the shipped model, never trained on).
- **corpus** (``--sets corpus``): ``--num`` (writer, char) glyphs of a split of the corpus at
  ``--data`` (``--split val``: the validation writers, the only set to tune ``auto`` on;
  ``heldout-writers``: the test writers), drawn as ``restoreae eval`` draws them; with
  ``--style`` each clean glyph is first turned into a synthetic writer's (seeded, as training
  targets are: brush-weight strokes, warps, rough edges), so font glyphs look more like real hands.

For each: OCR readability (PP-OCRv4 reads exactly the character; on real-dev the label or its
``alt`` traditional form both count) of the clean, damaged and restored glyphs, PSNR against the
clean glyph, with the reference channel empty (*none*), chosen by ``auto``, and drawn for the true
character; ``auto``'s chosen-character accuracy; and how many images could not be restored for
lack of a reference (must be 0).

**Reference forms** (traditional vs simplified): on ``--num-forms`` glyphs showing a traditional
form — real-dev images with an ``alt`` label, and the font writer's rendering of the traditional
(OpenCC ``s2t``) form of GB2312 characters — the true character is given in its traditional form
and its reference is drawn either *as given* (traditional, by the fallback chain) or in its *t2s
simplified* form (by the model's Kai font).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from restoreae.data.charsets import GB2312_LEVEL1  # noqa: E402
from restoreae.data.corpus import load_writer_image  # noqa: E402
from restoreae.data.fonts import load_face, render_glyph  # noqa: E402
from restoreae.data.reference import (  # noqa: E402
    ReferenceRenderer,
    renderer_for_model,
    to_traditional,
)
from restoreae.evaluate.metrics import psnr  # noqa: E402
from restoreae.evaluate.ocr import OcrJudge, normalize_reading  # noqa: E402
from restoreae.evaluate.runner import MAIN_SET, build_damage_sets  # noqa: E402
from restoreae.restore.api import NoReferenceError, Restorer  # noqa: E402

SIZE = 128
FONT_WRITER = ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2)


def real_dev_set(root: Path, num: int, seed: int, alt_only: bool) -> dict:
    """Clean glyphs and accepted readings of ``num`` seeded real-dev images."""
    rows = list(csv.DictReader((root / "labels.csv").open(encoding="utf-8")))
    if alt_only:
        rows = [r for r in rows if r["alt"].strip()]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(rows), size=min(num, len(rows)), replace=False).tolist())
    clean, chars, alts = [], [], []
    for i in pick:
        r = rows[i]
        g = load_writer_image(root / r["path"], SIZE)
        if g is None:
            continue
        clean.append(g)
        chars.append(r["char"])
        alts.append(r["alt"].strip() or r["char"])
    return {"clean": np.stack(clean), "chars": chars, "alts": alts}


def font_set(num: int, seed: int, traditional: bool) -> dict:
    """``num`` seeded GB2312-1 characters drawn by the held-out font writer (their ``s2t``
    traditional forms, where different and drawn, with ``traditional``)."""
    face = load_face(*FONT_WRITER)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(GB2312_LEVEL1))
    clean, chars, alts = [], [], []
    for i in order:
        ch = GB2312_LEVEL1[i]
        shown = to_traditional(ch, "s2t") if traditional else ch
        if traditional and shown == ch:
            continue
        g = render_glyph(face, shown, SIZE)
        if g is None:
            continue
        clean.append(g)
        chars.append(ch)
        alts.append(shown)
        if len(clean) >= num:
            break
    return {"clean": np.stack(clean), "chars": chars, "alts": alts}


def corpus_set(data: Path, split: str, num: int, seed: int, style: str | None) -> dict:
    """``num`` seeded (writer, char) glyphs of ``split`` of the corpus at ``data``
    (:func:`restoreae.evaluate.sets.font_set`), each styled with the ``style`` preset (None or
    ``"none"``: as drawn) with ``torch.Generator().manual_seed(seed)``; uint8 (N, 128, 128)."""
    from restoreae.damage.style import build_style
    from restoreae.evaluate.sets import font_set as corpus_font_set

    found = corpus_font_set(data, split, num, seed)
    clean = np.stack(found.images)
    if clean.shape[1:] != (SIZE, SIZE):
        raise SystemExit(
            f"--data: {data} holds {clean.shape[1]} px glyphs, this script uses {SIZE}"
        )
    transform = build_style(None if style in (None, "none") else style)
    if transform is not None:
        import torch

        x = torch.from_numpy(clean).float().div(255.0)[:, None]
        x = transform(x, torch.Generator().manual_seed(seed))
        clean = (x[:, 0] * 255.0).round().clamp(0, 255).byte().numpy()
    return {"clean": clean, "chars": list(found.chars), "alts": list(found.chars)}


def damage(clean: np.ndarray, seed: int) -> np.ndarray:
    """The seed's damage pool (``DamageConfig()``, 3 ops), seeded as ``restoreae eval`` does."""
    return build_damage_sets(clean, _damage_config(), seed)[MAIN_SET].damaged


def readable(judge: OcrJudge, images: list[np.ndarray], accepted: list[set[str]]) -> np.ndarray:
    readings = judge.read(images)
    return np.array([normalize_reading(t) in ok for t, ok in zip(readings, accepted, strict=True)])


def restore_with(
    restorer: Restorer, damaged: np.ndarray, chars: list[str | None]
) -> tuple[list[np.ndarray], int]:
    """Restore each glyph with its character (None: empty reference); count reference failures."""
    out, failed = [], 0
    for img, ch in zip(damaged, chars, strict=True):
        try:
            out.append(restorer.restore(img, char=ch, polarity="light-on-dark"))
        except NoReferenceError:
            failed += 1
            out.append(restorer.restore(img, char=None, polarity="light-on-dark"))
    return out, failed


def score(judge, restored, clean, accepted) -> dict:
    ok = readable(judge, restored, accepted)
    return {
        "ocr": float(ok.mean()),
        "psnr": float(np.mean(psnr(np.stack(restored), clean))),
    }


def evaluate_set(name: str, data: dict, restorer: Restorer, judge: OcrJudge, seed: int) -> dict:
    clean = data["clean"]
    accepted = [{c, a} for c, a in zip(data["chars"], data["alts"], strict=True)]
    damaged = damage(clean, seed)
    res: dict = {"n": len(clean)}
    res["clean_ocr"] = float(readable(judge, list(clean), accepted).mean())
    res["damaged"] = score(judge, list(damaged), clean, accepted)
    t = time.perf_counter()
    out, _ = restore_with(restorer, damaged, [None] * len(clean))
    res["none"] = score(judge, out, clean, accepted)
    out, failed = restore_with(restorer, damaged, list(data["chars"]))
    res["true"] = score(judge, out, clean, accepted)
    res["true"]["no_reference_failures"] = failed
    t = time.perf_counter()
    autos = restorer.restore_auto(list(damaged), polarity="light-on-dark")
    res["auto"] = score(judge, [a.image for a in autos], clean, accepted)
    res["auto"]["seconds_per_image"] = (time.perf_counter() - t) / len(clean)
    chosen = [a.char for a in autos]
    res["auto"]["char_accuracy"] = float(
        np.mean([c is not None and c in ok for c, ok in zip(chosen, accepted, strict=True)])
    )
    res["auto"]["no_reference_share"] = float(np.mean([c is None for c in chosen]))
    in_candidates = [
        any(c in ok for c, _ in a.candidates) for a, ok in zip(autos, accepted, strict=True)
    ]
    res["auto"]["true_in_candidates"] = float(np.mean(in_candidates))
    for key in ("none", "auto", "true"):
        res[key]["recovered"] = res[key]["ocr"] / res["clean_ocr"] if res["clean_ocr"] else None
    print(f"[{name}] {json.dumps(res)}", file=sys.stderr)
    return res


def evaluate_forms(name: str, data: dict, restorer: Restorer, judge: OcrJudge, seed: int) -> dict:
    """Traditional-form glyphs restored with the traditional form given, drawn as given vs t2s."""
    clean = data["clean"]
    accepted = [{c, a} for c, a in zip(data["chars"], data["alts"], strict=True)]
    damaged = damage(clean, seed)
    res: dict = {"n": len(clean), "clean_ocr": float(readable(judge, list(clean), accepted).mean())}
    default = restorer.reference_renderer
    meta = restorer.metadata
    for label, simplify in (("traditional", False), ("t2s_simplified", True)):
        restorer.reference_renderer = ReferenceRenderer(
            meta.get("reference_font"),
            int(meta.get("reference_face_index") or 0),
            traditional=bool(meta.get("traditional")),
            size=restorer.img_size,
            simplify=simplify,
        )
        out, failed = restore_with(restorer, damaged, list(data["alts"]))
        res[label] = score(judge, out, clean, accepted)
        res[label]["no_reference_failures"] = failed
        res[label]["fallback_share"] = float(
            np.mean([restorer.reference_glyph(a).fallback for a in data["alts"]])
        )
    restorer.reference_renderer = default
    print(f"[{name} forms] {json.dumps(res)}", file=sys.stderr)
    return res


def _damage_config():
    from restoreae.damage.pipeline import DamageConfig

    return DamageConfig()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--num", type=int, default=300)
    p.add_argument("--num-forms", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=5)
    p.add_argument(
        "--ocr-width",
        type=int,
        default=48,
        help="the judge's line width (48: ~5x faster than the 320 of `eval`; auto's own "
        "recogniser keeps its default)",
    )
    p.add_argument("--min-confidence", type=float, default=None, help="auto's (default: its own)")
    p.add_argument("--proposal-weight", type=float, default=None, help="auto's (default: its own)")
    p.add_argument("--real-dev", type=Path, default=ROOT.parent / "shared" / "real-dev")
    p.add_argument("--sets", default="real-dev-forms,font-forms,real-dev,font")
    p.add_argument(
        "--data", type=Path, default=ROOT / "data" / "corpus128", help="for --sets corpus"
    )
    p.add_argument(
        "--split",
        default="heldout-writers",
        choices=["val", "heldout-writers"],
        help="the corpus split of --sets corpus (val: validation writers, for tuning)",
    )
    p.add_argument(
        "--style", default="none", help="style preset for --sets corpus (none: as drawn)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (quality only)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(max(1, args.threads))
    warnings.simplefilter("ignore", UserWarning)
    restorer = Restorer.from_pretrained(args.model)
    restorer.reference_renderer = renderer_for_model(restorer.metadata, restorer.img_size)
    judge = OcrJudge(line_width=args.ocr_width)
    restorer.picker(
        k=args.k, min_confidence=args.min_confidence, proposal_weight=args.proposal_weight
    )
    sets = args.sets.split(",")
    results: dict = {
        "model": str(restorer.model_path),
        "seed": args.seed,
        "k": args.k,
        "judge_line_width": args.ocr_width,
        "corpus_set": {"data": str(args.data), "split": args.split, "style": args.style},
    }
    results["min_confidence"] = restorer.picker().min_confidence
    results["proposal_weight"] = restorer.picker().proposal_weight
    have_real = (args.real_dev / "labels.csv").is_file()
    jobs = {
        "real-dev-forms": lambda: evaluate_forms(
            "real-dev", real_dev_set(args.real_dev, args.num_forms, args.seed, True), *common
        ),
        "font-forms": lambda: evaluate_forms(
            "font", font_set(args.num_forms, args.seed, traditional=True), *common
        ),
        "real-dev": lambda: evaluate_set(
            "real-dev", real_dev_set(args.real_dev, args.num, args.seed, False), *common
        ),
        "font": lambda: evaluate_set(
            "font", font_set(args.num, args.seed, traditional=False), *common
        ),
        "corpus": lambda: evaluate_set(
            f"corpus {args.split} style={args.style}",
            corpus_set(args.data, args.split, args.num, args.seed, args.style),
            *common,
        ),
    }
    common = (restorer, judge, args.seed)
    for name in sets:
        if name not in jobs:
            raise SystemExit(f"--sets: unknown set {name!r} (known: {', '.join(jobs)})")
        if name.startswith("real-dev") and not have_real:
            print(f"note: {args.real_dev} not found; {name} skipped", file=sys.stderr)
            continue
        results[name] = jobs[name]()
        if args.out:  # after every set, so a long run keeps what it has measured
            args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    text = json.dumps(results, indent=1, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
