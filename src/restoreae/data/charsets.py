"""Character sets: the built-in GB2312 level 1 set and user character files.

A charset name may end in ``+traditional`` (``gb2312-1+traditional``, ``my-chars.txt+traditional``):
the traditional forms of its characters (OpenCC ``s2t``) are appended, without duplicates, so a
corpus holds the forms inscriptions and rubbings use alongside the simplified ones.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from restoreae.errors import DataError

__all__ = [
    "BUILTIN_CHARSETS",
    "GB2312_LEVEL1",
    "TRADITIONAL_SUFFIX",
    "charset_name",
    "get_charset",
    "with_traditional",
]


def _gb2312_level1() -> str:
    """Decode every defined cell of GB2312 rows 16-55 (bytes 0xB0A1..0xD7F9): 3755 Han characters,
    in GB2312 (pinyin) order."""
    decode = codecs.getdecoder("gb2312")
    chars = []
    for lead in range(0xB0, 0xD8):  # rows 16..55
        for trail in range(0xA1, 0xFF):
            try:
                ch, _ = decode(bytes((lead, trail)))
            except UnicodeDecodeError:
                continue  # undefined cell (row 55 ends at 0xD7F9)
            chars.append(ch)
    return "".join(chars)


#: GB2312 level-1 Han characters (3755, rows 16-55, pinyin order).
GB2312_LEVEL1: str = _gb2312_level1()

BUILTIN_CHARSETS: dict[str, str] = {"gb2312-1": GB2312_LEVEL1}
#: Appended to a charset name: add the traditional forms of its characters.
TRADITIONAL_SUFFIX = "+traditional"


def with_traditional(chars: str) -> str:
    """``chars`` followed by the OpenCC ``s2t`` traditional forms of its characters that differ
    and are not already in it (first-seen order, no duplicates)."""
    from restoreae.data.reference import to_traditional

    extra = (to_traditional(c, "s2t") for c in chars)
    return "".join(dict.fromkeys([*chars, *extra]))


def charset_name(spec: str) -> str:
    """The name recorded in a corpus manifest: a built-in name as given (lower case), a file's
    name, each with its ``+traditional`` suffix."""
    key = str(spec)
    trad = key.lower().endswith(TRADITIONAL_SUFFIX)
    base = key[: -len(TRADITIONAL_SUFFIX)] if trad else key
    name = base.lower() if base.lower() in BUILTIN_CHARSETS else Path(base).name
    return name + (TRADITIONAL_SUFFIX if trad else "")


def get_charset(name_or_path: str) -> str:
    """The characters of a built-in charset (``gb2312-1``) or of a UTF-8 text file, plus their
    traditional forms when the name ends in ``+traditional``.

    A file holds one or more characters per line (any characters); whitespace is ignored,
    duplicates are removed and the first-seen order is kept. Raises DataError for an unknown name,
    an unreadable or non-UTF-8 file, or an empty set.
    """
    key = str(name_or_path)
    if key.lower().endswith(TRADITIONAL_SUFFIX) and not Path(key).is_file():
        return with_traditional(get_charset(key[: -len(TRADITIONAL_SUFFIX)]))
    if key.lower() in BUILTIN_CHARSETS:
        return BUILTIN_CHARSETS[key.lower()]
    path = Path(key)
    if not path.is_file():
        raise DataError(
            f"unknown charset {key!r}: not a built-in name ({', '.join(BUILTIN_CHARSETS)}) "
            "and not a file"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read charset file {path} as UTF-8: {exc}") from exc
    chars = "".join(dict.fromkeys(ch for ch in text if not ch.isspace()))
    if not chars:
        raise DataError(f"charset file {path} contains no characters")
    return chars
