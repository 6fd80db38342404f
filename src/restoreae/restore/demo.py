"""``restoreae demo``: restore the bundled sample images with the shipped model.

Writes ``OUT/side_by_side.png`` (one row per sample: damaged | reference | restored) and the
restored images under ``OUT/restored/`` (same file names as the samples).

The samples in ``restoreae/assets/`` are made by this module (``python -m restoreae.restore.demo
--make-samples``): a few GB2312 characters rendered with several installed fonts, damaged with the
project's damage pipeline (the seed's ops plus the real-world ones), placed off-centre in frames of
various sizes and shown either as rubbings (light strokes on dark stone) or as ink on paper, saved
as PNG or JPEG, with ``samples.csv`` (``path,char``).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from restoreae.errors import RestoreAEError
from restoreae.utils import atomic_write

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
SAMPLES_CSV = ASSETS_DIR / "samples.csv"

# (char, preferred writer ids in order, style, frame (h, w), file extension)
_SAMPLE_SPECS: tuple[tuple[str, tuple[str, ...], str, tuple[int, int], str], ...] = (
    ("永", ("aoyagikouzanfontt", "lxgw-wenkai"), "rubbing", (176, 160), ".png"),
    ("和", ("setofont", "lxgw-wenkai"), "paper", (150, 170), ".jpg"),
    ("春", ("lxgw-wenkai-bold", "lxgw-wenkai"), "rubbing", (200, 184), ".jpg"),
    ("风", ("arphic-ukai-cn", "arphic-kaitim-gb"), "paper", (160, 160), ".png"),
    ("山", ("hanamina", "noto-serif-cjk-sc"), "rubbing", (140, 168), ".png"),
    ("德", ("noto-serif-cjk-sc-bold", "noto-serif-cjk-sc"), "paper", (192, 176), ".png"),
    ("寿", ("wenquanyi-zen-hei", "droid-sans-fallback"), "photo", (170, 150), ".jpg"),
    ("书", ("smiley-sans-oblique", "lxgw-wenkai-light"), "rubbing", (184, 200), ".png"),
)


def _encode(img: np.ndarray, suffix: str) -> bytes:
    buf = io.BytesIO()
    if suffix == ".jpg":
        Image.fromarray(img).save(buf, format="JPEG", quality=88)
    else:
        Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _photo(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float (H, W, 3) 0–255: ``canvas`` (ink share 0–1) in warm dark ink on cream paper with a
    fibre texture, lit from one side with a soft falloff."""
    import cv2

    h, w = canvas.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(-0.3, 0.3) * w, rng.uniform(-0.3, 0.3) * h
    light = 1.0 - 0.35 * np.hypot(xx - cx, yy - cy) / np.hypot(w, h)
    fibre = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    paper = np.array([238.0, 220.0, 186.0], np.float32) * (light + 0.04 * fibre)[..., None]
    ink = np.array([52.0, 38.0, 30.0], np.float32)
    return paper + (ink - paper) * canvas[..., None]


def make_samples(out_dir: str | Path = ASSETS_DIR, seed: int = 0) -> Path:
    """Render, damage and save the sample images and ``samples.csv`` into ``out_dir``.

    Deterministic for a given seed and set of installed fonts. Returns the CSV path.
    """
    from restoreae.damage import PRESETS, DamageConfig, DamagePipeline
    from restoreae.data.fonts import discover_fonts, render_glyph

    out_dir = Path(out_dir)
    faces = {f.writer_id: f for f in discover_fonts()}
    if not faces:
        raise RestoreAEError("no CJK fonts installed: cannot render the demo samples")
    # The "real" pool (seed ops + real-world ops), two ops per sample: damaged but legible.
    pipeline = DamagePipeline(DamageConfig(ops=list(PRESETS["real"]["ops"]), k=2))
    rows = ["path,char"]
    for i, (char, writers, style, (h, w), suffix) in enumerate(_SAMPLE_SPECS):
        rng = np.random.default_rng([seed, i])
        glyph = None
        for wid in (*writers, *sorted(faces)):
            if wid in faces:
                glyph = render_glyph(faces[wid], char, int(min(h, w) * 0.8))
                if glyph is not None:
                    writer = wid
                    break
        if glyph is None:
            raise RestoreAEError(f"no installed font draws the sample character {char!r}")
        damaged, _ = pipeline(glyph, rng)
        # Off-centre placement in a frame of another size and aspect.
        canvas = np.zeros((h, w), np.float32)
        gs = damaged.shape[0]
        top = int(rng.integers(0, h - gs + 1))
        left = int(rng.integers(0, w - gs + 1))
        canvas[top : top + gs, left : left + gs] = damaged.astype(np.float32) / 255.0
        if style == "photo":  # a colour photo: tinted, textured paper under uneven light
            img = _photo(canvas, rng)
        else:
            if style == "rubbing":  # light strokes on dark, grainy stone
                bg, ink = rng.uniform(15, 45), rng.uniform(190, 235)
            else:  # dark ink on light, slightly uneven paper
                bg, ink = rng.uniform(205, 240), rng.uniform(20, 60)
            img = bg + (ink - bg) * canvas
            shade = np.linspace(-8, 8, w, dtype=np.float32)[None, :]
            img = img + shade + rng.normal(0, 6, size=(h, w)).astype(np.float32)
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        name = f"{i + 1:02d}-{style}-{writer}{suffix}"
        atomic_write(out_dir / name, _encode(img, suffix))
        rows.append(f"{name},{char}")
    csv_path = out_dir / "samples.csv"
    atomic_write(csv_path, ("\n".join(rows) + "\n").encode("utf-8"))
    return csv_path


def read_samples(csv_path: str | Path = SAMPLES_CSV) -> list[tuple[Path, str]]:
    """``(image path, char)`` pairs listed in the samples CSV (paths relative to the CSV)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise RestoreAEError(f"{csv_path}: the bundled demo samples are missing")
    out = []
    with csv_path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append((csv_path.parent / row["path"], row["char"]))
    return out


def demo_grid(
    rows: list[list[np.ndarray | None]], labels: list[str], cell: int = 160
) -> np.ndarray:
    """Stack labelled rows of panels (uint8 grey; None = blank) into one uint8 (h, w) image."""
    from restoreae.figures import panel_row

    strips = [
        panel_row(panels, labels if r == 0 else [""] * len(labels), height=cell, square=True)
        for r, panels in enumerate(rows)
    ]
    return np.concatenate(strips, axis=0)


def demo_command(args: argparse.Namespace) -> int:
    """Restore the bundled samples with ``args.model`` (None: the shipped default); write the
    side-by-side PNG."""
    from restoreae.models.weights import shipped_path
    from restoreae.restore.api import Restorer
    from restoreae.restore.files import save_image
    from restoreae.restore.preprocess import load_image, to_input_polarity

    model = args.model
    if model is None and not shipped_path().is_file():
        raise RestoreAEError(
            f"the shipped model {shipped_path()} is missing, so the demo cannot restore anything "
            "yet; train one (`restoreae train -c CONFIG`) and copy its weights/best.safetensors "
            "there, or restore with `restoreae restore --model CHECKPOINT`"
        )
    samples = read_samples()
    restorer = Restorer.from_pretrained(model)
    out_dir = Path(args.out)
    rows: list[list[np.ndarray | None]] = []
    for path, char in samples:
        grey, _ = load_image(path)
        restored = restorer.restore(grey, char=char)
        save_image(restored, out_dir / "restored" / path.with_suffix(".png").name, "PNG")
        row = [grey, None, restored]
        if restorer.uses_reference:
            prep = restorer.prepare(grey)
            row[1] = to_input_polarity(restorer.model_reference(prep, char), prep)
            # The same model without the character (blank reference channel), as for an unknown
            # character: shows what the reference adds.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row.append(restorer.restore(grey, char=None))
        rows.append(row)
    labels = ["damaged", "reference", "restored", "restored, no reference"]
    grid = demo_grid(rows, labels[: len(rows[0])])
    target = save_image(grid, out_dir / "side_by_side.png", "PNG")
    print(f"restored {len(samples)} samples: {target} and {out_dir / 'restored'}/", file=sys.stdout)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="make the bundled demo samples")
    parser.add_argument("--make-samples", action="store_true", required=True)
    parser.add_argument("--out", type=Path, default=ASSETS_DIR)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    print(make_samples(a.out, a.seed))
