"""Values shared by every layer: workloads, host and guest types, power models."""

from presplit.model.hardware import Fleet, GuestType, HostType, PowerModel, SimModel, cloudsim_preset
from presplit.model.workload import RESOURCES, Workload

__all__ = ["RESOURCES", "Fleet", "GuestType", "HostType", "PowerModel", "SimModel", "Workload", "cloudsim_preset"]
