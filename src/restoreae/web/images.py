"""Uploaded pictures for the web page: decoding (by content, bounded in pixels), PNG encoding,
the character field, and messages in English and Chinese."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from restoreae.errors import DataError, RestoreAEError
from restoreae.restore.api import AUTO, NoReferenceError, validate_char
from restoreae.restore.preprocess import load_image

MAX_IMAGE_SIDE = 4096
#: Pillow decoders the page accepts; others (EPS, PDF, ...) are never tried.
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
#: How the page names the character field in messages (no CLI flags on the page).
CHAR_FIELD = "the Character field"


class PageError(DataError):
    """A message in the page's own terms (no command-line flags, no server paths), in English
    (``str(exc)``) and Chinese (``exc.zh``)."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.zh = zh


def decode_image(data: bytes, name: str, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """Decode uploaded bytes into a grey image: ``uint8 (H, W)``, 0–255, polarity as given
    (:func:`decode_picture` without its colour pixels)."""
    return decode_picture(data, name, max_side)[0]


def decode_picture(
    data: bytes, name: str, max_side: int = MAX_IMAGE_SIDE
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode uploaded bytes into ``(grey, rgb)``: ``uint8 (H, W)`` grey, 0–255, polarity as
    given, and the ``uint8 (H, W, 3)`` colour pixels of an opaque colour picture (else None).

    Only :data:`IMAGE_FORMATS` decoders are tried (the content decides, not the file name); the
    pixels are converted as the CLI does (``restoreae.restore.preprocess.load_image``: alpha
    flattened onto a contrasting background, 16-bit scaled, EXIF orientation applied). Raises
    :class:`PageError` naming ``name`` when the bytes are empty, not an image of an accepted
    format, damaged, or larger than ``max_side`` pixels on a side (a decompression bomb, whose
    header declares far more pixels than its bytes hold, is called too large, not damaged).
    """
    too_big = (
        f"{name}: the image is too large: at most {max_side}×{max_side} pixels",
        f"{name}：图像过大，每边最多 {max_side} 像素",
    )
    if not data:
        raise PageError(f"{name}: the file is empty", f"{name}：文件是空的")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                w, h = im.size
                if max(w, h) > max_side:
                    raise PageError(
                        f"{name}: the image is {w}×{h} pixels; the limit is {max_side} per side",
                        f"{name}：图像为 {w}×{h} 像素，每边最多 {max_side} 像素",
                    )
                im.load()
                grey, info = load_image(im)
                rgb = info.get("rgb")
                return grey, (rgb if rgb is not None and rgb.shape[:2] == grey.shape else None)
    except PageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PageError(*too_big) from None
    except UnidentifiedImageError:
        raise PageError(
            f"{name}: not an image (accepted: {', '.join(IMAGE_FORMATS)}); "
            "the content was checked, not the file name",
            f"{name}：不是图像文件（接受 {', '.join(IMAGE_FORMATS)}）",
        ) from None
    except RestoreAEError as exc:
        msg = str(exc)
        raise PageError(
            msg if name in msg else f"{name}: {msg}", f"{name}：无法读取此图像"
        ) from None
    except MemoryError:
        raise PageError(*too_big) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PageError(
            f"{name}: the image is damaged and cannot be decoded ({exc})",
            f"{name}：图像已损坏，无法解码",
        ) from None


def png_bytes(image: np.ndarray) -> bytes:
    """Encode ``uint8 (H, W)`` grey or ``(H, W, 3)`` RGB as PNG bytes."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected (H, W) or (H, W, 3) pixels, got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def parse_chars(text: str | None, n_files: int) -> list[str | None]:
    """The ``char`` form field → one character (or None, or ``"auto"``) per file.

    Whitespace is ignored. Empty → no character; ``auto`` → the recogniser chooses for every file;
    one character → the same for every file; ``n_files`` characters → one per file in upload
    order. Anything else, or a character that is not a CJK ideograph, raises DataError naming the
    field.
    """
    if (text or "").strip().lower() == AUTO:
        return [AUTO] * n_files
    chars = [c for c in (text or "") if not c.isspace()]
    for c in chars:
        try:
            validate_char(c, CHAR_FIELD)
        except RestoreAEError:
            raise PageError(
                f"{CHAR_FIELD}: {c!r} is not a Chinese character (CJK ideograph)",
                f"字：{c!r} 不是汉字",
            ) from None
    if not chars:
        return [None] * n_files
    if len(chars) == 1:
        return [chars[0]] * n_files
    if len(chars) == n_files:
        return list(chars)
    raise PageError(
        f"{CHAR_FIELD}: give one character for all files, one per file, or auto "
        f"({n_files} file(s), {len(chars)} characters given)",
        f"字：请为全部图像填一个字，或按顺序每图一字，或填 auto（{n_files} 个文件，{len(chars)} 个字）",
    )


def web_reference_error(exc: NoReferenceError, name: str) -> tuple[str, str]:
    """A missing reference for file ``name`` in the page's words (its field, no CLI flags, no
    ``char=``): ``(English, Chinese)``."""
    return (
        f"{name}: no installed font draws {exc.char!r} (U+{ord(exc.char):04X}), so it has no "
        f"reference glyph: type another form of the character in {CHAR_FIELD}, type auto to let "
        "the recogniser choose, or leave it empty",
        f"{name}：已安装的字体都不能写出 {exc.char!r}（U+{ord(exc.char):04X}），无标准字可用："
        "请在「字」栏输入此字的其他写法，或输入 auto 由识别器选择，或留空",
    )


def megabytes(n: int) -> str:
    """``n`` bytes as a short "12.5 MB" text for messages."""
    return f"{n / (1024 * 1024):.3g} MB"
