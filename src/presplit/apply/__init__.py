"""Applying plans: the applier, its journal, reconciliation after a crash, and the leadership lease."""

from presplit.apply.applier import Applier, PlanResult, plan_status, submit_plan
from presplit.apply.journal import Journal
from presplit.apply.lease import lease_for, wait_for_lease
from presplit.apply.reconcile import reconcile

__all__ = ["Applier", "Journal", "PlanResult", "lease_for", "plan_status", "reconcile", "submit_plan", "wait_for_lease"]
