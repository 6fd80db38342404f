"""restoreae.data: charsets, font registry + glyph rendering, corpus builder and reader.

Glyph images are ``numpy.uint8`` ``(S, S)``, white ink (255) on black (0). The public names below
are imported lazily, so ``import restoreae.data.charsets`` stays light.
"""

from __future__ import annotations

from restoreae.lazy import lazy_exports

_EXPORTS = {
    "GB2312_LEVEL1": "charsets",
    "get_charset": "charsets",
    "DEFAULT_REFERENCE_FONT": "fonts",
    "DEFAULT_REFERENCE_FACE_INDEX": "fonts",
    "DEFAULT_TRADITIONAL_REFERENCE_FONT": "fonts",
    "DEFAULT_TRADITIONAL_REFERENCE_FACE_INDEX": "fonts",
    "FontFace": "fonts",
    "discover_fonts": "fonts",
    "load_face": "fonts",
    "render_glyph": "fonts",
    "ReferenceRenderer": "reference",
    "Corpus": "corpus",
    "build_corpus": "corpus",
    "format_summary": "corpus",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
