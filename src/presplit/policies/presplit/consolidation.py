"""presplit on the CloudSim model: predictive placement, balancing and recombination.

On CloudSim's fleet (two-PE hosts, one domain each) splitting has nothing to
split, so the ``presplit`` policy acts through what the model offers: where
guests start, which guests move and when hosts are emptied. Unlike the
reactive baselines it judges every host by the upper quantile of its
*forecast* demand with the candidate guests (see :mod:`outlook`), so it

- relieves a host before its forecast crosses the limit, moving as few
  guests as bring it back under the target;
- places a guest on the fullest host of the most power-efficient class where
  its forecast still fits (best fit), preferring running hosts over waking one;
- drains a host only when all of its guests fit elsewhere for the whole
  forecast window, the host has been up for a hold time, and its guests are
  not cooling down from a previous move;
- never moves more than a capped share of the fleet in one step.

Every move carries its reason and the numbers behind it (``self.decisions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from presplit.model.hardware import power_at
from presplit.policies.presplit.outlook import OutlookParams, next_upper, upper


@dataclass(frozen=True)
class ConsolidationParams:
    target: float = 0.95        # pack hosts so their upper forecast stays under this share of capacity
    relief: float = 1.0         # act on a host whose upper forecast crosses this share
    cooldown_steps: int = 12    # a moved guest stays put this long unless its host must be relieved
    hold_steps: int = 6         # a host that was woken or received guests is not drained this soon
    max_moves_share: float = 0.25  # at most this share of guests move in one step
    max_per_host: int = 8       # migrations into one host per step, and out of a relieved host (vMotion's limit)
    mode: str = "window"        # outlook: window quantile over the hold horizon ("window") or next step
    outlook: OutlookParams = field(default_factory=OutlookParams)


@dataclass
class Decision:
    time: float
    guest: int
    source: int
    target: int
    reason: str
    numbers: dict


class PredictiveConsolidation:
    """The ``presplit`` policy for the CloudSim engine."""

    migrates = True
    non_power_aware = False

    def __init__(self, params: ConsolidationParams | None = None) -> None:
        self.p = params or ConsolidationParams()
        # A record of what was decided and why (for ``explain``); it never feeds a decision:
        # cool-downs and holds are read off the engine, so ``optimise`` is a function of its state.
        self.decisions: list[Decision] = []

    # ------------------------------------------------------------ start-up
    def place_initial(self, engine) -> None:
        """Start-up placement: guests ask for their full MIPS and RAM (as in CloudSim).

        Biggest first, onto the most power-efficient host type that fits,
        best fit within it, so the first steps have fewer hosts to empty.
        """
        e = engine
        free = e.h_total.copy()
        ram = e.ram_free.copy()
        watts_per_mips = e.h_power[:, -1] / e.h_total
        order = np.argsort(-e.g_mips, kind="stable")
        for g in order:
            ok = (e.h_pe >= e.g_mips[g]) & (free >= e.g_mips[g]) & (ram >= e.g_ram[g])
            hosts = np.flatnonzero(ok)
            if len(hosts) == 0:
                raise RuntimeError(f"no host can start guest {g}: the fleet is too small for the workload")
            # Most efficient type first, then the fullest host (best fit), then the lowest index.
            key = np.lexsort((hosts, free[hosts], watts_per_mips[hosts]))
            h = int(hosts[key[0]])
            free[h] -= e.g_mips[g]
            ram[h] -= e.g_ram[g]
            e.create(int(g), h)

    # ---------------------------------------------------------------- step
    def optimise(self, engine) -> list[tuple[int, int]]:
        e, p = engine, self.p
        step = int(round(e.now / e.model.interval_s))
        n_hist = max(e.history_len, 1)
        g_series = e.history[:, :n_hist] * e.g_mips[:, None]          # MIPS, newest first
        g_upper = upper(g_series, p.outlook)
        lists = [list(lst) for lst in e.lists]
        host_of = e.host_of.copy()
        h_series = np.zeros((e.n_hosts, n_hist))
        placed = np.flatnonzero(host_of >= 0)
        np.add.at(h_series, host_of[placed], g_series[placed])
        cap = e.h_total
        count = np.fromiter(map(len, lists), dtype=np.int64, count=e.n_hosts)
        active = count > 0
        # Steps since each guest last moved and each host last received one (start-up
        # placement does not count: hosts may be drained at once).
        interval = e.model.interval_s
        last_move = np.floor((e.last_migration_at - 0.1) / interval)  # -inf when never
        busy_since = np.floor((e.host_received_at - 0.1) / interval)
        # Fleet-wide cap on moves per step; small fleets may still move one host's worth.
        budget = max(p.max_per_host, int(p.max_moves_share * e.n_guests))
        moves: list[tuple[int, int]] = []
        received = np.zeros(e.n_hosts, dtype=bool)
        sending = np.zeros(e.n_hosts, dtype=np.int64)
        receiving = np.zeros(e.n_hosts, dtype=np.int64)

        fn = next_upper if p.mode == "next" else upper

        def host_upper(h_idx: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
            s = h_series[h_idx] if extra is None else h_series[h_idx] + extra[None, :]
            return fn(s, p.outlook)

        def move(g: int, dst: int, reason: str, numbers: dict) -> None:
            src = int(host_of[g])
            h_series[src] -= g_series[g]
            h_series[dst] += g_series[g]
            lists[src].remove(g)
            lists[dst].append(g)
            count[src] -= 1
            count[dst] += 1
            host_of[g] = dst
            received[dst] = True
            busy_since[dst] = step
            sending[src] += 1
            receiving[dst] += 1
            moves.append((g, dst))
            last_move[g] = step
            self.decisions.append(Decision(e.now, g, src, dst, reason, numbers))

        def best_target(g: int, exclude: np.ndarray) -> tuple[int | None, dict]:
            """Where g's forecast fits under the target: best fit on the most efficient hosts."""
            exclude = exclude | (receiving >= p.max_per_host)
            cand = np.flatnonzero(~exclude & (e.h_pe >= g_upper[g]) & (count > 0))
            alternatives = {}
            if len(cand):
                u_after = host_upper(cand, g_series[g]) / cap[cand]
                fits = u_after <= p.target
                if fits.any():
                    c = cand[fits]
                    now = h_series[c, 0] / cap[c]
                    after = (h_series[c, 0] + g_series[g, 0]) / cap[c]
                    rise = power_at(e.h_power[c], after) - power_at(e.h_power[c], now)
                    # Best fit within the most efficient host class (watts per MIPS at full
                    # load), then the least power rise: filling the fullest host that still
                    # fits leaves the emptiest ones to be drained and switched off.
                    efficiency = np.round(e.h_power[c, -1] / cap[c], 9)
                    order = np.lexsort((rise, -u_after[fits], efficiency))
                    best = int(c[order[0]])
                    alternatives = {"forecast_after": float(u_after[fits][order[0]]),
                                    "candidates": int(len(c)), "rise_w": float(rise[order[0]])}
                    return best, alternatives
            # Wake the most efficient switched-off host that can run the guest.
            off = np.flatnonzero(~exclude & (e.h_pe >= g_upper[g]) & (count == 0))
            if len(off) == 0:
                return None, {}
            eff = e.h_power[off, -1] / cap[off]
            h = int(off[np.argmin(eff)])
            busy_since[h] = step
            return h, {"woken": True, "forecast_after": float(g_upper[g] / cap[h])}

        # 1. Relief: hosts whose upper forecast crosses the relief line.
        occupied = np.flatnonzero(active)
        u_host = host_upper(occupied) / cap[occupied]
        hot = occupied[u_host > p.relief]
        no_target = np.zeros(e.n_hosts, dtype=bool)
        no_target[hot] = True
        for h in hot[np.argsort(-u_host[u_host > p.relief])]:
            h = int(h)
            while len(moves) < budget and sending[h] < p.max_per_host:
                u_now = float(host_upper(np.array([h]))[0] / cap[h])
                if u_now <= p.target or len(lists[h]) <= 1:
                    break
                guests = np.array(lists[h])
                rest = h_series[h][None, :] - g_series[guests]
                u_without = fn(rest, p.outlook) / cap[h]
                # Prefer guests not cooling down; among them the one whose leaving helps most per MB moved.
                cooling = (step - last_move[guests]) < p.cooldown_steps
                gain = (u_now - u_without) / e.g_ram[guests]
                gain = np.where(cooling, gain - 1e6, gain)
                g = int(guests[np.argmax(gain)])
                dst, numbers = best_target(g, no_target)
                if dst is None:
                    break
                numbers.update(source_forecast=u_now, relief_line=p.relief, target=p.target)
                move(g, dst, f"host {h} forecast {u_now:.0%} of capacity crosses the relief line", numbers)

        # 2. Recombination: drain the least loaded hosts whose guests all fit elsewhere.
        tried = np.zeros(e.n_hosts, dtype=bool)
        while len(moves) < budget:
            occupied = np.flatnonzero((count > 0) & ~tried & ~received & ~no_target)
            if len(occupied) == 0:
                break
            held = (step - busy_since[occupied]) < p.hold_steps
            occupied = occupied[~held]
            if len(occupied) == 0:
                break
            u_occ = host_upper(occupied) / cap[occupied]
            h = int(occupied[np.argmin(u_occ)])
            tried[h] = True
            guests = list(lists[h])
            if any((step - last_move[g]) < p.cooldown_steps for g in guests):
                continue
            if len(moves) + len(guests) > budget:
                break
            exclude = no_target.copy()
            exclude[h] = True
            saved = (h_series.copy(), [list(x) for x in lists], host_of.copy(), received.copy(), sending.copy(), receiving.copy(), count.copy(),
                     len(moves), len(self.decisions), busy_since.copy(), last_move.copy())
            ok = True
            for g in sorted(guests, key=lambda g: -g_upper[g]):
                dst, numbers = best_target(g, exclude | ~(count > 0))
                if dst is None:
                    ok = False
                    break
                numbers.update(drained_host_forecast=float(u_occ[np.argmin(u_occ)]), target=p.target)
                move(g, dst, f"host {h} can be emptied and switched off: all guests fit elsewhere", numbers)
            if not ok:
                (h_series, lists, host_of, received, sending, receiving, count, n_moves, n_dec, busy_since, last_move) = saved
                del moves[n_moves:]
                del self.decisions[n_dec:]
            else:
                no_target[h] = True
        return moves
