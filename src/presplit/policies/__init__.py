"""Policies: the CloudSim baselines and presplit's own; pure over a placement view."""

from presplit.policies.registry import PolicyError, make_policy, policy_names

__all__ = ["PolicyError", "make_policy", "policy_names"]
