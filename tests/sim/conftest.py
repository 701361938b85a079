"""Shared inputs for the simulator tests: the bundled day and a small slice of it."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from presplit.traces import read_planetlab


@pytest.fixture(scope="session")
def planetlab_day():
    return read_planetlab(files("presplit") / "data" / "planetlab" / "20110303")


@pytest.fixture(scope="session")
def small_day(planetlab_day):
    """150 guests of the bundled day (every 7th), CPU utilisation [guests, 288]."""
    return np.ascontiguousarray(planetlab_day.resource("cpu")[::7])
