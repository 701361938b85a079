"""Policies: the CloudSim baselines and presplit's own; pure over a placement view.

:mod:`presplit.policies.api` documents what a policy implements for each engine
(:class:`Policy`, :class:`DomainEnginePolicy`, :class:`CloudSimEnginePolicy`); :func:`make_policy`
builds built-in policies and plugins (``FILE.py:Class``, ``module:Class`` or an
entry point of the ``presplit.policies`` group) from their names.
"""

from presplit.policies.api import (
    CloudSimEnginePolicy,
    CloudSimEngineState,
    DomainEnginePolicy,
    DomainForecasts,
    Policy,
    first_fit,
    param,
)
from presplit.policies.registry import PolicyError, engines, make_policy, policy_names

__all__ = [
    "CloudSimEnginePolicy", "CloudSimEngineState", "DomainEnginePolicy", "DomainForecasts", "Policy", "PolicyError",
    "engines", "first_fit", "make_policy", "param", "policy_names",
]
