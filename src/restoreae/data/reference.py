"""The standard-font reference glyph (the model's optional second input channel).

A model is trained with references drawn in one standard font (its *reference font*, recorded in
its metadata). Users bring any character: simplified, traditional, a variant, a rare character of
the CJK extensions. :class:`ReferenceRenderer` draws the character in the model's reference font
when that font has it, and otherwise with the first font of :data:`REFERENCE_CHAIN` (installed
standard fonts, found with fontconfig or at their Debian paths) that does:

1. AR PL UKai TW (``fonts-arphic-ukai``): Kai, Big5 + GB forms — traditional characters.
2. TW-Kai, TW-Kai-Ext-B, TW-Kai-Plus (``fonts-cns11643-kai``): Kai, all of CNS 11643 —
   rarer traditional characters and variants.
3. Noto Serif CJK SC, then Noto Sans CJK SC (``fonts-noto-cjk``): Song / Hei, Unified Ideographs
   and Extension A.
4. HanaMinA, HanaMinB (``fonts-hanazono``): Mincho, Extensions B–F and compatibility ideographs.

Kai faces come first because the models' references are Kai. Which font drew a glyph is reported
(:class:`ReferenceGlyph`), so restoration can say so. Only a character that no installed font draws
raises :class:`NoReferenceFontError`.

Forms: with ``traditional=True`` (a model trained on traditional references) a simplified character
is drawn in its Taiwan-standard traditional form (OpenCC ``s2tw``) when a font has it; with
``simplify=True`` (a model trained on simplified references) a traditional character is drawn in
its simplified form (OpenCC ``t2s``); otherwise the character is drawn as given.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restoreae.data.fonts import (
    DEFAULT_REFERENCE_FACE_INDEX,
    DEFAULT_REFERENCE_FONT,
    DEFAULT_TRADITIONAL_REFERENCE_FACE_INDEX,
    DEFAULT_TRADITIONAL_REFERENCE_FONT,
    FontFace,
    face_covers,
    load_face,
    render_glyph,
)
from restoreae.errors import DataError

__all__ = [
    "REFERENCE_CHAIN",
    "SIMPLIFY_FOR_SIMPLIFIED_MODELS",
    "ChainFont",
    "NoReferenceFontError",
    "ReferenceGlyph",
    "ReferenceRenderer",
    "installed_chain",
    "is_traditional_form",
    "renderer_for_model",
    "to_simplified",
    "to_traditional",
]


# --------------------------------------------------------------------------- OpenCC
@functools.lru_cache(maxsize=4)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def _convert(config: str, char: str) -> str:
    out = _opencc(config).convert(char)
    return out if len(out) == 1 else char


def to_traditional(char: str, config: str = "s2tw") -> str:
    """The traditional form of a simplified character (OpenCC ``s2tw``, Taiwan standard, unless
    ``config`` says otherwise, e.g. ``"s2t"``). Returns ``char`` unchanged when OpenCC gives no
    single-character conversion."""
    return _convert(config, char)


def to_simplified(char: str) -> str:
    """The simplified form of a traditional character (OpenCC ``t2s``); ``char`` when none."""
    return _convert("t2s", char)


def is_traditional_form(char: str) -> bool:
    """True when ``char`` has a different simplified form (书 → False, 書 → True, 中 → False)."""
    return to_simplified(char) != char


# --------------------------------------------------------------------------- the font chain
@dataclass(frozen=True)
class ChainFont:
    """One standard font of the fallback chain.

    ``name``: the fontconfig family name (also shown to users); ``style``: its style;
    ``paths``: where Debian installs it (font file, face index), tried when fontconfig is absent;
    ``package``: the Debian package that installs it.
    """

    name: str
    style: str
    paths: tuple[tuple[str, int], ...]
    package: str


_NOTO = "/usr/share/fonts/opentype/noto"
#: The documented fallback chain, in order (see the module docstring).
REFERENCE_CHAIN: tuple[ChainFont, ...] = (
    ChainFont(
        "AR PL UKai TW",
        "Book",
        (("/usr/share/fonts/truetype/arphic/ukai.ttc", 2),),
        "fonts-arphic-ukai",
    ),
    ChainFont(
        "TW-Kai",
        "Regular",
        (("/usr/share/fonts/truetype/cns11643/TW-Kai-98_1.ttf", 0),),
        "fonts-cns11643-kai",
    ),
    ChainFont(
        "TW-Kai-Ext-B",
        "Regular",
        (("/usr/share/fonts/truetype/cns11643/TW-Kai-Ext-B-98_1.ttf", 0),),
        "fonts-cns11643-kai",
    ),
    ChainFont(
        "TW-Kai-Plus",
        "Regular",
        (("/usr/share/fonts/truetype/cns11643/TW-Kai-Plus-98_1.ttf", 0),),
        "fonts-cns11643-kai",
    ),
    ChainFont(
        "Noto Serif CJK SC",
        "Regular",
        (
            (f"{_NOTO}/NotoSerifCJK-Regular.ttc", 2),
            ("/usr/share/fonts/opentype/noto/NotoSerifCJKsc-Regular.otf", 0),
        ),
        "fonts-noto-cjk",
    ),
    ChainFont(
        "Noto Sans CJK SC",
        "Regular",
        (
            (f"{_NOTO}/NotoSansCJK-Regular.ttc", 2),
            ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
        ),
        "fonts-noto-cjk",
    ),
    ChainFont(
        "HanaMinA",
        "Regular",
        (("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf", 0),),
        "fonts-hanazono",
    ),
    ChainFont(
        "HanaMinB",
        "Regular",
        (("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf", 0),),
        "fonts-hanazono",
    ),
)


@functools.lru_cache(maxsize=1)
def _fontconfig_faces() -> dict[tuple[str, str], tuple[str, int]]:
    """``(family, style)`` (lower case, every family name fontconfig lists) → (file, index).

    Empty when ``fc-list`` is not installed or fails.
    """
    exe = shutil.which("fc-list")
    if exe is None:
        return {}
    try:
        out = subprocess.run(
            [exe, "--format", "%{file}\t%{index}\t%{family}\t%{style}\n"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[tuple[str, str], tuple[int, str, int]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[1].strip().isdigit():
            continue
        path, index, families, styles = parts
        for fi, family in enumerate(families.split(",")):
            for si, style in enumerate(styles.split(",")):
                key = (family.replace("\\", "").strip().lower(), style.strip().lower())
                # a face's own (first-listed) family and style beat its secondary names
                if key not in found or fi + si < found[key][0]:
                    found[key] = (fi + si, path, int(index))
    return {key: (path, index) for key, (_, path, index) in found.items()}


def _locate(font: ChainFont) -> FontFace | None:
    """The installed face of ``font``: fontconfig first, then the Debian paths; None if absent."""
    candidates: list[tuple[str, int]] = []
    hit = _fontconfig_faces().get((font.name.lower(), font.style.lower()))
    if hit is not None:
        candidates.append(hit)
    candidates.extend(font.paths)
    for path, index in candidates:
        if not Path(path).is_file():
            continue
        try:
            face = load_face(path, index)
        except DataError:
            continue
        if face.name.lower().startswith(font.name.lower()) or hit == (path, index):
            return face
    return None


@functools.lru_cache(maxsize=1)
def installed_chain() -> tuple[FontFace, ...]:
    """The faces of :data:`REFERENCE_CHAIN` installed on this machine, in chain order."""
    faces = []
    for font in REFERENCE_CHAIN:
        face = _locate(font)
        if face is not None:
            faces.append(face)
    return tuple(faces)


# --------------------------------------------------------------------------- rendering
class NoReferenceFontError(DataError):
    """No installed font draws the character. ``char``: the character; ``fonts``: font names tried.

    The message is interface-neutral; the CLI, the web page and the Python API reword it.
    """

    def __init__(self, char: str, fonts: Sequence[str]) -> None:
        self.char = char
        self.fonts = tuple(fonts)
        super().__init__(
            f"no installed font draws {char!r} (U+{ord(char):04X}); tried {', '.join(self.fonts)}"
        )


@dataclass(frozen=True)
class ReferenceGlyph:
    """A drawn reference. ``glyph``: uint8 ``(S, S)``, white ink (255) on black (0);
    ``char``: the character asked for; ``drawn``: the form drawn (e.g. 書 for 书 with
    ``traditional``); ``font``: the face's name ("AR PL KaitiM GB"); ``font_path`` /
    ``face_index``: the file; ``fallback``: True when a chain font drew it, not the model's font.
    """

    glyph: np.ndarray = field(repr=False)
    char: str
    drawn: str
    font: str
    font_path: Path
    face_index: int
    fallback: bool

    def describe(self) -> str:
        """A short line for labels: ``"書 · AR PL UKai TW"`` (the form drawn and the font)."""
        return f"{self.drawn} · {self.font}"


class ReferenceRenderer:
    """Render reference glyphs in a standard font: uint8 ``(size, size)``, white ink on black.

    ``font``: a font file or :class:`FontFace` (default
    :data:`~restoreae.data.fonts.DEFAULT_REFERENCE_FONT`, a standard Kai face; with
    ``traditional=True`` the default is ``DEFAULT_TRADITIONAL_REFERENCE_FONT``, AR PL UKai TW),
    ``face_index``: its face in a collection. ``traditional``: draw simplified characters in their
    ``s2tw`` traditional form (a model trained on traditional references); ``simplify``: draw
    traditional characters in their ``t2s`` simplified form (a model trained on simplified
    references); both off: as given. ``fallback``: when the font lacks the character, use the
    first face of ``chain`` (default :func:`installed_chain`) that draws it. The preferred form is
    tried before the given one in each font, and the model's font before the chain.

    Raises DataError when the font file is missing or unreadable, and
    :class:`NoReferenceFontError` from :meth:`draw` / :meth:`render` when no font draws the
    character.
    """

    def __init__(
        self,
        font: str | os.PathLike | FontFace | None = None,
        face_index: int = 0,
        traditional: bool = False,
        size: int = 128,
        *,
        simplify: bool = False,
        fallback: bool = True,
        chain: Sequence[FontFace] | None = None,
    ) -> None:
        if isinstance(font, FontFace):
            self.face = font
        else:
            if font is None and traditional:
                font = DEFAULT_TRADITIONAL_REFERENCE_FONT
                face_index = DEFAULT_TRADITIONAL_REFERENCE_FACE_INDEX
            elif font is None:
                font, face_index = DEFAULT_REFERENCE_FONT, DEFAULT_REFERENCE_FACE_INDEX
            self.face = load_face(Path(font), face_index)
        self.font = Path(self.face.path)
        self.face_index = self.face.face_index
        self.traditional = bool(traditional)
        self.simplify = bool(simplify) and not self.traditional
        self.size = int(size)
        self.fallback = bool(fallback)
        self._chain = tuple(chain) if chain is not None else None
        self._cache: dict[str, ReferenceGlyph] = {}

    @property
    def chain(self) -> tuple[FontFace, ...]:
        """The fallback faces (empty without ``fallback``); the model's own face is skipped."""
        if not self.fallback:
            return ()
        faces = self._chain if self._chain is not None else installed_chain()
        own = (os.path.realpath(self.font), self.face_index)
        return tuple(f for f in faces if (os.path.realpath(f.path), f.face_index) != own)

    def forms(self, char: str) -> list[str]:
        """The forms of ``char`` to try, preferred first (at most two, no duplicates)."""
        if self.traditional:
            preferred = to_traditional(char)
        elif self.simplify:
            preferred = to_simplified(char)
        else:
            preferred = char
        return list(dict.fromkeys((preferred, char)))

    def form(self, char: str) -> str:
        """The character the model's own font draws for ``char`` (preferred form if it has it)."""
        for f in self.forms(char):
            if face_covers(self.face, f):
                return f
        return char

    def draw(self, char: str) -> ReferenceGlyph:
        """The reference of ``char`` and which font drew it (see :class:`ReferenceGlyph`)."""
        if not isinstance(char, str) or len(char) != 1:
            raise DataError(f"reference glyphs are single characters, got {char!r}")
        cached = self._cache.get(char)
        if cached is not None:
            return cached
        faces = (self.face, *self.chain)
        forms = self.forms(char)
        for face in faces:
            for form in forms:
                glyph = render_glyph(face, form, self.size)
                if glyph is not None:
                    glyph.setflags(write=False)
                    ref = ReferenceGlyph(
                        glyph,
                        char,
                        form,
                        face.name,
                        Path(face.path),
                        face.face_index,
                        face is not self.face,
                    )
                    if len(self._cache) < 20000:
                        self._cache[char] = ref
                    return ref
        raise NoReferenceFontError(char, [f.name for f in faces])

    def render(self, char: str) -> np.ndarray:
        """uint8 ``(size, size)`` reference glyph, white (255) on black (0); a fresh array."""
        return self.draw(char).glyph.copy()

    def __repr__(self) -> str:
        return (
            f"ReferenceRenderer(font={str(self.font)!r}, face_index={self.face_index}, "
            f"traditional={self.traditional}, simplify={self.simplify}, size={self.size}, "
            f"fallback={self.fallback})"
        )


#: Whether a model trained on simplified references only gets a traditional character's simplified
#: form (OpenCC ``t2s``, drawn in its own font) instead of the traditional form (drawn by the
#: chain). Chosen by measurement on real calligraphy: see docs/RESULTS.md, "Any character".
SIMPLIFY_FOR_SIMPLIFIED_MODELS = True


def renderer_for_model(metadata: dict, size: int) -> ReferenceRenderer:
    """The reference renderer matching a model's metadata (``reference_font``,
    ``reference_face_index``, ``traditional``, ``traditional_chars``).

    The model's font is used when installed (else the default Kai font, with a warning). A model
    trained on traditional references gets ``s2tw`` forms; one trained on simplified references
    only (no ``traditional_chars`` in its corpus) gets ``t2s`` forms when
    :data:`SIMPLIFY_FOR_SIMPLIFIED_MODELS`; otherwise characters are drawn as given.
    """
    import warnings

    font = metadata.get("reference_font")
    face = int(metadata.get("reference_face_index") or 0)
    trad = bool(metadata.get("traditional") or False)
    simplify = SIMPLIFY_FOR_SIMPLIFIED_MODELS and not trad and not metadata.get("traditional_chars")
    try:
        return ReferenceRenderer(font, face, traditional=trad, size=size, simplify=simplify)
    except DataError as exc:
        if font is None:
            raise
        warnings.warn(
            f"the model's reference font {font!r} is not available here ({exc}); "
            "using the default reference font",
            stacklevel=3,
        )
        return ReferenceRenderer(None, traditional=trad, size=size, simplify=simplify)
