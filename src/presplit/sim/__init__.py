"""The trace-driven simulator backend: CloudSim's consolidation model, fast."""

from presplit.sim.engine import Engine, SimResult
from presplit.sim.runner import run_simulation

__all__ = ["Engine", "SimResult", "run_simulation"]
