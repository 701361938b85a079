"""The journal's plans folded into the service's timeline, per-guest moves and running counts.

:class:`Timeline` reads new plans from the API's own journal connection after
every tick and command (:meth:`Timeline.ingest_new`) or one plan right after
an operator decided on it (:meth:`Timeline.ingest_plan`), keeps the newest
``limit`` action entries (``/api/timeline``) and every guest's moves
(``/api/guests/{id}``), and counts what finished exactly once -- in the
Prometheus metrics and in ``moves_done`` (live migrations and re-pins that
succeeded, which the fleet history charts) -- however often an action is
seen again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from presplit.apply import status as apply_status
from presplit.service import schemas as S
from presplit.service.views import MOVE_KINDS

GUEST_KINDS = ("PlaceGuest", "MoveGuest", "MigrateGuest")
TERMINAL = apply_status.TERMINAL - {apply_status.ActionStatus.RECOMMENDED}  # finished: counted in the metrics


class Timeline:
    """``observe()``: the world's state now (or None), which an entry reads its domains' hosts from."""

    def __init__(self, reader, limit: int, observe, *, metrics=None) -> None:
        self.reader, self.limit, self.observe, self.metrics = reader, limit, observe, metrics
        self.entries: OrderedDict[tuple[int, int], S.TimelineEntry] = OrderedDict()
        self.moves: dict[int, dict[tuple[int, int], S.Move]] = {}
        self.moves_done = {"live": 0, "repin": 0}  # live migrations and re-pins that succeeded (running totals)
        self.counted: set[tuple[int, int]] = set()  # actions seen finished: counted once
        self.counted_plans: set[tuple[int, str]] = set()
        self.last_plan = 0
        self.lock = threading.Lock()  # the API's threads read what the loop's thread writes

    def ingest_new(self, *, initial: bool = False) -> list[S.TimelineEntry]:
        """The plans journaled since the last look; ``initial``: a start, whose history is shown, not counted."""
        plans = self.reader.plans(50 if initial else 20)
        new = [p for p in reversed(plans) if p["id"] > self.last_plan]
        out = []
        for p in new:
            out.extend(self._ingest(p, count=not initial))
            self.last_plan = max(self.last_plan, p["id"])
        return out

    def ingest_plan(self, plan_id: int) -> list[S.TimelineEntry]:
        """One plan again (an operator decided on it): what changed since it was last seen."""
        from presplit.service.routes.common import plan_row

        row = plan_row(self.reader, plan_id)
        return self._ingest(row, count=True) if row is not None else []

    def _ingest(self, plan: dict, *, count: bool) -> list[S.TimelineEntry]:
        from presplit.service.routes.common import action_entry

        state = self.observe()
        out = []
        if count and self.metrics is not None and (plan["id"], plan["status"]) not in self.counted_plans \
                and plan["status"] != "running":
            self.counted_plans.add((plan["id"], plan["status"]))
            self.metrics.plans.labels(plan["status"]).inc()
        for row in self.reader.actions_of(plan["id"]):
            entry = action_entry(row, plan["tick"], state)
            key = (entry.plan_id, entry.idx)
            old = self.entries.get(key)
            if old is not None and old.status == entry.status:
                continue
            with self.lock:
                self.entries[key] = entry
                while len(self.entries) > self.limit:
                    self.entries.popitem(last=False)
            out.append(entry)
            if count and entry.status in TERMINAL and key not in self.counted:
                self.counted.add(key)
                if entry.status == "succeeded" and entry.kind in MOVE_KINDS:
                    self.moves_done[MOVE_KINDS[entry.kind]] += 1
                if self.metrics is not None:
                    self.metrics.action_finished(entry.kind, entry.status)
            g = row["action"]["args"].get("guest")
            if entry.kind in GUEST_KINDS and isinstance(g, int):
                self.moves.setdefault(g, {})[key] = S.Move(
                    plan_id=entry.plan_id, idx=entry.idx, t=entry.t, kind=entry.kind, from_domain=entry.from_domain,
                    to_domain=entry.to_domain, status=entry.status, reason=entry.reason, details=entry.details)
        return out

    def recent(self, limit: int, kinds: set[str] | None = None) -> list[S.TimelineEntry]:
        with self.lock:
            items = list(self.entries.values())
        items.sort(key=lambda e: (e.t, e.plan_id, e.idx), reverse=True)
        if kinds:
            items = [e for e in items if e.kind in kinds]
        return items[:limit]

    def moves_of(self, guest: int) -> list[S.Move]:
        with self.lock:
            items = list(self.moves.get(guest, {}).values())
        return sorted(items, key=lambda m: (m.t, m.plan_id, m.idx))
