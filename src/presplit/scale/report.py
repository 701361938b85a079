"""One self-contained HTML report from a sweep's results file.

This module owns the report's content and layout: which tables and figures
there are, how numbers are formatted, and the matching against the CloudSim
reference runs (package data ``data/cloudsim-reference.csv``). The page has
inline CSS and base64 PNG figures (matplotlib, Agg backend) and refers to no
external URL, so it can be mailed or archived as one file.

Every number in a table cell carries its exact value in ``data-value`` (the
shortest text that reads back to the same float) beside the rounded text the
reader sees, and names its column in ``data-col``; tests parse both back and
compare them with the results file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path

import numpy as np

from presplit.errors import InputError

# column -> (label, format of the shown text, scale applied before formatting, unit suffix)
FORMATS: dict[str, tuple[str, str, float, str]] = {
    "energy_kwh": ("energy kWh", "{:,.3f}", 1.0, ""),
    "migrations": ("migrations", "{:,d}", 1, ""),
    "slatah": ("SLATAH", "{:.4g}", 100.0, " %"),
    "pdm": ("PDM", "{:.4g}", 100.0, " %"),
    "slav": ("SLAV", "{:.4g}", 100.0, " %"),
    "esv": ("ESV", "{:.4g}", 1.0, ""),
    "overall_sla_violation": ("overall SLA viol.", "{:.4g}", 100.0, " %"),
    "fluid_bound_kwh": ("fluid bound kWh", "{:,.3f}", 1.0, ""),
    "energy_over_bound": ("E / bound", "{:.3f}", 1.0, ""),
    "wall_s": ("wall s", "{:.2f}", 1.0, ""),
    "ref_energy_kwh": ("CloudSim energy kWh", "{:,.3f}", 1.0, ""),
    "ref_migrations": ("CloudSim migrations", "{:,d}", 1, ""),
    "ref_slav": ("CloudSim SLAV", "{:.4g}", 100.0, " %"),
    "energy_ratio": ("energy / CloudSim", "{:.4f}", 1.0, ""),
    "ref_energy_over_bound": ("CloudSim E / bound", "{:.3f}", 1.0, ""),
    "mig_mean": ("mean", "{:.3f}", 1.0, ""),
    "mig_p50": ("median", "{:.1f}", 1.0, ""),
    "mig_p95": ("p95", "{:.1f}", 1.0, ""),
    "mig_max": ("max", "{:,d}", 1, ""),
    "mig_never": ("never moved", "{:.1f}", 100.0, " %"),
    "active_mean": ("mean active hosts", "{:.1f}", 1.0, ""),
    "active_max": ("max active hosts", "{:,d}", 1, ""),
}
RUN_COLUMNS = ("energy_kwh", "migrations", "slav", "overall_sla_violation", "esv", "fluid_bound_kwh",
               "energy_over_bound", "active_mean", "active_max", "wall_s")


class ReportError(InputError):
    """The results file is missing or is not sweep results."""


# --------------------------------------------------------------------------- data


def load_results(path: Path) -> list[dict]:
    """Rows of a sweep results file, in file order."""
    from presplit.extras import require

    require("report", "pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from presplit.scale.sweep import _schema

    path = Path(path)
    if not path.is_file():
        hint = " (a sweep that was stopped keeps its runs in RESULTS.parts/ until it is rerun)" \
            if path.with_name(path.name + ".parts").is_dir() else ""
        raise ReportError(f"{path}: no such results file; expected the .parquet `presplit sweep --out` "
                          f"wrote{hint}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReportError(f"{path}: not a readable Parquet file ({exc}); expected `presplit sweep` results") from None
    missing = [n for n in _schema().names if n not in table.column_names]
    if missing:
        raise ReportError(f"{path}: not sweep results (no column {missing[0]!r}); "
                          "expected the file `presplit sweep --out` wrote")
    from presplit.scale.sweep import sort_key

    rows = sorted(table.to_pylist(), key=lambda r: sort_key(r["trace"], r["policy"], r["params"]))
    if not rows:
        raise ReportError(f"{path}: no runs in the results file; expected at least one")
    for r in rows:
        active = np.asarray(r["active_hosts"] or [0])
        r["active_mean"] = float(active.mean())
        r["active_max"] = int(active.max())
    return rows


def load_reference() -> list[dict]:
    """The CloudSim 3.0.3 reference runs shipped with the package."""
    text = (files("presplit") / "data" / "cloudsim-reference.csv").read_text(encoding="utf-8")
    out = []
    for rec in csv.DictReader(io.StringIO(text)):
        out.append({"day": rec["day"], "policy": rec["policy"], "vms": int(rec["vms"]), "hosts": int(rec["hosts"]),
                    "energy_kwh": float(rec["energy_kwh"]), "migrations": int(rec["migrations"]),
                    "slav": float(rec["slav"])})
    return out


def compare_with_reference(rows: Sequence[dict], reference: Sequence[dict]) -> list[dict]:
    """Runs that CloudSim also ran: same day label, policy spelling, guest and host counts.

    Guest and host counts are part of the match so a synthetic day that
    happens to carry a PlanetLab date as its name is never compared with
    the real day's numbers.
    """
    ref = {(r["day"], r["policy"], r["vms"], r["hosts"]): r for r in reference}
    out = []
    for r in rows:
        m = ref.get((r["trace"], r["run"], r["n_guests"], r["n_hosts"]))
        if m is None:
            continue
        bound = r["fluid_bound_kwh"]
        out.append({
            "trace": r["trace"], "run": r["run"],
            "energy_kwh": r["energy_kwh"], "ref_energy_kwh": m["energy_kwh"],
            "energy_ratio": r["energy_kwh"] / m["energy_kwh"] if m["energy_kwh"] else float("nan"),
            "migrations": r["migrations"], "ref_migrations": m["migrations"],
            "slav": r["slav"], "ref_slav": m["slav"],
            "fluid_bound_kwh": bound, "energy_over_bound": r["energy_over_bound"],
            "ref_energy_over_bound": m["energy_kwh"] / bound if bound else float("nan"),
        })
    return out


def migration_stats(counts: Sequence[int]) -> dict:
    c = np.asarray(counts, dtype=np.int64)
    if len(c) == 0:
        c = np.zeros(1, dtype=np.int64)
    return {"mig_mean": float(c.mean()), "mig_p50": float(np.percentile(c, 50)),
            "mig_p95": float(np.percentile(c, 95)), "mig_max": int(c.max()),
            "mig_never": float((c == 0).mean())}


# --------------------------------------------------------------------------- formatting


def exact(value) -> str:
    """Text that reads back to exactly ``value`` (repr of the float, or the int)."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def shown(col: str, value) -> str:
    _, fmt, scale, unit = FORMATS[col]
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    v = value * scale if scale != 1 else value
    return fmt.format(int(v) if "d}" in fmt else v) + unit


def num_cell(col: str, value) -> str:
    return (f'<td class="num" data-col="{col}" data-value="{html.escape(exact(value))}">'
            f"{html.escape(shown(col, value))}</td>")


def table_html(rows: Sequence[dict], keys: Sequence[str], cols: Sequence[str], *, table_id: str,
               caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    head += "".join(f'<th class="num">{html.escape(FORMATS[c][0])}</th>' for c in cols)
    body = []
    for r in rows:
        attrs = " ".join(f'data-{k}="{html.escape(str(r[k]))}"' for k in keys)
        cells = "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in keys)
        cells += "".join(num_cell(c, r[c]) for c in cols)
        body.append(f"<tr {attrs}>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table id="{table_id}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


# --------------------------------------------------------------------------- figures


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _runs_and_traces(rows: Sequence[dict]) -> tuple[list[str], list[str]]:
    runs = list(dict.fromkeys(r["run"] for r in rows))
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    return runs, traces


def fig_metrics(rows: Sequence[dict]) -> str:
    """Energy, SLAV and migrations per run, one bar per trace."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt

    runs, traces = _runs_and_traces(rows)
    by = {(r["trace"], r["run"]): r for r in rows}
    panels = [("energy_kwh", "energy (kWh)", 1.0), ("slav", "SLAV (%)", 100.0), ("migrations", "migrations", 1.0)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(7.0, 0.55 * len(runs) * max(1, len(traces)) / 2 + 4), 9),
                             sharex=True)
    x = np.arange(len(runs))
    width = 0.8 / max(len(traces), 1)
    for ax, (col, label, scale) in zip(axes, panels):
        for k, trace in enumerate(traces):
            vals = [by[(trace, run)][col] * scale if (trace, run) in by else np.nan for run in runs]
            ax.bar(x + (k - (len(traces) - 1) / 2) * width, vals, width, label=trace)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title="trace", fontsize=8, ncols=min(len(traces), 4))
    axes[-1].set_xticks(x, runs, rotation=35, ha="right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fig_active_hosts(rows: Sequence[dict]) -> str:
    """Active hosts after every tick, one panel per trace, one line per run."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt

    runs, traces = _runs_and_traces(rows)
    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 2.8 * len(traces) + 0.6), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(runs) > 10 else "tab10")
    colour = {run: cmap(i % cmap.N) for i, run in enumerate(runs)}
    for ax, trace in zip(axes[:, 0], traces):
        for r in rows:
            if r["trace"] != trace:
                continue
            active = np.asarray(r["active_hosts"])
            hours = (np.arange(len(active)) + 1) * r["interval_s"] / 3600.0
            ax.plot(hours, active, lw=1.0, color=colour[r["run"]], label=r["run"])
        ax.set_title(trace, fontsize=10)
        ax.set_ylabel("active hosts")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("hours")
    axes[0, 0].legend(fontsize=7, ncols=min(len(runs), 4), loc="upper right")
    fig.tight_layout()
    return _png(fig)


def fig_migrations_per_guest(rows: Sequence[dict]) -> str:
    """Distribution of migrations per guest per run (all traces pooled)."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt

    runs, _ = _runs_and_traces(rows)
    pooled: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        pooled[r["run"]].extend(r["migrations_per_guest"])
    top = max((max(v) for v in pooled.values() if v), default=0)
    bins = np.arange(0, top + 2) - 0.5 if top < 60 else np.linspace(-0.5, top + 0.5, 61)
    fig, ax = plt.subplots(figsize=(10, 4))
    cmap = plt.get_cmap("tab20" if len(runs) > 10 else "tab10")
    for i, run in enumerate(runs):
        ax.hist(pooled[run], bins=bins, histtype="step", lw=1.3, label=run, color=cmap(i % cmap.N))
    ax.set_xlabel("migrations of one guest over the trace")
    ax.set_ylabel("guests")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=min(len(runs), 4))
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------- trade-off and parameters

TRADEOFF_X = ("slav", "SLAV = SLATAH x PDM (%)")
"""The trade-off's SLA axis: SLAV, the SLA metric of Beloglazov and Buyya (2012) that CloudSim reports
and that ESV = energy x SLAV combines with energy."""
KEY_METRICS: tuple[tuple[str, str, float], ...] = (
    ("energy_kwh", "energy (kWh)", 1.0),
    ("migrations", "migrations", 1.0),
    ("slatah", "SLATAH (% of active host time at 100 % CPU)", 100.0),
    ("overall_sla_violation", "overall SLA violation (% of requested MIPS not served)", 100.0),
    ("esv", "ESV = energy x SLAV (kWh)", 1.0),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
TRACE_STYLES = ("-", "--", ":", "-.")


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (both minimised), in input order.

    Point ``i`` is dominated when some ``j`` has ``x[j] <= x[i]`` and ``y[j] <= y[i]``
    with at least one strict; identical points do not dominate each other, so
    both are on the front. Points with a NaN coordinate are never on it and
    dominate nothing.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pareto_front: x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    xi, yi = x[:, None], y[:, None]
    xj, yj = x[None, :], y[None, :]
    beats = ok[None, :] & (xj <= xi) & (yj <= yi) & ((xj < xi) | (yj < yi))
    return [int(i) for i in np.flatnonzero(ok & ~beats.any(axis=1))]


def run_params(row: dict) -> dict:
    """A run's parameter values (``params`` is their JSON)."""
    return json.loads(row["params"]) if row.get("params") else {}


def swept_parameters(rows: Sequence[dict]) -> list[str]:
    """Parameter names some policy ran with more than one value, in order of first appearance."""
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    order: dict[str, None] = {}
    for r in rows:
        for k, v in run_params(r).items():
            values[(r["policy"], k)].add(json.dumps(v))
            order.setdefault(k)
    return [k for k in order if any(len(vals) > 1 for (_, name), vals in values.items() if name == k)]


def parameter_series(rows: Sequence[dict], param: str, metric: str) -> dict[tuple[str, str], list[tuple]]:
    """(policy, trace) -> [(value, mean of ``metric``, runs averaged)] sorted by value.

    Runs of one policy and trace with the same ``param`` value but different
    values of the policy's other parameters are averaged (arithmetic mean).
    """
    acc: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        p = run_params(r)
        if param in p:
            acc[(r["policy"], r["trace"])][json.dumps(p[param])].append(float(r[metric]))
    out = {}
    for key, by_value in acc.items():
        pts = [(json.loads(v), float(np.mean(m)), len(m)) for v, m in by_value.items()]
        pts.sort(key=lambda t: (0, t[0], "") if isinstance(t[0], (int, float)) else (1, 0, str(t[0])))
        out[key] = pts
    return out


def _policy_colours(rows: Sequence[dict]) -> dict[str, tuple]:
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    cmap = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")
    return {p: cmap(i % cmap.N) for i, p in enumerate(policies)}


def _policy_runs(rows: Sequence[dict]) -> dict[str, list[str]]:
    """Each policy's run labels, policies in order of appearance, settings in numeric parameter order."""
    from presplit.scale.sweep import sort_key

    by: dict[str, dict[str, tuple]] = defaultdict(dict)
    for r in rows:
        by[r["policy"]].setdefault(r["run"], sort_key("", r["policy"], r["params"] or "{}"))
    return {p: sorted(runs, key=runs.get) for p, runs in by.items()}


def _run_markers(rows: Sequence[dict]) -> dict[str, str]:
    """Marker of each run label: its rank among its policy's settings (one marker per setting)."""
    return {run: MARKERS[i % len(MARKERS)] for runs in _policy_runs(rows).values() for i, run in enumerate(runs)}


def _sla_axis(values: np.ndarray, scale: float) -> tuple[np.ndarray, float | None]:
    """Values to draw and the log axis' zero floor: log x (floor set) when the SLA values span more than a
    decade, zeros then drawn at the floor; ``(values, None)`` for a linear axis."""
    v = np.asarray(values, dtype=np.float64) * scale
    pos = v[np.isfinite(v) & (v > 0)]
    if len(pos) == 0 or pos.max() / pos.min() < 10:
        return v, None
    floor = pos.min() / 4
    return np.where(v == 0, floor, v), floor


def _log_ticks(ax, lo: float, hi: float, zero_at: float | None) -> None:
    """Readable major ticks on a log x axis from ``lo`` to ``hi`` (decades, or 1-2-5 when that gives too
    few), with a tick labelled 0 at ``zero_at`` and a dotted break between it and the positive values."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    exps = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks = [(1, k) for k in exps if lo <= 10.0 ** k <= hi]
    if len(ticks) < 2:
        ticks = [(m, k) for k in exps for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
    values = [m * 10.0 ** k for m, k in ticks]
    labels = [f"$10^{{{k}}}$" if m == 1 else f"${m}\\times10^{{{k}}}$" for m, k in ticks]
    if zero_at is not None:
        values = [zero_at] + [t for t in values if t > zero_at * 2.5]
        labels = ["0"] + [lab for t, lab in zip([m * 10.0 ** k for m, k in ticks], labels) if t > zero_at * 2.5]
        ax.axvline(zero_at * 1.6, color="0.55", lw=0.8, ls=(0, (2, 2)))
    ax.set_xticks(values, labels)
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def tradeoff_rows(rows: Sequence[dict]) -> list[dict]:
    """The Pareto-optimal runs of every trace (energy and SLAV both minimised), for the table."""
    out = []
    for trace in dict.fromkeys(r["trace"] for r in rows):
        mine = [r for r in rows if r["trace"] == trace]
        for i in pareto_front([r[TRADEOFF_X[0]] for r in mine], [r["energy_kwh"] for r in mine]):
            r = mine[i]
            out.append({"trace": trace, "run": r["run"], "energy_kwh": r["energy_kwh"], "slav": r["slav"],
                        "overall_sla_violation": r["overall_sla_violation"], "esv": r["esv"],
                        "migrations": r["migrations"]})
    return out


def fig_tradeoff(rows: Sequence[dict]) -> str:
    """Energy against SLAV, one panel per trace, one point per run, the Pareto front ringed and joined."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    _, traces = _runs_and_traces(rows)
    colour, marker = _policy_colours(rows), _run_markers(rows)
    ncols = 1 if len(traces) == 1 else 2
    nrows = math.ceil(len(traces) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False)
    col, xlabel = TRADEOFF_X
    for ax, trace in zip(axes.flat, traces):
        mine = [r for r in rows if r["trace"] == trace]
        x, floor = _sla_axis(np.array([r[col] for r in mine]), 100.0)
        y = np.array([r["energy_kwh"] for r in mine])
        for r, xi, yi in zip(mine, x, y):
            ax.scatter([xi], [yi], marker=marker[r["run"]], color=colour[r["policy"]], s=42, zorder=3,
                       edgecolors="white", linewidths=0.4)
        front = pareto_front([r[col] for r in mine], y)
        if front:
            order = sorted(front, key=lambda i: (x[i], y[i]))
            ax.plot(x[order], y[order], color="k", lw=0.9, ls="--", drawstyle="steps-post", zorder=2)
            ax.scatter(x[front], y[front], s=150, facecolors="none", edgecolors="k", linewidths=1.1, zorder=4)
        if floor is not None:
            finite = x[np.isfinite(x)]
            _log_ticks(ax, (floor if (x == floor).any() else finite.min()) / 1.8, finite.max() * 1.8,
                       floor if (x == floor).any() else None)
        ax.set_title(f"{trace} ({len(mine)} runs, {len(front)} on the front)", fontsize=10)
        ax.set_xlabel(xlabel + (", log scale" if ax.get_xscale() == "log" else ""), fontsize=9)
        ax.set_ylabel("energy (kWh)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, which="both" if ax.get_xscale() == "log" else "major", lw=0.5)
    for ax in axes.flat[len(traces):]:
        ax.set_visible(False)
    per_policy = _policy_runs(rows)
    front_handle = Line2D([], [], ls="--", marker="o", markersize=11, markerfacecolor="none", color="k",
                          label="Pareto front (no other run has\nboth lower energy and lower SLAV)")
    columns = [[Line2D([], [], ls="", marker=marker[run], color=colour[p], markersize=7, label=run)
                for run in runs] for p, runs in per_policy.items()] + [[front_handle]]
    if len(columns) <= 6:  # one legend column per policy, the front last
        height = max(len(c) for c in columns)
        blank = Line2D([], [], ls="", label=" ")
        handles = [h for c in columns for h in c + [blank] * (height - len(c))]
        ncols = len(columns)
    else:
        handles, ncols = [h for c in columns for h in c], 4
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8, ncols=ncols,
               frameon=False, title="run (colour: policy, marker: setting)", title_fontsize=8)
    return _png(fig)


def fig_parameter(rows: Sequence[dict], param: str) -> str:
    """Each key metric against one swept parameter, one line per (policy, trace)."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from presplit.scale.sweep import format_value

    colour = _policy_colours(rows)
    trace_order = list(dict.fromkeys(r["trace"] for r in rows))
    style = {t: TRACE_STYLES[i % len(TRACE_STYLES)] for i, t in enumerate(trace_order)}
    marks = {t: MARKERS[i % len(MARKERS)] for i, t in enumerate(trace_order)}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.2))
    all_values = [v for pts in parameter_series(rows, param, "energy_kwh").values() if len(pts) > 1
                  for v, _, _ in pts]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in all_values)
    cats = list(dict.fromkeys(str(v) for v in all_values))
    values = sorted(set(all_values)) if numeric else []
    position = (lambda v: v) if numeric else (lambda v: cats.index(str(v)))
    lines = []
    for ax, (metric, label, scale) in zip(axes.flat, KEY_METRICS):
        series = parameter_series(rows, param, metric)
        ys = []
        for (policy, trace), pts in series.items():
            if len(pts) < 2:
                continue  # one value says nothing about the parameter's effect (see parameter_note)
            xv = [position(v) for v, _, _ in pts]
            yv = [m * scale for _, m, _ in pts]
            ys += yv
            ax.plot(xv, yv, color=colour[policy], ls=style[trace], marker=marks[trace], markersize=5, lw=1.3)
            if metric == KEY_METRICS[0][0]:
                lines.append((policy, trace))
        pos = np.array([v for v in ys if v > 0])
        if len(pos) == len(ys) and len(pos) and pos.max() / pos.min() > 10:
            ax.set_yscale("log")
            label += ", log scale"
        ax.set_ylabel(label if len(label) < 30 else label.replace(" (", "\n("), fontsize=9)
        ax.set_xlabel(param, fontsize=9)
        if not numeric:
            ax.set_xticks(range(len(cats)), cats)
        elif len(values) <= 12:
            ax.set_xticks(values, [format_value(v) for v in values])
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, lw=0.5)
    legend_ax = axes.flat[-1]
    legend_ax.axis("off")
    policy_rank = {p: i for i, p in enumerate(colour)}
    lines.sort(key=lambda pt: (policy_rank[pt[0]], trace_order.index(pt[1])))
    handles = [Line2D([], [], color=colour[p], ls=style[t], marker=marks[t], label=f"{p} / {t}") for p, t in lines]
    legend_ax.legend(handles=handles, loc="center", fontsize=8, frameon=False, title="policy / trace",
                     title_fontsize=8, ncols=1 if len(handles) <= 14 else 2)
    fig.suptitle(f"key metrics against {param}", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def parameter_note(rows: Sequence[dict], param: str) -> str:
    """What each point of a parameter figure is: one run, or a mean over the other parameters' values."""
    series = parameter_series(rows, param, "energy_kwh")
    drawn = {k: pts for k, pts in series.items() if len(pts) > 1}
    others = sorted({k for r in rows if param in run_params(r) for k in run_params(r) if k != param})
    averaged = max((n for pts in drawn.values() for _, _, n in pts), default=1)
    policies = ", ".join(dict.fromkeys(p for p, _ in drawn))
    text = f"Drawn: {policies or 'none'}, one line per policy and trace. "
    if averaged > 1:
        text += (f"Each point is the mean over the runs with that {param} value, i.e. averaged over the swept "
                 f"values of {', '.join(others)} (up to {averaged} runs per point). ")
    else:
        text += "Each point is one run" + (f"; {', '.join(others)} stay at one value per policy (not swept). "
                                            if others else "; no other parameter was swept. ")
    single = [f"{p} on {t}" for (p, t), pts in series.items() if len(pts) == 1]
    if single:
        text += f"Left out (one {param} value only, no line to draw): {', '.join(single)}."
    return text.strip()


# --------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
 color:#1d2430;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #d0d7de}
h3{font-size:1.05em;margin-top:1.5em}figure{margin:1em 0}
.meta{color:#57606a;font-size:.9em}.note{background:#f6f8fa;border-left:4px solid #8c959f;padding:.5em 1em}
table{border-collapse:collapse;margin:1em 0;font-size:.86em}caption{text-align:left;color:#57606a;padding:.3em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #eaeef2;text-align:left;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#fff8c5}.scroll{overflow-x:auto}img{max-width:100%;height:auto}nav a{margin-right:1em}
"""


def build_report(rows: Sequence[dict], *, source: str, reference: Sequence[dict] | None = None) -> str:
    """The HTML text of the report for ``rows`` (as :func:`load_results` returns them)."""
    from presplit.extras import require

    require("report", "matplotlib")
    import matplotlib

    matplotlib.use("Agg", force=True)
    reference = load_reference() if reference is None else reference
    runs, traces = _runs_and_traces(rows)
    esc = html.escape
    parts = [f"<h1>presplit sweep report</h1><p class=\"meta\">{len(rows)} runs: {len(runs)} policy settings "
             f"x {len(traces)} traces, from <code>{esc(source)}</code>; generated "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>",
             '<nav><a href="#metrics">metrics</a><a href="#tradeoff">energy vs SLA</a>'
             '<a href="#parameters">per parameter</a><a href="#active">active hosts</a>'
             '<a href="#migrations">migrations per guest</a><a href="#cloudsim">CloudSim comparison</a></nav>',
             '<p class="note" id="no-forecasts">Sweep results hold one row of metrics per run and no '
             "per-guest forecasts, so this report has no forecast-against-actual figure; "
             "<code>presplit forecast plot</code> draws one forecast against what followed, and "
             "<code>presplit forecast backtest</code> scores the forecasters.</p>"]

    parts.append('<h2 id="metrics">Energy, SLA violation and migrations per policy and day</h2>')
    parts.append(fig_metrics(rows))
    parts.append(table_html(rows, ("trace", "run"), RUN_COLUMNS, table_id="runs",
                            caption="One row per run. SLAV and overall SLA violation use CloudSim's "
                                    "ratio-of-sums definitions; fluid bound = energy if every MIPS ran on "
                                    "the most efficient host type at 100 %; E / bound = energy / fluid bound."))

    parts.append('<h2 id="tradeoff">Energy against SLA violation</h2>')
    parts.append('<p>One point per run, one panel per trace (energies of different traces are not '
                 "comparable). The SLA axis is SLAV = SLATAH x PDM, the metric of Beloglazov and Buyya "
                 "(2012) that CloudSim reports and ESV = energy x SLAV combines with energy. Ringed points, "
                 "joined by the dashed line, are the Pareto front of their trace: no other run on it has "
                 "both lower energy and lower SLAV.</p>")
    parts.append(f'<figure id="tradeoff-figure">{fig_tradeoff(rows)}</figure>')
    parts.append(table_html(tradeoff_rows(rows), ("trace", "run"),
                            ("energy_kwh", "slav", "overall_sla_violation", "esv", "migrations"),
                            table_id="pareto", caption="The Pareto-optimal runs of each trace (energy and "
                                                       "SLAV both lower is better)."))

    parts.append('<h2 id="parameters">Key metrics against each swept parameter</h2>')
    params = swept_parameters(rows)
    if not params:
        parts.append('<p class="note" id="parameters-none">No parameter was swept (no policy ran with more '
                     "than one value of a parameter).</p>")
    for param in params:
        parts.append(f'<h3 id="param-{esc(param)}">{esc(param)}</h3>')
        parts.append(f"<p>{esc(parameter_note(rows, param))}</p>")
        parts.append(f'<figure class="param" data-param="{esc(param)}">{fig_parameter(rows, param)}</figure>')

    parts.append('<h2 id="active">Active hosts over time</h2>')
    parts.append(fig_active_hosts(rows))

    parts.append('<h2 id="migrations">Migrations per guest</h2>')
    parts.append(fig_migrations_per_guest(rows))
    stats = [{"trace": r["trace"], "run": r["run"], **migration_stats(r["migrations_per_guest"])} for r in rows]
    parts.append(table_html(stats, ("trace", "run"), ("mig_mean", "mig_p50", "mig_p95", "mig_max", "mig_never"),
                            table_id="migrations-per-guest",
                            caption="Per run: migrations of one guest over the whole trace."))

    parts.append('<h2 id="cloudsim">Comparison with CloudSim 3.0.3</h2>')
    matched = compare_with_reference(rows, reference)
    if matched:
        parts.append(table_html(matched, ("trace", "run"),
                                ("energy_kwh", "ref_energy_kwh", "energy_ratio", "migrations", "ref_migrations",
                                 "slav", "ref_slav", "fluid_bound_kwh", "energy_over_bound",
                                 "ref_energy_over_bound"),
                                table_id="cloudsim",
                                caption="Runs matched to the CloudSim reference by day, policy, VM and host "
                                        "count; the fluid bound is the same workload's lower bound."))
    else:
        days = ", ".join(sorted({r["day"] for r in reference}))
        pols = ", ".join(dict.fromkeys(r["policy"] for r in reference))
        parts.append(f'<p class="note" id="cloudsim-none">No run matches a CloudSim reference run. The reference '
                     f"covers the full PlanetLab days {esc(days)} (all VMs, 800 hosts) under {esc(pols)}; "
                     "synthetic or resized traces are not compared.</p>")

    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>presplit sweep report</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def write_report(results: Path, out: Path) -> int:
    """Read ``results``, write the report to ``out`` atomically; returns the number of runs."""
    rows = load_results(results)
    text = build_report(rows, source=Path(results).name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)
