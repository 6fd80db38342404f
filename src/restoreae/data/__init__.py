"""restoreae.data: charsets, font registry + glyph rendering, corpus builder and reader.

Glyph images are ``numpy.uint8`` ``(S, S)``, white ink (255) on black (0). The public names below
are imported lazily, so ``import restoreae.data.charsets`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'restoreae.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"restoreae.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
