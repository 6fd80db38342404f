"""Font registry and glyph rendering.

A *writer* is one distinct glyph design: a font face (one face of a ``.ttc`` collection, or a
``.ttf``/``.otf`` file). :func:`discover_fonts` scans the system font folders (plus user files and
folders), keeps faces that draw most of a probe set of common Han characters, and merges faces whose
glyphs are (nearly) identical — regional faces of Noto Sans CJK, the Mono/Sharp faces of
WenQuanYi Zen Hei, LXGW WenKai Mono — into one writer.

:func:`render_glyph` draws one character as a ``uint8`` ``(S, S)`` image, **white ink (255) on black
(0)**, anti-aliased, at a fixed em size of ``0.8 * S`` (so relative character sizes are kept), centred
on its ink bounding box and scaled down only when the ink box exceeds ``0.92 * S``.
"""

from __future__ import annotations

import functools
import os
import re
import struct
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from restoreae.errors import DataError

__all__ = [
    "DEFAULT_REFERENCE_FACE_INDEX",
    "DEFAULT_REFERENCE_FONT",
    "DEFAULT_TRADITIONAL_REFERENCE_FACE_INDEX",
    "DEFAULT_TRADITIONAL_REFERENCE_FONT",
    "FONT_EXTENSIONS",
    "PROBE_CHARS",
    "SYSTEM_FONT_DIRS",
    "FontFace",
    "centre_glyph",
    "discover_fonts",
    "face_covers",
    "font_cmap",
    "list_faces",
    "load_face",
    "render_glyph",
]

FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc")
SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path("~/.fonts").expanduser(),
    Path("~/.local/share/fonts").expanduser(),
)

#: Common Han characters written the same way in simplified, traditional and Japanese text: a face
#: is a candidate writer when it draws most of them; they are also the duplicate-detection probe.
PROBE_CHARS = "一二三四五六七八九十人大小中上下天日月山水火木金土口目手心子女王田石工"

#: Fraction of :data:`PROBE_CHARS` a system face must draw to count as a CJK writer.
CANDIDATE_MIN_COVERAGE = 0.8
#: Faces are one writer when this fraction of the probe characters they both draw are near-identical.
DUPLICATE_MIN_FRACTION = 0.5
#: Per-glyph mean absolute difference (0-255 scale) below which two renderings are "near-identical".
DUPLICATE_MAX_MAD = 1.5
_PROBE_SIZE = 64

EM_FRACTION = 0.8  # em size as a fraction of the image side
MAX_INK_FRACTION = 0.92  # ink boxes larger than this fraction of the side are scaled down
_INK_LEVEL = 64  # a pixel at least this bright counts as ink for the "draws something" test
_MIN_INK_PIXELS = 4

_REGION_TOKENS = {"sc", "tc", "jp", "kr", "hk", "cn", "tw", "mbe", "gb", "big5"}
_VARIANT_TOKENS = {"mono", "sharp"}
_PLAIN_STYLES = {"regular", "book", "normal", "roman", "w3"}


@dataclass(frozen=True)
class FontFace:
    """One font face = one writer.

    ``path``: the font file; ``face_index``: the face within a ``.ttc`` collection (0 otherwise);
    ``name``: human-readable name ("Noto Sans CJK SC Bold"); ``family``: the design family shared
    by weights and regional variants ("noto-sans-cjk"); ``writer_id``: stable short id
    ("noto-sans-cjk-sc-bold") used as file name in the corpus.
    """

    path: Path
    face_index: int
    name: str
    family: str
    writer_id: str


# --------------------------------------------------------------------------- default reference
def _default_reference() -> tuple[Path, int]:
    candidates = (
        (Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf"), 0),  # AR PL KaitiM GB
        (Path("/usr/share/fonts/truetype/arphic/ukai.ttc"), 0),  # AR PL UKai CN
    )
    for path, index in candidates:
        if path.is_file():
            return path, index
    return candidates[0]


#: The standard Kai font used for the reference channel (AR PL KaitiM GB, else AR PL UKai CN).
DEFAULT_REFERENCE_FONT, DEFAULT_REFERENCE_FACE_INDEX = _default_reference()


def _default_traditional_reference() -> tuple[Path, int]:
    ukai = Path("/usr/share/fonts/truetype/arphic/ukai.ttc")
    if ukai.is_file():
        return ukai, 2  # AR PL UKai TW: Taiwan-standard forms, matching OpenCC s2tw
    return DEFAULT_REFERENCE_FONT, DEFAULT_REFERENCE_FACE_INDEX


#: The Kai face used for traditional-form references (AR PL KaitiM GB has only GB2312 forms).
DEFAULT_TRADITIONAL_REFERENCE_FONT, DEFAULT_TRADITIONAL_REFERENCE_FACE_INDEX = (
    _default_traditional_reference()
)


# --------------------------------------------------------------------------- reading font files
def _open_collection(path: Path):
    """Return the list of fontTools ``TTFont`` faces in ``path`` (lazy); DataError if unreadable."""
    from fontTools.ttLib import TTCollection, TTFont, TTLibError

    if not path.is_file():
        raise DataError(f"font file not found: {path}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"ttcf":
            return list(TTCollection(str(path), lazy=True).fonts)
        return [TTFont(str(path), lazy=True)]
    except (OSError, TTLibError, struct.error, AssertionError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read font file {path}: {exc}") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _describe(path: Path, index: int, ttfont) -> FontFace:
    """Build a :class:`FontFace` from a face's name table."""
    names = ttfont.get("name")
    family_name = (names.getBestFamilyName() if names else None) or path.stem
    style = (names.getBestSubFamilyName() if names else None) or "Regular"
    tokens = re.split(r"[\s_]+", family_name.strip())
    design = [t for t in tokens if t.lower() not in _REGION_TOKENS | _VARIANT_TOKENS]
    region = [t.lower() for t in tokens if t.lower() in _REGION_TOKENS]
    family = _slug(" ".join(design) or family_name) or _slug(path.stem) or "font"
    if family.startswith("ar-pl-"):
        family = "arphic-" + family[len("ar-pl-") :]
    variant = [t.lower() for t in tokens if t.lower() in _VARIANT_TOKENS]
    parts = [family, *region, *variant]
    if _slug(style) not in _PLAIN_STYLES:
        parts.append(_slug(style))
    writer_id = "-".join(p for p in parts if p)
    name = family_name if _slug(style) in _PLAIN_STYLES else f"{family_name} {style}"
    return FontFace(Path(path), index, name, family, writer_id)


def list_faces(path: str | os.PathLike) -> list[FontFace]:
    """All faces in a font file (several for a ``.ttc``). Raises DataError if unreadable."""
    path = Path(path)
    faces = []
    for i, ttfont in enumerate(_open_collection(path)):
        try:
            faces.append(_describe(path, i, ttfont))
        except Exception as exc:  # corrupt name table: fontTools raises many kinds
            raise DataError(f"cannot read font file {path} (face {i}): {exc}") from exc
    return faces


def load_face(path: str | os.PathLike, face_index: int = 0) -> FontFace:
    """The :class:`FontFace` for face ``face_index`` of ``path`` (DataError if absent/unreadable)."""
    faces = list_faces(path)
    if not 0 <= face_index < len(faces):
        raise DataError(f"font file {path} has {len(faces)} face(s); face {face_index} requested")
    return faces[face_index]


def _parse_cmap12(data: bytes) -> np.ndarray | None:
    """Codepoints of the (3,10) or (0,4) format-12 cmap subtable, vectorised; None if absent."""
    _, n_tables = struct.unpack_from(">HH", data, 0)
    for i in range(n_tables):
        platform, encoding, offset = struct.unpack_from(">HHI", data, 4 + 8 * i)
        if (platform, encoding) not in ((3, 10), (0, 4), (0, 6)):
            continue
        if struct.unpack_from(">H", data, offset)[0] != 12:
            continue
        n_groups = struct.unpack_from(">I", data, offset + 12)[0]
        groups = np.frombuffer(data, ">u4", count=3 * n_groups, offset=offset + 16)
        groups = groups.reshape(-1, 3).astype(np.int64)
        start, end, glyph = groups[:, 0], groups[:, 1], groups[:, 2]
        lengths = end - start + 1
        if np.any(lengths <= 0):
            return None
        code = np.repeat(start, lengths) + (
            np.arange(lengths.sum()) - np.repeat(lengths.cumsum() - lengths, lengths)
        )
        gid = np.repeat(glyph, lengths) + (code - np.repeat(start, lengths))
        return code[gid != 0]
    return None


@functools.lru_cache(maxsize=256)
def font_cmap(path: str | os.PathLike, face_index: int = 0) -> frozenset[int]:
    """Codepoints mapped to a real glyph (not ``.notdef``) by face ``face_index`` of ``path``."""
    ttfont = _open_collection(Path(path))[face_index]
    try:
        codes = None
        if "cmap" in ttfont.reader:
            try:
                codes = _parse_cmap12(ttfont.reader["cmap"])
            except (struct.error, ValueError):
                codes = None
        if codes is not None:
            return frozenset(codes.tolist())
        cmap = ttfont.getBestCmap() or {}
        notdef = ttfont.getGlyphOrder()[0] if cmap else None
        return frozenset(c for c, g in cmap.items() if g != notdef)
    except Exception as exc:  # fontTools raises many kinds on corrupt tables
        raise DataError(f"cannot read the character map of font file {path}: {exc}") from exc


def face_covers(face: FontFace, char: str) -> bool:
    """True when the face's cmap maps ``char`` to a glyph (ink is checked by :func:`render_glyph`)."""
    return len(char) == 1 and ord(char) in font_cmap(str(face.path), face.face_index)


# --------------------------------------------------------------------------- rendering
@functools.lru_cache(maxsize=512)
def _image_font(path: str, face_index: int, em: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(
            path, size=em, index=face_index, layout_engine=ImageFont.Layout.BASIC
        )
    except OSError as exc:
        raise DataError(f"cannot load font file {path} (face {face_index}): {exc}") from exc


def render_glyph(face: FontFace, char: str, size: int) -> np.ndarray | None:
    """Render ``char`` with ``face``: uint8 ``(size, size)``, white ink (255) on black (0).

    The font is drawn at an em of ``round(0.8 * size)`` pixels, so relative sizes between characters
    are kept; the glyph is centred on its ink bounding box, and scaled down (area interpolation) only
    when that box is larger than ``0.92 * size``. Returns ``None`` when the face's cmap lacks the
    character, the glyph has no ink (e.g. a space, or a font mapping a character to an empty glyph)
    or FreeType cannot draw it (a broken glyph program).
    """
    if size < 8:
        raise ValueError(f"glyph size must be at least 8 pixels, got {size}")
    if not face_covers(face, char):
        return None
    em = max(1, round(EM_FRACTION * size))
    font = _image_font(str(face.path), face.face_index, em)
    side = 2 * em
    canvas = Image.new("L", (side, side), 0)
    try:
        ImageDraw.Draw(canvas).text((side // 2, side // 2), char, font=font, fill=255, anchor="mm")
    except OSError:  # FreeType fails on this glyph's program (e.g. "invalid opcode")
        return None
    arr = np.asarray(canvas)
    if np.count_nonzero(arr >= _INK_LEVEL) < _MIN_INK_PIXELS:
        return None
    rows = np.flatnonzero(arr.any(axis=1))
    cols = np.flatnonzero(arr.any(axis=0))
    ink = arr[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return centre_glyph(ink, size)


def centre_glyph(ink: np.ndarray, size: int) -> np.ndarray:
    """Put an ink crop (uint8, white on black) in the centre of a black ``(size, size)`` image,
    scaled down (area interpolation, aspect kept) when larger than ``0.92 * size``."""
    h, w = ink.shape
    limit = MAX_INK_FRACTION * size
    if max(h, w) > limit:
        scale = limit / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ink = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA)
        h, w = nh, nw
    out = np.zeros((size, size), np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = ink
    return out


# --------------------------------------------------------------------------- discovery
def _iter_font_files(folder: Path) -> Iterable[Path]:
    for root, _dirs, files in os.walk(folder, followlinks=True):
        for name in sorted(files):
            if name.lower().endswith(FONT_EXTENSIONS):
                yield Path(root) / name


def _preference(face: FontFace) -> tuple:
    """Sort key: which face of a duplicate group represents the writer (smaller is preferred)."""
    tokens = set(re.split(r"[\s_-]+", face.name.lower()))
    simplified = 0 if tokens & {"sc", "cn", "gb"} else 1
    variant = 1 if tokens & _VARIANT_TOKENS else 0
    return (simplified, variant, len(face.name), face.writer_id, str(face.path), face.face_index)


def _probe(face: FontFace) -> list[np.ndarray | None]:
    return [render_glyph(face, ch, _PROBE_SIZE) for ch in PROBE_CHARS]


def _same_design(a: list[np.ndarray | None], b: list[np.ndarray | None]) -> bool:
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not both:
        return False
    same = sum(
        float(np.mean(np.abs(x.astype(np.int16) - y.astype(np.int16)))) <= DUPLICATE_MAX_MAD
        for x, y in both
    )
    return same >= DUPLICATE_MIN_FRACTION * len(both)


def discover_fonts(
    extra_files: Sequence[str | os.PathLike] = (),
    extra_dirs: Sequence[str | os.PathLike] = (),
    system: bool = True,
) -> list[FontFace]:
    """Find CJK writer faces: one :class:`FontFace` per distinct writer, sorted by ``writer_id``.

    Scans :data:`SYSTEM_FONT_DIRS` when ``system``, plus ``extra_dirs`` (recursively) and
    ``extra_files``. A face is kept when it draws at least 80% of :data:`PROBE_CHARS`; faces that
    draw near-identical probe glyphs are merged (the SC/CN face without Mono/Sharp is preferred).
    A missing or unreadable ``extra_files`` entry or missing ``extra_dirs`` folder raises DataError.
    """
    files: list[Path] = []
    for folder in extra_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"font folder not found: {folder}")
        files.extend(_iter_font_files(folder))
    explicit = [Path(f) for f in extra_files]
    for f in explicit:
        if not Path(f).is_file():
            raise DataError(f"font file not found: {f}")
    files.extend(explicit)
    if system:
        for folder in SYSTEM_FONT_DIRS:
            if folder.is_dir():
                files.extend(_iter_font_files(folder))

    seen_real: set[str] = set()
    faces: list[FontFace] = []
    explicit_real = {os.path.realpath(f) for f in explicit}
    for path in files:
        real = os.path.realpath(path)
        if real in seen_real:
            continue
        seen_real.add(real)
        try:
            faces.extend(list_faces(real))  # symlinks resolved: one stable path per file
        except DataError:
            if real in explicit_real:
                raise
            warnings.warn(f"skipping unreadable font file {path}", stacklevel=2)

    candidates: list[tuple[FontFace, list[np.ndarray | None]]] = []
    for face in faces:
        try:
            probe = _probe(face)
        except DataError:
            if os.path.realpath(face.path) in explicit_real:
                raise
            warnings.warn(
                f"skipping unreadable font face {face.path}[{face.face_index}]", stacklevel=2
            )
            continue
        drawn = sum(g is not None for g in probe)
        if drawn >= CANDIDATE_MIN_COVERAGE * len(PROBE_CHARS):
            candidates.append((face, probe))
        elif os.path.realpath(face.path) in explicit_real and drawn > 0:
            candidates.append((face, probe))  # user-supplied partial fonts are kept

    kept: list[tuple[FontFace, list[np.ndarray | None]]] = []
    for face, probe in sorted(candidates, key=lambda fp: _preference(fp[0])):
        if any(_same_design(probe, other) for _, other in kept):
            continue
        kept.append((face, probe))

    writers: list[FontFace] = []
    used: set[str] = set()
    for face, _ in sorted(kept, key=lambda fp: (fp[0].writer_id, str(fp[0].path))):
        wid, n = face.writer_id, 2
        while wid in used:
            wid, n = f"{face.writer_id}-{n}", n + 1
        used.add(wid)
        if wid != face.writer_id:
            face = FontFace(face.path, face.face_index, face.name, face.family, wid)
        writers.append(face)
    return writers
