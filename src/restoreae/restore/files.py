"""Image files of ``restoreae restore``: which inputs (files and folders, searched recursively
for ``.png .jpg .jpeg .tif .tiff .bmp .webp``) and where and how their results are written
(``NAME[_SUFFIX].EXT`` under ``--output``, atomically; 16-bit inputs written as 8-bit, TIFFs
deflate-compressed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from restoreae.errors import RestoreAEError
from restoreae.imageio import describe_non_file
from restoreae.restore.preprocess import IMAGE_EXTENSIONS
from restoreae.utils import atomic_write

_SAVE_OPTIONS = {
    "JPEG": {"quality": 95},
    "WEBP": {"lossless": True},
    "TIFF": {"compression": "tiff_adobe_deflate"},
}
#: ``--ext`` choices: the input's own extension, or one format for every output.
EXTENSIONS = ("same", "png", "jpg")
#: ``--output`` when none is given (as in Real-ESRGAN's inference script).
DEFAULT_OUTPUT = Path("results")


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
        elif p.exists():
            errors.append(f"{p}: {describe_non_file(p)}, not an image file")
        else:
            errors.append(f"{p}: no such file or folder")
    return items, errors


# --------------------------------------------------------------------------- outputs
def output_suffix(suffix: str) -> tuple[str, str]:
    """``(suffix, PIL format)`` for writing an image named like the input (``.png`` fallback)."""
    Image.init()
    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is not None and fmt in Image.SAVE:
        return suffix, fmt
    return ".png", "PNG"


def output_path(
    item: InputItem, out_dir: Path, suffix: str = "", ext: str = "same"
) -> tuple[Path, str]:
    """``(path, PIL format)`` of the restored ``item``: ``out_dir/REL_DIR/STEM[_SUFFIX].EXT``.

    ``ext``: ``same`` (the input's extension when PIL can write it, else ``.png``), ``png`` or
    ``jpg``.
    """
    if ext == "same":
        ext_suffix, fmt = output_suffix(item.path.suffix)
    elif ext in ("png", "jpg"):
        ext_suffix, fmt = f".{ext}", ("PNG" if ext == "png" else "JPEG")
    else:
        raise RestoreAEError(f"--ext must be one of {', '.join(EXTENSIONS)}, got {ext!r}")
    stem = item.rel.stem + (f"_{suffix}" if suffix else "")
    return out_dir / item.rel.parent / f"{stem}{ext_suffix}", fmt


def save_image(arr: np.ndarray, path: str | Path, fmt: str | None = None) -> Path:
    """Write uint8 (H, W) or (H, W, 3) ``arr`` to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    if fmt is None:
        _, fmt = output_suffix(path.suffix)
    img = Image.fromarray(np.ascontiguousarray(arr))
    opts = _SAVE_OPTIONS.get(fmt, {})
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **opts))
