"""Values shared by every layer: workloads, host and guest types, power models."""

from presplit.model.workload import RESOURCES, Workload

__all__ = ["RESOURCES", "Workload"]
