"""Delimited text (CSV-like) files of numbers, read fast but reported precisely.

This module owns turning one text table into numpy columns. The fast path is
``pyarrow.csv`` (C++, multithreaded); it reports bad values only vaguely
(column index, no line number), so when it fails -- or when it hands back a
null, a non-finite number or a value outside the column's range -- we re-scan
the file in Python once to find the first offending line and column and raise
a :class:`TraceError` naming them and the range expected.
The slow scan runs only on the error path, so good files pay nothing for it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from presplit.extras import require

require("parquet", "pyarrow")  # before pyarrow: a missing extra is one line, not a traceback
import pyarrow as pa
import pyarrow.csv as pacsv

from presplit.traces.errors import TraceError
from presplit.traces.samples import first_out_of_range, range_problem


def read_header(path: Path, delimiter: str, *, expected: str) -> list[str]:
    """Column names from the first line, whitespace-stripped.

    ``expected`` describes the header we want, for the error message.
    """
    try:
        # utf-8-sig: a spreadsheet-saved CSV may start with a byte-order mark.
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
    except FileNotFoundError:
        raise TraceError(path, "no such file", expected=expected) from None
    except UnicodeDecodeError:
        raise TraceError(path, "header is not UTF-8 text", line=1, expected=expected) from None
    if not first.strip():
        raise TraceError(path, "empty file, no header", line=1, expected=expected)
    # csv.reader so that quoted names ("vm_id") come out unquoted.
    names = next(csv.reader([first], delimiter=delimiter))
    return [n.strip() for n in names]


def read_numeric_table(path: Path, names: Sequence[str], delimiter: str, *,
                       text_columns: Sequence[str] = (),
                       ranges: Mapping[str, tuple[float, float, str]] | None = None,
                       ) -> dict[str, np.ndarray | pa.ChunkedArray]:
    """Data rows after the header as ``{name: array}``.

    Every column is float64 except ``text_columns`` (kept as a pyarrow array
    of strings, e.g. a VM id). ``names`` must be the already-validated header,
    in file order. Blank lines are ignored. ``ranges`` maps a column name to
    ``(lowest, highest, description)``: a value outside is refused. Raises
    :class:`TraceError` for a header with no data rows and for the first
    unparsable, non-finite or out-of-range value, naming its line.
    """
    ranges = ranges or {}
    types = {n: (pa.string() if n in text_columns else pa.float64()) for n in names}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(names), skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    except pa.ArrowInvalid as exc:
        raise _bad_value_error(path, names, delimiter, text_columns, ranges, arrow_message=str(exc)) from None
    if table.num_rows == 0:
        raise TraceError(path, "header but no data rows", line=2, expected="at least one data row")
    out: dict[str, np.ndarray | pa.ChunkedArray] = {}
    for name in names:
        col = table.column(name)
        if name in text_columns:
            out[name] = col
            continue
        # zero_copy is not possible across chunks; the copy is one memcpy per column.
        values = col.to_numpy() if col.null_count == 0 else None
        if values is None or not np.isfinite(values).all():
            # Nulls come from empty fields and from "nan"/"NA"-style tokens.
            raise _bad_value_error(path, names, delimiter, text_columns, ranges, arrow_message=None)
        if name in ranges:
            low, high, what = ranges[name]
            row = first_out_of_range(values, low, high)
            if row is not None:
                raise _bad_value_error(path, names, delimiter, text_columns, ranges, arrow_message=None,
                                       fallback=(name, row, float(values[row])))
        out[name] = values
    return out


def _bad_value_error(path: Path, names: Sequence[str], delimiter: str, text_columns: Sequence[str],
                     ranges: Mapping[str, tuple[float, float, str]], *, arrow_message: str | None,
                     fallback: tuple[str, int, float] | None = None) -> TraceError:
    """Scan the file in Python for the first bad field and describe it.

    ``fallback`` (column, data row, value): an out-of-range value the fast path
    found, reported by data row should the scan not meet it (it always should).
    """
    with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)  # header, already validated by the caller
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line; pyarrow skips these too
            lineno = reader.line_num
            if len(fields) != len(names):
                return TraceError(path, f"{len(fields)} fields", line=lineno,
                                  expected=f"{len(names)} fields separated by {delimiter!r}")
            for name, text in zip(names, fields):
                if name in text_columns:
                    continue
                low, high, what = ranges.get(name, (None, None, "a finite number"))
                problem = _number_problem(text.strip())
                if problem is None and low is not None:
                    problem = range_problem(float(text), low, high)
                if problem:
                    return TraceError(path, problem, line=lineno, column=name, expected=what)
    if fallback is not None:
        name, row, value = fallback
        low, high, what = ranges[name]
        return TraceError(path, f"{range_problem(value, low, high)} in data row {row + 1}", column=name,
                          expected=what)
    # Python accepted every value yet pyarrow did not: pass pyarrow's words on.
    detail = f": {arrow_message}" if arrow_message else ""
    return TraceError(path, f"could not parse the table{detail}", expected="numbers in every column")


def _number_problem(text: str) -> str | None:
    """What is wrong with one numeric field, or None when it is a finite number."""
    if not text:
        return "empty value"
    try:
        value = float(text)
    except ValueError:
        return f"not a number: {text[:40]!r}"
    if not np.isfinite(value):
        return f"not a finite number: {text[:40]!r}"
    return None
