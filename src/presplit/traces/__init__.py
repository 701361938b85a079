"""Readers of real traces into a :class:`presplit.model.Workload`.

``load_trace`` recognises the kind of trace; the readers can also be called
directly. Every reader raises :class:`TraceError` (naming file, line or column
and what was expected) and never returns a half-loaded workload.
"""

from presplit.traces.errors import TraceError
from presplit.traces.load import load_trace
from presplit.traces.planetlab import read_planetlab


def __getattr__(name: str):
    # Readers that need pyarrow load on first use (PEP 562), keeping start-up fast.
    if name == "read_bitbrains_csv":
        from presplit.traces.bitbrains import read_bitbrains_csv

        return read_bitbrains_csv
    if name == "read_long_table":
        from presplit.traces.long_table import read_long_table

        return read_long_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TraceError", "load_trace", "read_bitbrains_csv", "read_long_table", "read_planetlab"]
