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


# --------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
 color:#1d2430;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #d0d7de}
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
             '<nav><a href="#metrics">metrics</a><a href="#active">active hosts</a>'
             '<a href="#migrations">migrations per guest</a><a href="#forecast">forecasts</a>'
             '<a href="#cloudsim">CloudSim comparison</a></nav>']

    parts.append('<h2 id="metrics">Energy, SLA violation and migrations per policy and day</h2>')
    parts.append(fig_metrics(rows))
    parts.append(table_html(rows, ("trace", "run"), RUN_COLUMNS, table_id="runs",
                            caption="One row per run. SLAV and overall SLA violation use CloudSim's "
                                    "ratio-of-sums definitions; fluid bound = energy if every MIPS ran on "
                                    "the most efficient host type at 100 %; E / bound = energy / fluid bound."))

    parts.append('<h2 id="active">Active hosts over time</h2>')
    parts.append(fig_active_hosts(rows))

    parts.append('<h2 id="migrations">Migrations per guest</h2>')
    parts.append(fig_migrations_per_guest(rows))
    stats = [{"trace": r["trace"], "run": r["run"], **migration_stats(r["migrations_per_guest"])} for r in rows]
    parts.append(table_html(stats, ("trace", "run"), ("mig_mean", "mig_p50", "mig_p95", "mig_max", "mig_never"),
                            table_id="migrations-per-guest",
                            caption="Per run: migrations of one guest over the whole trace."))

    parts.append('<h2 id="forecast">Forecast against actual</h2>')
    if any("forecast" in r for r in rows):
        parts.append('<p class="note">The results carry forecasts, but this report version does not plot them yet.</p>')
    else:
        parts.append('<p class="note">Not shown: sweep results do not carry per-guest forecasts '
                     "(use <code>presplit forecast</code> to plot forecasts against actual demand).</p>")

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
