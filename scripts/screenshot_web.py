"""Take docs/web-screenshot.png: the web page after a real restoration, in headless Chromium.

Starts ``restoreae serve`` on a free loopback port, renders damaged sample glyphs (a brush font,
the "real" damage preset, white strokes on black like a rubbing), uploads them through the page,
waits for the results and saves a full-page screenshot.

    python scripts/screenshot_web.py                        # the shipped default model
    python scripts/screenshot_web.py --model runs/x/weights/best.safetensors
    python scripts/screenshot_web.py --image a.png --image b.png --chars 永和
    python scripts/screenshot_web.py --page        # page mode → docs/web-page-mode.png

Without ``--model`` and without the shipped model, an untrained tiny model is used (the page
works, the restoration is meaningless): re-take the screenshot once a trained model exists.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

import browser_setup  # noqa: E402
from restoreae.utils import atomic_write  # noqa: E402

SAMPLE_FONTS = (
    "/usr/share/fonts/truetype/aoyagi-kouzan-t/AoyagiKouzanT.ttf",
    "/usr/share/fonts/truetype/cns11643/TW-Kai-98_1.ttf",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
)


def render_samples(
    chars: str, font: str | None, size: int, damage: str, seed: int, folder: Path
) -> list[Path]:
    """Damaged glyphs of ``chars`` as PNG files: uint8 (size, size), white strokes on black."""
    from restoreae.damage.pipeline import DamageConfig, DamagePipeline
    from restoreae.data.fonts import load_face, render_glyph

    path = font or next((p for p in SAMPLE_FONTS if Path(p).is_file()), None)
    if path is None:
        raise SystemExit("no sample font found; pass --font FILE")
    face = load_face(path)
    pipeline = DamagePipeline(DamageConfig.resolve(damage))
    rng = np.random.default_rng(seed)
    out = []
    for i, char in enumerate(chars):
        glyph = render_glyph(face, char, size)
        if glyph is None:
            raise SystemExit(f"{path} cannot draw {char!r}; pick other --chars or --font")
        damaged, _ops = pipeline(glyph, rng)
        file = folder / f"rubbing-{i + 1}-{char}.png"
        Image.fromarray(damaged).save(file)
        out.append(file)
    return out


def render_page(folder: Path, seed: int) -> Path:
    """A generated damaged page (rubbing-like, held-out writers' glyphs) as a PNG file."""
    from restoreae.evaluate.pages import PAGE_GLYPH_DAMAGE, GlyphSource, make_page

    source = GlyphSource.from_fonts("永和九年岁在癸丑暮春之初会于会稽山阴之兰亭修禊事", size=128)
    page = make_page(
        source,
        np.random.default_rng(seed),
        n_lines=4,
        per_line=5,
        char_size=64,
        colour=True,
        grid=True,
        seal=True,
        damage=True,
        glyph_damage=PAGE_GLYPH_DAMAGE,
    )
    file = folder / "stele.png"
    Image.fromarray(page.image).save(file)
    return file


def page_mode(page, image: Path) -> None:
    """Drive the page mode: upload, wait for the boxes, correct the first character, restore."""
    page.check("#mode-page")
    page.set_input_files("#files", str(image))
    page.click("#restore-button")
    page.wait_for_selector("#page-view:not([hidden]) .page-box", timeout=300_000)
    page.click('.page-box[data-index="0"]')
    page.wait_for_selector("#restore-button:not([disabled])")


def tiny_model(folder: Path, size: int) -> Path:
    """An untrained small model, for when no trained one is available."""
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=size).eval()
    return save_model(
        model, folder / "untrained-tiny.safetensors", {"img_size": size, "in_chans": 2}
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="[NAME=]PATH, repeatable")
    p.add_argument("--image", action="append", default=[], type=Path, help="image to upload")
    p.add_argument("--chars", default="永和", help="characters of the samples / typed in the page")
    p.add_argument("--font", default=None, help="font of the rendered samples")
    p.add_argument("--size", type=int, default=128, help="sample size in pixels")
    p.add_argument("--damage", default="real", help="damage preset or YAML for the samples")
    p.add_argument("--seed", type=int, default=5, help="damage seed (5: readable damage on 永和)")
    p.add_argument("--width", type=int, default=1100)
    p.add_argument("--page", action="store_true", help="page mode (a generated page)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: docs/web-screenshot.png, or docs/web-page-mode.png with --page",
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = REPO / "docs" / ("web-page-mode.png" if args.page else "web-screenshot.png")

    chromium, reason = browser_setup.ensure_chromium()
    if chromium is None:
        raise SystemExit(f"no headless Chromium: {reason}")
    from restoreae.web.app import shipped_models

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = list(args.model)
        if not models and not shipped_models():
            print("warning: no trained model given or shipped: using an UNTRAINED tiny model")
            models = [f"untrained={tiny_model(folder, 64)}"]
        if args.page:
            images = args.image[:1] or [render_page(folder, args.seed)]
        else:
            images = args.image or render_samples(
                args.chars, args.font, args.size, args.damage, args.seed, folder
            )
        with (
            browser_setup.serve(models) as url,
            browser_setup.chromium_page(chromium, width=args.width, height=800) as page,
        ):
            page.goto(url + "/")
            page.wait_for_selector("#model option", state="attached")
            if args.page:
                page_mode(page, images[0])
                errors = page.inner_text("#error-box") if page.is_visible("#error-box") else ""
                atomic_write(args.out, page.screenshot(full_page=True))
                print(
                    f"wrote {args.out}" + (f" (the page shows errors: {errors})" if errors else "")
                )
                return 0
            page.set_input_files("#files", [str(f) for f in images])
            page.fill("#char", args.chars)
            page.click("#restore-button")
            # (no wait_for_function: the page's Content-Security-Policy forbids evaluated strings)
            page.wait_for_selector(f"#results .result >> nth={len(images) - 1}", timeout=120_000)
            page.wait_for_selector("#restore-button:not([disabled])")
            errors = page.inner_text("#error-box") if page.is_visible("#error-box") else ""
            png = page.screenshot(full_page=True)
    atomic_write(args.out, png)
    print(f"wrote {args.out}" + (f" (the page shows errors: {errors})" if errors else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
