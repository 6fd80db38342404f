"""Pages on disk: loading a page (grey and, when it has colour, RGB), writing a restored page's
outputs, and the ``restoreae restore-page`` command.

Outputs of a page ``NAME.ext`` in the output folder (all written atomically):

- ``NAME.png``: the restored page (the input's size; RGB when the input has colour, else grey);
- ``NAME.compare.png``: the original and the restored page side by side;
- ``NAME.json``: ``{"image", "width", "height", "layout", "polarity", "characters": [{"index",
  "box": [x0, y0, x1, y1], "column", "char", "confidence", "source": "ocr"|"text"|"none"}],
  "alignment"?}`` in reading order (``alignment`` only with ``--text``);
- ``NAME/NNNN.orig.png`` and ``NAME/NNNN.png``: each character's crop (grey, the page's polarity)
  before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from restoreae.errors import RestoreAEError
from restoreae.imageio import load_image
from restoreae.utils import atomic_write, read_user_text


def load_page(source: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A page as ``(grey, rgb)``: uint8 (H, W) grey and, when the page has colour (and no
    transparency), its uint8 (H, W, 3) RGB pixels, else None — as
    :func:`restoreae.imageio.load_image` reads them. ``source``: a path, PIL image or array.
    Raises ImageError naming it."""
    grey, info = load_image(source)
    rgb = info.get("rgb")
    if rgb is not None and rgb.shape[:2] != grey.shape:
        rgb = None
    return grey, rgb


def compare_image(original: np.ndarray, restored: np.ndarray, gap: int = 12) -> np.ndarray:
    """Original | restored side by side on white, uint8 like the inputs ((H, W) or (H, W, 3))."""
    h, w = original.shape[:2]
    shape = (h, 2 * w + gap) + original.shape[2:]
    out = np.full(shape, 255, np.uint8)
    out[:, :w] = original
    out[:, w + gap :] = restored
    return out


def _save_png(arr: np.ndarray, path: Path) -> Path:
    img = Image.fromarray(np.ascontiguousarray(arr))
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def write_page_outputs(result, out_dir: str | os.PathLike, stem: str, name: str) -> list[Path]:
    """Write a :class:`~restoreae.restore.page_restore.PageResult`'s files (see the module
    docstring) as ``out_dir/stem.*``; ``name`` is recorded as the JSON's ``image``."""
    out_dir = Path(out_dir)
    paths = [
        _save_png(result.restored, out_dir / f"{stem}.png"),
        _save_png(compare_image(result.image, result.restored), out_dir / f"{stem}.compare.png"),
    ]
    crops = out_dir / stem
    for k, (orig, rest) in enumerate(zip(result.crops, result.restored_crops, strict=True)):
        paths.append(_save_png(orig, crops / f"{k:04d}.orig.png"))
        paths.append(_save_png(rest, crops / f"{k:04d}.png"))
    data = json.dumps(result.to_json(name), ensure_ascii=False, indent=1).encode("utf-8")
    paths.append(atomic_write(out_dir / f"{stem}.json", data))
    return paths


# --------------------------------------------------------------------------- command
def read_text_arg(text: str | None, text_file: str | os.PathLike | None) -> str | None:
    """The transcription from ``--text`` or ``--text-file`` (UTF-8), or None."""
    if text is not None and text_file is not None:
        raise RestoreAEError("give --text or --text-file, not both")
    if text_file is not None:
        text = read_user_text(text_file, "text file")
    return text


def restore_page_command(args: argparse.Namespace) -> int:
    """Run ``restoreae restore-page``; 0 when every page was restored, 1 otherwise."""
    from tqdm import tqdm

    from restoreae.restore.api import Restorer
    from restoreae.restore.files import collect_inputs
    from restoreae.restore.page_restore import restore_page

    text = read_text_arg(getattr(args, "text", None), getattr(args, "text_file", None))
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise RestoreAEError(f"{out_dir}: --output exists and is not a folder")
    items, errors = collect_inputs(args.pages)
    if text is not None and len(items) > 1:
        raise RestoreAEError(
            f"--text / --text-file give the transcription of one page, but {len(items)} pages "
            "were given; restore them one at a time"
        )
    restorer = Restorer(
        getattr(args, "model", None),
        backend=getattr(args, "backend", None) or "auto",
        device=getattr(args, "device", "cpu") or "cpu",
        threads=getattr(args, "threads", None),
        polarity=getattr(args, "polarity", "auto") or "auto",
    )
    failed = list(errors)
    for msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    used: set[str] = set()
    done = 0
    with tqdm(total=len(items), unit="page", disable=None, file=sys.stderr) as bar:
        for item in items:
            stem, n = item.path.stem, 2
            while stem in used:
                stem, n = f"{item.path.stem}-{n}", n + 1
            used.add(stem)
            bar.set_description(item.path.name)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    result = restore_page(
                        restorer,
                        item.path,
                        text=text,
                        layout=args.layout,
                        recognise=not getattr(args, "no_ocr", False),
                        batch_size=int(getattr(args, "batch_size", 32) or 32),
                        progress=lambda stage: bar.set_postfix_str(stage),
                    )
                write_page_outputs(result, out_dir, stem, item.path.name)
            except (RestoreAEError, OSError, ValueError) as exc:
                msg = str(exc)
                msg = msg if str(item.path) in msg else f"{item.path}: {msg}"
                failed.append(msg)
                bar.write(f"error: {msg}", file=sys.stderr)
            else:
                done += 1
                n_chars = len(result.characters)
                line = f"{item.path.name}: {n_chars} characters"
                if result.alignment is not None and not result.alignment["matched_in_order"]:
                    a = result.alignment
                    line += (
                        f"; the text has {a['text_chars']} characters but {a['found']} were "
                        f"found: {len(a['unmatched_boxes'])} boxes and "
                        f"{len(a['unmatched_text'])} text characters left unmatched"
                    )
                bar.write(line, file=sys.stderr)
            bar.update(1)
    print(
        f"restored {done} of {len(items)} page(s) into {out_dir}"
        + (f"; {len(failed)} failed" if failed else "")
    )
    return 1 if failed else 0
