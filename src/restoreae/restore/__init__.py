"""Restoration of real images: preprocessing, the Restorer API (PyTorch / ONNX Runtime), export.

``from restoreae.restore import Restorer`` (loaded lazily, so importing this package is cheap).
Modules: :mod:`~restoreae.restore.preprocess` (image files → model glyphs and back),
:mod:`~restoreae.restore.backends`, :mod:`~restoreae.restore.api`,
:mod:`~restoreae.restore.export`, :mod:`~restoreae.restore.command` (``restoreae restore``),
:mod:`~restoreae.restore.demo` (``restoreae demo``).
"""

from __future__ import annotations

from restoreae.lazy import lazy_exports

__all__ = ["ImageError", "Restorer"]


__getattr__, __dir__ = lazy_exports(globals(), {"ImageError": "preprocess", "Restorer": "api"})
