"""Backends: the only code that touches infrastructure (simulated or real)."""
