"""The standard-font reference glyph (the model's optional second input channel)."""

from __future__ import annotations

import functools
import os
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

__all__ = ["ReferenceRenderer", "to_traditional"]


@functools.lru_cache(maxsize=1)
def _s2tw():
    import opencc

    return opencc.OpenCC("s2tw")


def to_traditional(char: str) -> str:
    """The Taiwan-standard traditional form of a simplified character (OpenCC ``s2tw``).

    Returns ``char`` unchanged when OpenCC gives no single-character conversion.
    """
    out = _s2tw().convert(char)
    return out if len(out) == 1 else char


class ReferenceRenderer:
    """Render reference glyphs in a standard font: uint8 ``(size, size)``, white ink on black.

    ``font``: a font file (default :data:`~restoreae.data.fonts.DEFAULT_REFERENCE_FONT`, a standard
    Kai face; with ``traditional=True`` the default is ``DEFAULT_TRADITIONAL_REFERENCE_FONT``, AR PL
    UKai TW, since the GB Kai font lacks most traditional forms), ``face_index``: its face in a
    collection. With ``traditional=True`` a simplified character is first converted with OpenCC
    ``s2tw`` (书 → 書); when the font lacks the traditional form, the simplified one is drawn. Raises DataError when the font file is missing
    or unreadable, and from :meth:`render` when the font cannot draw the character.
    """

    def __init__(
        self,
        font: str | os.PathLike | FontFace | None = None,
        face_index: int = 0,
        traditional: bool = False,
        size: int = 128,
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
        self.size = int(size)
        self._cache: dict[str, np.ndarray] = {}

    def form(self, char: str) -> str:
        """The character actually drawn for ``char`` (its traditional form when enabled and drawable)."""
        if self.traditional:
            trad = to_traditional(char)
            if trad != char and face_covers(self.face, trad):
                return trad
        return char

    def render(self, char: str) -> np.ndarray:
        """uint8 ``(size, size)`` reference glyph, white (255) on black (0); a fresh array."""
        cached = self._cache.get(char)
        if cached is not None:
            return cached.copy()
        drawn = self.form(char)
        glyph = render_glyph(self.face, drawn, self.size)
        if glyph is None and drawn != char:
            glyph = render_glyph(self.face, char, self.size)
        if glyph is None:
            raise DataError(
                f"reference font {self.font} (face {self.face_index}) cannot draw {char!r} "
                f"(U+{ord(char):04X})"
                if len(char) == 1
                else f"reference glyphs are single characters, got {char!r}"
            )
        if len(self._cache) < 20000:
            self._cache[char] = glyph
        return glyph.copy()

    def __repr__(self) -> str:
        return (
            f"ReferenceRenderer(font={str(self.font)!r}, face_index={self.face_index}, "
            f"traditional={self.traditional}, size={self.size})"
        )
