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

Where memory is a hard limit (the ``realistic`` model) it also books memory:
no destination is asked for more RAM than it has left, start-up packs guests
by RAM onto the hosts with the least idle power per MB, and, where pre-copy
migrations share a NIC, no more copies run through one host than keep each
faster than its guest dirties memory (a host is drained only when all its
guests can leave in one step).

Every move carries its reason and the numbers behind it (``self.decisions``).

Options measured for issue 12 (``docs/prediction-results.md``): ``calibrate``
(destinations judged on host bounds calibrated online over the decision
horizon, :mod:`calibration`; on by default, ``pack`` at level 0.7, since it
measured best), ``relief_cost`` (relieve a hot host by the guest whose
copy degrades the least demand per unit of bound removed), ``place`` and
``fit_test`` (placement that uses time, :mod:`complementarity`) and ``daily``
(the fit test also holds on the same window of earlier days where the trace
is longer than a day, :mod:`daily`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from presplit.model.hardware import power_at
from presplit.forecast.outlook import OutlookParams, next_upper, upper


# What presplit decides on when no --forecaster is given: the forecaster that measured best on this
# policy (docs/prediction-results.md, docs/forecasting.md): Autopilot's 1-hour recommender, a per-guest
# peak over a decaying window, with the host bounds calibrated online (``calibrate``).
DEFAULT_FORECASTER = "baseline-autopilot-1h"
UNCALIBRATED = ("reactive", "oracle")  # forecasters whose bound is taken as it is (see _calibration)


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
    # Online calibration of host bounds over the decision horizon (calibration.py): "off" (today's
    # behaviour), "all" (every decision uses the calibrated bound) or "pack" (only where guests are put:
    # placement and drains; the relief line stays on the forecaster's own bound).
    calibrate: str = "pack"
    calibrate_window: int = 72   # ticks of host scores the conformal quantile is taken over (6 h)
    calibrate_gamma: float = 0.0  # adaptive conformal inference step on the level (0: plain sliding window)
    # Share of host-horizons the calibrated bound covers (0: outlook.quantile). 0.7 is the level that met
    # the ESV and energy bars together in every check of docs/prediction-results.md (three days, three
    # score windows, three resampled days); 0.8 buys less ESV at up to 1.11x the oracle run's energy.
    calibrate_level: float = 0.7
    # What a host's miss is measured in: "ratio" (relative to its bound: bound x (1 + margin)) or "spread"
    # (in units of the host's observed demand std over the outlook window: bound + margin x std).
    calibrate_score: str = "ratio"
    # What relieving a host by moving a guest costs, per unit of bound it removes: "ram" (the copy's
    # length, today's rule) or "demand" (the copy's length times the demand it degrades meanwhile, what
    # the migration adds to PDM: guests that are quiet now leave cheaply).
    relief_cost: str = "ram"
    # Which host a moved guest goes to among those its forecast fits (complementarity.py): "fit" (the host
    # fullest after the move, today's rule), "host" (the host fullest before it: peaks that do not coincide
    # are not counted against a host) or "complement" (the host whose upper bound the guest raises least,
    # relative to the guest's own bound: peaks that do not coincide first; then fullest).
    place: str = "fit"
    # The fit test of a destination: "joint" (the bound of the host's and the guest's summed rows, today's:
    # peaks that do not coincide do not add up) or "additive" (the host's bound plus the guest's, as a
    # placer that ignores time would do; an ablation that measures what the joint test buys).
    fit_test: str = "joint"
    # Daily patterns (daily.py): "auto" makes a destination also fit host + guest's *observed* summed demand
    # over the decision window on each of the last ``daily_days`` days, once the history is a day plus the
    # horizon long (so guests whose daily peaks coincide are not packed together at a quiet hour, however
    # complementary the last 2.5 h make them look); "off" decides on the forecast alone. "auto" is the
    # default because on a single-day trace it never switches on (every PlanetLab result is identical) and
    # on the multi-day traces measured it cut ESV by a third for +0.3-0.7 % energy (PlanetLab days
    # repeated) or +6.3 % (the Bitbrains week on the cloudsim model, as a tighter target would):
    # docs/prediction-results.md, section 4b.
    daily: str = "auto"
    daily_days: int = 1  # earlier days compared (the most recent first); a fit must hold on every one

    def __post_init__(self) -> None:
        """Refuse values no decision can use."""
        choices = {"calibrate": ("off", "all", "pack"), "calibrate_score": ("ratio", "spread"),
                   "relief_cost": ("ram", "demand"), "place": ("fit", "host", "complement", "fit-complement"),
                   "fit_test": ("joint", "additive"), "daily": ("off", "auto")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")
        if self.calibrate == "all" and self.calibrate_score == "spread":
            raise ValueError("calibrate all takes calibrate_score ratio (the relief line is judged on the "
                             "forecaster's own bound there)")
        if not 0.0 <= self.calibrate_level < 1.0:
            raise ValueError(f"calibrate_level {self.calibrate_level!r}: expected 0 (the outlook's quantile) "
                             "or a share in (0, 1)")
        if self.daily_days < 1:
            raise ValueError(f"daily_days {self.daily_days!r}: expected at least 1")
        if self.calibrate_gamma < 0 or self.calibrate_window < 1:
            raise ValueError("calibrate_gamma must be >= 0 and calibrate_window >= 1")


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
    default_forecaster = DEFAULT_FORECASTER

    def __init__(self, params: ConsolidationParams | None = None, forecaster: str | None = None) -> None:
        self.p = params or ConsolidationParams()
        # A record of what was decided and why (for ``explain``); it never feeds a decision:
        # cool-downs and holds are read off the engine, so ``optimise`` is a function of its state.
        self.decisions: list[Decision] = []
        # The decision forecaster (presplit.forecast.decision): None is DEFAULT_FORECASTER; "outlook" the
        # outlook of ``params``.
        self.forecaster_name = forecaster
        self._forecaster = None
        self._calibrator = None  # HostCalibrator when params.calibrate is not "off"
        self._restart_key = None  # (engine, instant) of the forecast restart_target keeps in self._restart
        self._restart = None

    def horizon_steps(self, engine) -> int:
        """How far a decision looks: as long as it stands -- a moved guest stays put for the cool-down and
        a host that received one is not drained for the hold time -- or longer when booting a host and
        copying a guest over take longer (at least one step)."""
        m = engine.model
        copy_s = float(np.median(engine.g_ram)) / float(np.median(engine.h_mbps)) if engine.n_guests else 0.0
        lead = int(np.ceil((m.boot_delay_s + copy_s) / m.interval_s))
        return max(1, self.p.hold_steps, self.p.cooldown_steps, lead)

    def _forecast(self, e, observed: np.ndarray, step: int):
        """(rows, bound, per-guest upper, what to say in reasons) of this tick's decision forecast."""
        p = self.p
        name = self.forecaster_name or self.default_forecaster
        if name == "outlook":  # the outlook as configured (``mode`` next: next-step guest bounds)
            g_upper = upper(observed, p.outlook)
            if p.mode == "next":
                return observed, lambda rows: next_upper(rows, p.outlook), g_upper, "outlook (next step)"
            return observed, lambda rows: upper(rows, p.outlook), g_upper, (
                f"outlook q{p.outlook.quantile:g} over {p.outlook.window} samples")
        if self._forecaster is None:
            from presplit.forecast.decision import make_forecaster

            self._forecaster = make_forecaster(name, horizon=self.horizon_steps(e),
                                               level=p.outlook.quantile, interval_s=int(e.model.interval_s))
        fc = self._forecaster
        future = None
        if getattr(fc, "simulation_only", False):  # the oracle: the trace from now to the horizon, no more
            future = e.util[:, step:step + 1 + fc.horizon] * e.g_mips[:, None]
        tick = fc.at(observed, step, future=future)
        rows = tick.rows()
        return rows, tick.upper, tick.upper(rows), f"{tick.name} q{tick.level:g} over {tick.horizon} steps"

    @staticmethod
    def host_cost(engine) -> np.ndarray:
        """Per host, what a unit of the fleet's binding resource costs there: the host classes to fill first.

        Where memory is a limit and the guests' memory fills a larger share of the fleet than
        their CPU demand does, hosts are kept on for memory: the cheap host is the one with the
        least idle watts per MB it may hold. Otherwise CPU binds: the least watts per MIPS at full
        load (the CloudSim model's rule, where memory is not a limit).
        """
        e = engine
        if e.model.enforce_ram:
            ram_share = e.g_ram[e.alive].sum() / e.ram_cap.sum()
            # At start-up guests ask for their full size and nothing is known of their demand:
            # memory, which a guest always holds, decides there.
            cpu_share = e.requested[e.alive].sum() / e.h_total.sum() if e.now > 0 else 0.0
            if ram_share > cpu_share:
                return np.round(e.h_power[:, 0] / e.ram_cap, 12)
        return np.round(e.h_power[:, -1] / e.h_total, 9)

    # ------------------------------------------------------------ start-up
    def place_initial(self, engine) -> None:
        """Start-up placement: guests ask for their full MIPS and RAM (as in CloudSim).

        Biggest first, onto the most power-efficient host type that fits,
        best fit within it, so the first steps have fewer hosts to empty.
        Where memory is a limit: biggest by RAM first, best fit by RAM, onto
        the host class with the least idle watts per MB (:meth:`host_cost`).
        """
        e = engine
        free = e.h_total.copy()
        ram = e.ram_free.copy()
        watts_per_mips = self.host_cost(e)
        # Where memory is a limit it binds first: pack the largest guests by RAM, best fit by RAM.
        by_ram = e.model.enforce_ram
        # Where hosts run guests by demand (the realistic model), start-up books memory, which a guest
        # always holds, and not its peak CPU, which it seldom uses: CPU is shared by demand from the
        # first tick, and the relief step moves guests off a host whose forecast crosses its capacity.
        # CloudSim's model keeps its rule (a guest is created with its full MIPS free).
        cpu_shared = by_ram and e.model.hosts_on_with_guests
        order = np.lexsort((-e.g_mips, -e.g_ram)) if by_ram else np.argsort(-e.g_mips, kind="stable")
        for g in order:
            ok = (e.h_pe >= e.g_mips[g]) & (ram >= e.g_ram[g])
            if not cpu_shared:
                ok &= free >= e.g_mips[g]
            hosts = np.flatnonzero(ok)
            if len(hosts) == 0:
                e.wait(int(g))  # waits for room (the engine raises where memory is not enforced)
                continue
            # Most efficient type first, then the fullest host (best fit), then the lowest index.
            fit = ram[hosts] if by_ram else free[hosts]
            key = np.lexsort((hosts, fit, watts_per_mips[hosts]))
            h = int(hosts[key[0]])
            free[h] -= e.g_mips[g]
            ram[h] -= e.g_ram[g]
            e.create(int(g), h)

    # ------------------------------------------------------------- failover
    def restart_target(self, engine, guest: int) -> int | None:
        """Where a guest stopped by a host crash restarts (the engine's failure model asks; failures only):
        among the hosts that are up (and have its RAM where memory is enforced), those where its upper forecast fits under ``target`` with
        their guests' (and the guests booting there since the crash); of those, the least power rise (a
        switched-off host's rise counts its idle power, so running hosts come first). None: the engine's
        first fit decides."""
        e, p = engine, self.p
        fail = e.fail
        key = (id(e), e.now)
        if self._restart_key != key:  # one forecast per instant, however many restart
            step = int(round(e.now / e.model.interval_s))
            observed = e.history[:, :max(e.history_len, 1)] * e.g_mips[:, None]
            g_series, bound, g_upper, _ = self._forecast(e, observed, step)
            placed = np.flatnonzero(e.host_of >= 0)
            h_series = np.zeros((e.n_hosts, g_series.shape[1]))
            np.add.at(h_series, e.host_of[placed], g_series[placed])
            booting = np.flatnonzero(fail.boot_host >= 0)
            np.add.at(h_series, fail.boot_host[booting], g_series[booting])
            self._restart_key = key
            self._restart = (g_series, bound, g_upper, h_series)
        g_series, bound, g_upper, h_series = self._restart
        ok = fail.up_mask() & (e.h_pe >= e.g_mips[guest])
        if e.model.enforce_ram:
            ok &= e.ram_free >= e.g_ram[guest] - 1e-6
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            return None
        cap = e.h_total[cand]
        after = bound(h_series[cand] + g_series[guest][None, :]) / cap
        fits = after <= p.target
        if not fits.any():
            return None
        c = cand[fits]
        now = h_series[c, 0] / e.h_total[c]
        on = (e.count[c] > 0) | (e.h_util_mips[c] > 0)
        before_w = np.where(on, power_at(e.h_power[c], np.minimum(now, 1.0)), e.model.off_power_w)
        rise = power_at(e.h_power[c], np.minimum(now + g_series[guest, 0] / e.h_total[c], 1.0)) - before_w
        h = int(c[np.lexsort((c, rise))[0]])
        h_series[h] += g_series[guest]  # the next restart of this instant sees it
        return h

    # ---------------------------------------------------------------- step
    def optimise(self, engine) -> list[tuple[int, int]]:
        e, p = engine, self.p
        step = int(round(e.now / e.model.interval_s))
        n_hist = max(e.history_len, 1)
        observed = e.history[:, :n_hist] * e.g_mips[:, None]          # MIPS, newest first
        g_series, bound, g_upper, said = self._forecast(e, observed, step)
        g_now = observed[:, 0]
        raw_bound = bound
        pack_bound = bound
        h_obs = g_obs = None  # hosts' and guests' observed window (calibrate_score "spread")
        cal = self._calibration(e)
        if cal is not None:
            cal.observe(g_now, e.n_hosts)
            scale = cal.scale()
            said = f"{said}, calibrated x{scale:.3f} over {cal.horizon} steps"

            if p.calibrate_score == "spread":
                win = max(1, min(p.outlook.window, observed.shape[1]))
                g_obs = observed[:, :win]
                h_obs = np.zeros((e.n_hosts, win))
                np.add.at(h_obs, e.host_of[e.host_of >= 0], g_obs[e.host_of >= 0])
            else:
                def pack_bound(rows, _b=raw_bound, _s=scale):
                    return _b(rows) * _s

                if p.calibrate == "all":
                    bound = pack_bound
        lists = [list(lst) for lst in e.lists]
        host_of = e.host_of.copy()
        h_series = np.zeros((e.n_hosts, g_series.shape[1]))
        h_now = np.zeros(e.n_hosts)
        placed = np.flatnonzero(host_of >= 0)
        np.add.at(h_series, host_of[placed], g_series[placed])
        np.add.at(h_now, host_of[placed], g_now[placed])
        daily = self._daily(e, step, host_of)
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
        # Where pre-copy shares a NIC, each migration must keep more bandwidth than its guest dirties
        # (twice as much, so it converges in a few rounds); more at once would stretch every pause.
        per_host = p.max_per_host
        if e.model.precopy:
            room = e.h_nic_mbps.min() * e.model.migration_bw_share / (2.0 * e.model.dirty_rate_mb_s)
            per_host = max(1, min(per_host, int(room)))
        moves: list[tuple[int, int]] = []
        # Memory a destination has left (a source frees its guest's RAM only when the copy ends).
        ram_left = e.ram_free.copy() if e.model.enforce_ram else np.full(e.n_hosts, np.inf)
        received = np.zeros(e.n_hosts, dtype=bool)
        sending = np.zeros(e.n_hosts, dtype=np.int64)
        receiving = np.zeros(e.n_hosts, dtype=np.int64)

        cost = self.host_cost(e)

        def host_upper(h_idx: np.ndarray) -> np.ndarray:
            return bound(h_series[h_idx])

        def pack_upper(h_idx: np.ndarray, g: int | None = None) -> np.ndarray:
            """The bound a destination is packed by (the calibrated one where calibration is on)."""
            s = h_series[h_idx] if g is None else h_series[h_idx] + g_series[g][None, :]
            if cal is not None and p.calibrate_score == "spread":
                o = h_obs[h_idx] if g is None else h_obs[h_idx] + g_obs[g][None, :]
                return cal.apply(raw_bound(s), o.std(axis=-1))
            return pack_bound(s)

        undo: list[tuple] = []  # what each move changed, so a failed drain is taken back exactly

        def shift(g: int, src: int, dst: int) -> None:
            """Carry g's demand from src's running sums to dst's (a move, or a move taken back)."""
            h_series[src] -= g_series[g]
            h_series[dst] += g_series[g]
            if h_obs is not None:
                h_obs[src] -= g_obs[g]
                h_obs[dst] += g_obs[g]
            h_now[src] -= g_now[g]
            h_now[dst] += g_now[g]
            if daily is not None:
                daily.move(g, src, dst)

        def move(g: int, dst: int, reason: str, numbers: dict) -> None:
            src = int(host_of[g])
            undo.append((g, src, dst, lists[src].index(g), busy_since[dst], last_move[g], received[dst]))
            shift(g, src, dst)
            lists[src].remove(g)
            lists[dst].append(g)
            count[src] -= 1
            count[dst] += 1
            host_of[g] = dst
            ram_left[dst] -= e.g_ram[g]
            received[dst] = True
            busy_since[dst] = step
            sending[src] += 1
            receiving[dst] += 1
            moves.append((g, dst))
            last_move[g] = step
            numbers["forecast"] = said
            self.decisions.append(Decision(e.now, g, src, dst, f"{reason} ({said})", numbers))

        def take_back(mark: int) -> None:
            """Undo the moves made since ``undo`` had ``mark`` entries, newest first."""
            while len(undo) > mark:
                g, src, dst, index, busy, last, got = undo.pop()
                shift(g, dst, src)
                lists[dst].pop()  # it was appended last and later moves were taken back first
                lists[src].insert(index, g)
                count[dst] -= 1
                count[src] += 1
                host_of[g] = src
                ram_left[dst] += e.g_ram[g]
                received[dst] = got
                busy_since[dst] = busy
                sending[src] -= 1
                receiving[dst] -= 1
                last_move[g] = last
                moves.pop()
                self.decisions.pop()

        def best_target(g: int, exclude: np.ndarray) -> tuple[int | None, dict]:
            """Where g's forecast fits under the target: best fit on the most efficient hosts."""
            exclude = exclude | (receiving >= per_host) | (ram_left < e.g_ram[g])
            cand = np.flatnonzero(~exclude & (e.h_pe >= g_upper[g]) & (count > 0))
            alternatives = {}
            if len(cand):
                if p.fit_test == "additive":
                    u_after = (pack_upper(cand) + pack_bound(g_series[g][None, :])[0]) / cap[cand]
                else:
                    u_after = pack_upper(cand, g) / cap[cand]
                fits = u_after <= p.target
                d_after = None
                if daily is not None and fits.any():  # and held host + guest on the earlier days' windows
                    d_after = np.full(len(cand), np.inf)
                    d_after[fits] = daily.peak_after(cand[fits], g) / cap[cand[fits]]
                    fits &= d_after <= p.target
                if fits.any():
                    c = cand[fits]
                    now = h_now[c] / cap[c]
                    after = (h_now[c] + g_now[g]) / cap[c]
                    rise = power_at(e.h_power[c], after) - power_at(e.h_power[c], now)
                    # Best fit within the most efficient host class (watts per MIPS at full
                    # load), then the least power rise: filling the fullest host that still
                    # fits leaves the emptiest ones to be drained and switched off.
                    if p.place == "fit":
                        order = np.lexsort((rise, -u_after[fits], cost[c]))
                    else:
                        from presplit.policies.presplit.complementarity import placement_order

                        order = placement_order(p.place, u_after[fits], pack_upper(c) / cap[c],
                                                float(pack_bound(g_series[g][None, :])[0]) / cap[c], rise, cost[c])
                    best = int(c[order[0]])
                    alternatives = {"forecast_after": float(u_after[fits][order[0]]),
                                    "candidates": int(len(c)), "rise_w": float(rise[order[0]]), "place": p.place}
                    if d_after is not None:  # what the same window on the earlier days says of the chosen host
                        alternatives.update(daily_after=float(d_after[fits][order[0]]), daily_days=len(daily.cols))
                    return best, alternatives
            # Wake the most efficient switched-off host that can run the guest.
            off = np.flatnonzero(~exclude & (e.h_pe >= g_upper[g]) & (count == 0))
            if len(off) == 0:
                return None, {}
            eff = cost[off]
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
            while len(moves) < budget and sending[h] < per_host:
                u_now = float(host_upper(np.array([h]))[0] / cap[h])
                if u_now <= p.target or len(lists[h]) <= 1:
                    break
                guests = np.array(lists[h])
                rest = h_series[h][None, :] - g_series[guests]
                u_without = bound(rest) / cap[h]
                # Prefer guests not cooling down; among them the one whose leaving helps most per MB moved.
                cooling = (step - last_move[guests]) < p.cooldown_steps
                if p.relief_cost == "demand":
                    gain = (u_now - u_without) / (e.g_ram[guests] * np.maximum(g_now[guests], 1.0))
                else:
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
        queue: list[tuple[int, float]] = []  # candidates, least loaded first; a failed try changes nothing
        while len(moves) < budget:
            if not queue:
                occupied = np.flatnonzero((count > 0) & ~tried & ~received & ~no_target)
                if len(occupied) == 0:
                    break
                held = (step - busy_since[occupied]) < p.hold_steps
                occupied = occupied[~held]
                if len(occupied) == 0:
                    break
                u_all = host_upper(occupied) / cap[occupied]
                rank = np.argsort(u_all, kind="stable")  # ties to the lowest index, as argmin
                queue = [(int(occupied[i]), float(u_all[i])) for i in rank[::-1]]
            h, u_h = queue.pop()
            tried[h] = True
            guests = list(lists[h])
            if any((step - last_move[g]) < p.cooldown_steps for g in guests):
                continue
            if len(moves) + len(guests) > budget:
                break
            # Its NIC must carry every copy at once without stalling them (a host emptied over several
            # steps costs as many moves for less: each step's forecast may call some back).
            if e.model.precopy and len(guests) > per_host - int(sending[h]):
                continue
            exclude = no_target.copy()
            exclude[h] = True
            if e.model.enforce_ram and not _ram_fits(e.g_ram[guests], ram_left[~exclude & (count > 0)]):
                continue  # cheap before the full try: the guests' RAM alone does not fit where they could go
            mark = len(undo)
            ok = True
            for g in sorted(guests, key=lambda g: -g_upper[g]):
                dst, numbers = best_target(g, exclude | ~(count > 0))
                if dst is None:
                    ok = False
                    break
                numbers.update(drained_host_forecast=u_h, target=p.target)
                move(g, dst, f"host {h} can be emptied and switched off: all guests fit elsewhere", numbers)
            if not ok:
                take_back(mark)
            else:
                no_target[h] = True
                queue = []  # forecasts and holds changed: rank the rest again
        if cal is not None:  # this tick's assignment and bounds, to be scored once the horizon has passed
            on = count > 0
            raw = np.zeros(e.n_hosts)
            raw[on] = raw_bound(h_series[on])
            cal.record(host_of, raw, None if h_obs is None else np.where(on, h_obs.std(axis=-1), 0.0))
        return moves

    def _daily(self, engine, step: int, host_of: np.ndarray):
        """This tick's earlier-day windows of the tentative assignment (params.daily), or None: off, or less
        than a day plus the horizon observed (a single-day trace never gets there)."""
        if self.p.daily == "off":
            return None
        from presplit.policies.presplit.daily import DailyWindows, past_columns

        e = engine
        cols = past_columns(step, self.horizon_steps(e), e.model.interval_s, self.p.daily_days)
        if cols is None:
            return None
        return DailyWindows(e.util, e.g_mips, cols, host_of, e.n_hosts)

    def _calibration(self, engine):
        """The host-bound calibrator (params.calibrate), made at the first tick; None when off.

        Off, too, for the what-if study's two bounds: ``reactive`` is the last value with no margin (a
        calibrated margin would make it another forecaster), and ``oracle`` is the truth (its scores are
        never above 0, so a margin would stay 0 anyway)."""
        p = self.p
        if p.calibrate == "off" or self.forecaster_name in UNCALIBRATED:
            return None
        if self._calibrator is None:
            from presplit.policies.presplit.calibration import HostCalibrator

            level = p.calibrate_level if p.calibrate_level > 0 else p.outlook.quantile
            self._calibrator = HostCalibrator(self.horizon_steps(engine), level=level,
                                              window=p.calibrate_window, gamma=p.calibrate_gamma)
        return self._calibrator


def _ram_fits(need: np.ndarray, room: np.ndarray) -> bool:
    """Whether guests of RAM ``need`` fit in hosts with ``room`` left: best fit, largest first (as a drain tries)."""
    if len(room) == 0 or need.sum() > room.sum():
        return False
    room = room.copy()
    for r in np.sort(need)[::-1]:
        fit = np.flatnonzero(room >= r)
        if len(fit) == 0:
            return False
        i = fit[np.argmin(room[fit])]
        room[i] -= r
    return True
