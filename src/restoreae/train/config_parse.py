"""Typed config parsing: a mapping (from YAML) → nested dataclasses, and ``--set`` overrides.

Each value is checked against its field's annotation (``bool``, ``int``, ``float``, ``str``,
``dict``, ``list[...]``, unions with ``None``, nested dataclasses); an unknown key, or a value of
the wrong type, raises :class:`~restoreae.errors.ConfigError` naming the key (``section.key``),
where it came from (the file or the override) and, for a misspelt key, the closest known one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from typing import Any

import yaml

from restoreae.errors import ConfigError

__all__ = ["apply_overrides", "build_dataclass"]

#: Annotations checked by one ``isinstance``-like test: what the message says is expected.
_SIMPLE: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true/false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    dict: ("a mapping", lambda v: isinstance(v, dict)),
    list: ("a list", lambda v: isinstance(v, list | tuple)),
}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _field_names(cls: type) -> list[str]:
    """The config keys of dataclass ``cls`` (``source``, where a config came from, is not one)."""
    return [f.name for f in dataclasses.fields(cls) if f.name != "source"]


def _closest(name: str, names: list[str]) -> str | None:
    close = difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


def _wrong(key: str, expected: str, value: Any, where: str) -> ConfigError:
    return ConfigError(
        f"{key}: expected {expected}, got {type(value).__name__} {value!r} (in {where})"
    )


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: must not be null (in {where})")
        for arg in args:
            if arg is type(None):
                continue
            with contextlib.suppress(ConfigError):
                return _coerce(value, arg, key, where)
        raise _wrong(key, _type_name(tp), value, where)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "4e-3" as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(key, "a number", value, where)
        return float(value)
    base = origin or tp
    if base not in _SIMPLE:
        raise TypeError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover
    expected, ok = _SIMPLE[base]
    if not ok(value):
        raise _wrong(key, expected, value, where)
    if base is list:
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]", where) for i, v in enumerate(value)]
    return dict(value) if base is dict else value


def build_dataclass(cls: type, raw: Any, prefix: str, where: str) -> Any:
    """Build dataclass ``cls`` from the mapping ``raw`` (None: all defaults), its nested
    dataclass fields from nested mappings; ``prefix`` (``"optim"``) and ``where`` (the file) go
    into error messages. Unknown keys and values of the wrong type raise ConfigError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        name = prefix or "the config"
        raise ConfigError(f"{name}: expected a mapping, got {type(raw).__name__} (in {where})")
    hints = typing.get_type_hints(cls)
    names = _field_names(cls)
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = _closest(str(key), names)
            hint = f"; did you mean '{(prefix + '.') if prefix else ''}{close}'?" if close else ""
            raise ConfigError(f"unknown key '{full}' in {where}{hint} (known: {', '.join(names)})")
        tp = hints[key]
        if _is_dataclass_type(tp):
            kwargs[key] = build_dataclass(tp, value, full, where)
        else:
            kwargs[key] = _coerce(value, tp, full, where)
    return cls(**kwargs)


def _check_override_path(root: type, parts: list[str], override: str) -> None:
    """Raise ConfigError if ``parts`` is not a key of dataclass ``root`` (free-form dicts
    allowed)."""
    cls: Any = root
    for i, part in enumerate(parts):
        full = ".".join(parts[: i + 1])
        if not _is_dataclass_type(cls):
            return  # inside a free-form mapping (model.kwargs, data.damage, train.loss)
        names = _field_names(cls)
        if part not in names:
            close = _closest(part, names)
            hint = f"; did you mean '{'.'.join(parts[:i] + [close])}'?" if close else ""
            raise ConfigError(f"unknown key '{full}' in override '{override}'{hint}")
        tp = typing.get_type_hints(cls)[part]
        if _is_dataclass_type(tp):
            cls = tp
        elif dict in (typing.get_args(tp) or (tp,)):
            cls = dict
        elif i < len(parts) - 1:
            raise ConfigError(f"'{full}' is not a section (in override '{override}')")


def apply_overrides(raw: dict, overrides: list[str], root: type) -> dict:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw config mapping of the
    dataclass ``root``; a key that is not one of ``root``'s raises ConfigError."""
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override '{override}' must look like section.key=value")
        key, _, text = override.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override '{override}' has an empty key")
        _check_override_path(root, parts, override)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{override}': value is not valid YAML ({exc})") from None
        node = raw
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return raw
