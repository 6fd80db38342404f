"""Character sets: the built-in GB2312 level 1 set and user character files."""

from __future__ import annotations

import codecs
from pathlib import Path

from restoreae.errors import DataError

__all__ = ["BUILTIN_CHARSETS", "GB2312_LEVEL1", "get_charset"]


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


def get_charset(name_or_path: str) -> str:
    """The characters of a built-in charset (``gb2312-1``) or of a UTF-8 text file.

    A file holds one or more characters per line; whitespace is ignored, duplicates are removed and
    the first-seen order is kept. Raises DataError for an unknown name, an unreadable or non-UTF-8
    file, or an empty set.
    """
    key = str(name_or_path)
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
