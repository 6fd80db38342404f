"""Lazy public names of a package: ``from restoreae.data import Corpus`` imports ``data.corpus``
only when the name is first used, so importing a package (and ``restoreae --help``) stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package whose names live in submodules.

    ``namespace``: the package's ``globals()``; ``exports``: public name → submodule path
    relative to the package (``"corpus"``, ``"restore.api"``). A name is imported on first use and
    then kept in ``namespace``; any other name raises ``AttributeError``.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
