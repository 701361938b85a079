"""CloudSim 3.0.3's consolidation policies (NPA, DVFS, detector-selector pairs), reproduced."""
