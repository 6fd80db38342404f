"""``--chars-csv``: the character shown in each input file, from ``path,char`` rows."""

from __future__ import annotations

from pathlib import Path

from restoreae.errors import RestoreAEError
from restoreae.imageio import describe_non_file
from restoreae.utils import read_user_csv


class CharMap:
    """``path,char`` rows of a CSV: look up the character of an input file.

    A header row ``path,char`` is optional (any other header is an error naming the expected
    columns). Lookup order: the path as given, the resolved path, then the file name (when no two
    rows give one file name different characters). :meth:`unused` names the rows no lookup
    matched, with their line numbers.
    """

    def __init__(self, csv_path: str | Path) -> None:
        from restoreae.restore.api import AUTO, validate_char

        self.csv_path = Path(csv_path)
        self.by_path: dict[str, tuple[str, int]] = {}
        self.by_resolved: dict[Path, tuple[str, int]] = {}
        self.by_name: dict[str, tuple[str, int] | None] = {}
        self.lines: dict[int, str] = {}  # line number → path as written
        self.used: set[int] = set()
        if self.csv_path.exists() and not self.csv_path.is_file():
            raise RestoreAEError(
                f"{self.csv_path}: --chars-csv is {describe_non_file(self.csv_path)}, not a CSV file"
            )
        rows = read_user_csv(self.csv_path, "CSV file")
        base = self.csv_path.parent
        for lineno, row in enumerate(rows, start=1):
            if not row or all(not c.strip() for c in row):
                continue
            cells = [c.strip() for c in row]
            if lineno == 1 and [c.lower() for c in cells] == ["path", "char"]:
                continue
            if (
                lineno == 1
                and (len(cells) != 2 or (len(cells[1]) > 1 and cells[1] != AUTO))
                and cells[0]
            ):
                raise RestoreAEError(
                    f"{self.csv_path}:1: expected the columns path,char (a header line "
                    f"'path,char' is optional), got {','.join(cells)!r}"
                )
            if len(row) != 2:
                raise RestoreAEError(
                    f"{self.csv_path}:{lineno}: expected 2 columns path,char, got {len(row)}: {row}"
                )
            path, char = cells[0], row[1]
            if not path:
                raise RestoreAEError(f"{self.csv_path}:{lineno}: empty path")
            try:
                char = AUTO if char.strip() == AUTO else validate_char(char, "the char column")
            except RestoreAEError as exc:
                raise RestoreAEError(f"{self.csv_path}:{lineno}: {exc}") from None
            entry = (char, lineno)
            self.lines[lineno] = path
            self.by_path[path] = entry
            for cand in (Path(path), base / path):
                self.by_resolved[cand.resolve()] = entry
            name = Path(path).name
            if name in self.by_name and (self.by_name[name] or ("",))[0] != char:
                self.by_name[name] = None  # ambiguous file name
            else:
                self.by_name[name] = entry
        if not self.by_path:
            raise RestoreAEError(f"{self.csv_path}: no path,char rows")

    def lookup(self, path: Path, given: str | None = None) -> str | None:
        """The character of ``path`` (None when the CSV does not list it)."""
        entry = None
        if given is not None and given in self.by_path:
            entry = self.by_path[given]
        elif str(path) in self.by_path:
            entry = self.by_path[str(path)]
        elif path.resolve() in self.by_resolved:
            entry = self.by_resolved[path.resolve()]
        elif path.name in self.by_name:
            entry = self.by_name[path.name]
            if entry is None:
                raise RestoreAEError(
                    f"{path}: {self.csv_path} lists file name {path.name!r} with different "
                    "characters; give its path instead"
                )
        if entry is None:
            return None
        self.used.add(entry[1])
        return entry[0]

    def unused(self) -> list[str]:
        """``CSV:LINE: 'path' matches none of the inputs`` for each row no lookup matched."""
        return [
            f"{self.csv_path}:{n}: {p!r} matches none of the inputs"
            for n, p in sorted(self.lines.items())
            if n not in self.used
        ]

    def __len__(self) -> int:
        return len(self.by_path)

    @property
    def has_auto(self) -> bool:
        """Whether some row asks for ``auto``."""
        from restoreae.restore.api import AUTO

        return any(char == AUTO for char, _ in self.by_path.values())
