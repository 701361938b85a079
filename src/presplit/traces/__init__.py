"""Readers of real traces into a :class:`presplit.model.Workload`."""

from presplit.traces.errors import TraceError
from presplit.traces.planetlab import read_planetlab

__all__ = ["TraceError", "read_planetlab"]
