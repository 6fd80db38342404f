"""The one registry class for every "name → thing" table: models, damage, style, losses, metrics.

A :class:`Registry` is a read-only mapping in registration order that is filled by decorators
(``@register_model``, ``@register_damage``, ``@register_style``, ...) and, when given a
``loader``, imports the modules that register the built-in entries on its first lookup (so
importing a package stays light and no folder is auto-imported). An unknown name raises
:class:`UnknownNameError` with a "did you mean" hint and the known names. Imports no torch.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from restoreae.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError, ValueError):
    """A name that is not in a registry (the one error type of every registry).

    A :class:`ConfigError` (the CLI reports it as bad input), and also a ``KeyError`` (a failed
    lookup) and a ``ValueError`` (a bad value), as the hand-written registries it replaced raised.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """Entries of one kind by name. ``what`` names the kind in messages ("model", "damage op").

    ``loader``: called once, before the first lookup, to import the modules whose decorators
    register the built-in entries.
    """

    def __init__(self, what: str, loader: Callable[[], object] | None = None) -> None:
        self.what = what
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None
        self._loading = False

    # ------------------------------------------------------------------ filling
    def register(self, name: str, entry: T) -> None:
        """Add ``entry`` as ``name``; ``ValueError`` when another entry already has that name
        (registering an equal entry again, e.g. on a module re-import, is allowed)."""
        old = self._entries.get(name)
        if old is not None and old != entry:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry

    def replace(self, name: str, entry: T) -> None:
        """Replace the entry of an already registered ``name`` (e.g. attach a torch version)."""
        self._load()
        if name not in self._entries:
            raise self.unknown(name)
        self._entries[name] = entry

    # ------------------------------------------------------------------ lookups
    def _load(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            assert self._loader is not None
            self._loader()
        finally:
            self._loading = False
        self._loaded = True

    def unknown(self, name: object, where: str = "") -> UnknownNameError:
        """The error for an unknown ``name``: "[where: ]unknown WHAT 'x' (did you mean 'y'?);
        known: a, b, c"."""
        self._load()
        known = list(self._entries)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        prefix = f"{where}: " if where else ""
        return UnknownNameError(
            f"{prefix}unknown {self.what} {name!r}{hint}; known: {', '.join(known) or 'none'}"
        )

    def get_entry(self, name: str, where: str = "") -> T:
        """The entry of ``name``; :class:`UnknownNameError` (prefixed with ``where``) otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown(name, where) from None

    def __getitem__(self, name: str) -> T:
        return self.get_entry(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names in registration order; with ``pattern`` only those matching it as a
        shell-style wildcard (``fnmatch``, case-sensitive)."""
        self._load()
        if pattern is None:
            return list(self._entries)
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} entries)"
