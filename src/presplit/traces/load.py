"""One entry point that recognises a trace by its shape and calls the right reader.

This module owns only the dispatch rules; each reader still validates its own
input in full, so a file that is routed correctly but malformed gets that
reader's precise error.

* a folder whose visible files are all ``.csv``       -> Bitbrains raw per-VM files
* a folder of files whose first value is an integer   -> PlanetLab day folder
* a ``.parquet`` file                                 -> long table
* a ``.csv`` file whose header is ``;``-separated       -> one Bitbrains raw per-VM file
* any other ``.csv`` file                             -> long table (comma-separated)
"""

from __future__ import annotations

from pathlib import Path

from presplit.model.workload import Workload
from presplit.traces.errors import TraceError
from presplit.traces.planetlab import read_planetlab

# The Bitbrains and long-table readers need pyarrow: they are imported only
# when such a trace is met, so PlanetLab runs start without paying for it.

ACCEPTED = ("a PlanetLab day folder (one file per VM, 288 integer CPU percents), "
            "a Bitbrains raw .csv or folder of them, or a long-format .parquet or .csv")


def load_trace(path: str | Path) -> Workload:
    """Read any supported trace into a :class:`Workload`; see the module doc for the rules."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    raise TraceError(path, "no such file or folder", expected=ACCEPTED)


def _load_folder(folder: Path) -> Workload:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise TraceError(folder, "empty folder", expected=ACCEPTED)
    if all(p.suffix.lower() == ".csv" for p in files):
        from presplit.traces.bitbrains import read_bitbrains_csv

        return read_bitbrains_csv(folder)
    if _first_value_is_integer(files[0]):
        return read_planetlab(folder)
    lineno, first = _first_line_numbered(files[0])
    what = "binary data" if _looks_binary(files[0]) else f"first value {first[:40]!r}" if first else "no values"
    raise TraceError(files[0], f"cannot tell the trace kind of folder {folder.name!r}: {what} is not an integer "
                     "CPU percent (PlanetLab), and not every file is a .csv (Bitbrains)", line=lineno,
                     expected=ACCEPTED)


def _load_file(path: Path) -> Workload:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from presplit.traces.long_table import read_long_table

        return read_long_table(path)
    if suffix == ".csv":
        from presplit.traces.bitbrains import RAW_DELIMITER, RAW_FIRST_COLUMN, read_bitbrains_csv
        from presplit.traces.long_table import read_long_table

        first = _first_line(path)
        # A raw Bitbrains header with another separator goes there too, to be told so.
        if RAW_DELIMITER in first or first.startswith(RAW_FIRST_COLUMN):
            return read_bitbrains_csv(path)
        return read_long_table(path)
    raise TraceError(path, f"unknown file type {suffix or '(no suffix)'!r}", expected=ACCEPTED)


def _first_line(path: Path) -> str:
    return _first_line_numbered(path)[1]


def _first_line_numbered(path: Path) -> tuple[int, str]:
    """(line number, text) of the first non-blank line; (1, "") for a blank file."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                return lineno, raw.strip()
    return 1, ""


def _looks_binary(path: Path) -> bool:
    """A NUL byte or invalid UTF-8 in the first 4 KB."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3  # not just a character cut at the 4 KB boundary
    return False


def _first_value_is_integer(path: Path) -> bool:
    try:
        int(_first_line(path))
    except ValueError:
        return False
    return True
