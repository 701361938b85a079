// presplit dashboard: plain JavaScript, no build step, no network beyond this server.
// Charts: uPlot (vendor/uPlot.iife.min.js, MIT). Data: /api/status, /api/fleet, /api/history, /api/fabric,
// /api/timeline, /api/plans[/{id}], /api/{hosts|domains|guests}/{id}/forecast; live: /api/live (SSE);
// decisions: POST /api/plans/{id}/{approve|reject|cancel} with the bearer token kept in sessionStorage.
"use strict";

const $ = (s, root = document) => root.querySelector(s);
const $$ = (s, root = document) => [...root.querySelectorAll(s)];
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DEMO_START = 1299110400; // 2011-03-03T00:00Z: the demo fleet's start, if the server does not say
const TOKEN_KEY = "presplit-api-token";
const DONE = new Set(["succeeded", "partially_failed", "failed", "cancelled", "rejected", "superseded"]);

let status = null, fleet = null, history = null, timelineItems = [], plans = [];
let selected = { kind: "host", id: "0" };
let tab = "fleet";
let chartSpan = 21600;

// ------------------------------------------------------------------ time and numbers
const UTC = { timeZone: "UTC", hourCycle: "h23" };
const F_FULL = new Intl.DateTimeFormat("en-GB", { ...UTC, weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const F_DAY = new Intl.DateTimeFormat("en-GB", { ...UTC, day: "numeric", month: "short", year: "numeric" });
const F_HM = new Intl.DateTimeFormat("en-GB", { ...UTC, hour: "2-digit", minute: "2-digit" });
const F_SHORT = new Intl.DateTimeFormat("en-GB", { ...UTC, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const epoch = () => (status && status.start_epoch_s != null ? status.start_epoch_s : DEMO_START);
const dateOf = (t) => new Date((epoch() + t) * 1000);
const dateFull = (t) => (t == null ? "–" : `${F_FULL.format(dateOf(t))} UTC`);
const dateShort = (t) => (t == null ? "–" : F_SHORT.format(dateOf(t)));
const dateDay = (t) => F_DAY.format(dateOf(t));

function span(s) {
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) { const h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60); return m ? `${h} h ${m} min` : `${h} h`; }
  const d = Math.floor(s / 86400), h = Math.round((s % 86400) / 3600);
  return h ? `${d} d ${h} h` : `${d} d`;
}

const num3 = (x) => String(Number(x.toPrecision(3)));
function si(v, unit = "") {
  if (v == null || !isFinite(v)) return "–";
  const a = Math.abs(v);
  for (const [f, p] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (a >= f) return `${num3(v / f)} ${p}${unit}`;
  return `${a && a < 0.01 ? v.toExponential(1) : num3(v)}${unit ? " " + unit : ""}`;
}
// Memory: the API's MB are 2^20 bytes (a scenario's ram_gb x 1024), shown in binary steps.
function mem(mb) {
  if (mb == null || !isFinite(mb)) return "–";
  if (mb >= 1048576) return `${num3(mb / 1048576)} TB`;
  if (mb >= 1024) return `${num3(mb / 1024)} GB`;
  return `${num3(mb)} MB`;
}
function pct(x, digits) {
  if (x == null || !isFinite(x)) return "–";
  if (digits === undefined) digits = Math.abs(x) >= 0.1 || x === 0 ? 0 : Math.abs(x) >= 0.001 ? 1 : 2;
  return `${(x * 100).toFixed(digits)} %`;
}
const pctTicks = (splits) => {
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) * 100 : 10;
  // as many decimals as the step needs: 25 %, 0.5 %, 0.25 %
  let d = step > 0 ? Math.max(0, Math.min(3, -Math.floor(Math.log10(step) + 1e-9))) : 0;
  if (d < 3 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6) d += 1;
  return splits.map((v) => (v == null ? "" : `${(v * 100).toFixed(d)} %`));
};
const intTicks = (splits) => splits.map((v) => (v == null || Math.abs(v - Math.round(v)) > 1e-9 ? "" : String(Math.round(v))));

// Load colour: green (idle) -> amber -> red (at or over capacity).
function heat(x) {
  const v = Math.max(0, Math.min(1.2, x || 0)) / 1.2;
  return `hsl(${130 - 130 * v}, 70%, ${52 - 10 * v}%)`;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

let noticeTimer = null;
function notice(text, kind = "") {
  const el = $("#notice");
  el.textContent = text;
  el.className = kind;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 15000 : 7000);
}

// ------------------------------------------------------------------ charts (uPlot)
const HAVE_UPLOT = typeof uPlot === "function";
const FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

// Time axis labels: "HH:MM", with the date (and year) under the first label and wherever the day changes.
function timeLabels(u, splits) {
  let prev = null;
  const out = splits.map((s) => {
    if (s == null) return "";
    const d = new Date(s * 1000), day = F_DAY.format(d), hm = F_HM.format(d);
    const label = prev === null || day !== prev ? `${hm}\n${day}` : hm;
    prev = day;
    return label;
  });
  u.root.dataset.xlabels = out.join(" | ").replace(/\n/g, " ");
  return out;
}

function baseOptions(el, { height, yTicks, yRange, legend = true, sync = "fleet", xPad = 0, yLabel = null }) {
  return {
    width: Math.max(240, el.clientWidth || 400), height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    cursor: sync ? { sync: { key: sync }, points: { size: 6 } } : { points: { size: 6 } },
    legend: { show: legend, live: true },
    scales: { x: { time: true, range: (u, min, max) => [min, max + (max - min) * xPad] }, y: { range: yRange } },
    axes: [
      { stroke: "#4b5563", font: FONT, grid: { stroke: "#eef0f3", width: 1 }, ticks: { stroke: "#d1d5db", width: 1, size: 4 },
        space: 64, size: 40, values: timeLabels },
      { stroke: "#4b5563", font: FONT, grid: { stroke: "#eef0f3", width: 1 }, ticks: { stroke: "#d1d5db", width: 1, size: 4 },
        size: 58, space: 28, values: (u, splits) => yTicks(splits), ...(yLabel ? { label: yLabel, labelSize: 14, labelFont: FONT } : {}) },
    ],
    series: [{ value: (u, v) => (v == null ? "–" : `${F_SHORT.format(new Date(v * 1000))} UTC`) }],
  };
}

const fleetCharts = {};
const FLEET_CHARTS = {
  cpu: {
    yTicks: pctTicks, yRange: (u, min, max) => [0, Math.max(1, (max || 0) * 1.05)],
    series: [{ label: "CPU", stroke: "#2563eb", width: 1.6, fill: "rgba(37,99,235,.08)", value: (u, v) => pct(v) }],
    data: (P) => [P.map((p) => p.cpu_utilisation)],
    now: (p) => pct(p.cpu_utilisation),
    legend: false,
  },
  mem: {
    yTicks: pctTicks, yRange: (u, min, max) => [0, Math.max(1, (max || 0) * 1.05)],
    series: [{ label: "memory", stroke: "#7c3aed", width: 1.6, fill: "rgba(124,58,237,.08)", value: (u, v) => pct(v) }],
    data: (P) => [P.map((p) => p.mem_utilisation)],
    now: (p) => pct(p.mem_utilisation),
    legend: false,
  },
  hosts: {
    yTicks: intTicks, yRange: (u, min, max) => [0, Math.max(1, max || 0) + 0.5],
    series: [{ label: "hosts on", stroke: "#0f766e", width: 1.8, fill: "rgba(15,118,110,.10)", value: (u, v) => (v == null ? "–" : String(v)) },
             { label: "hosts", stroke: "#9ca3af", width: 1, dash: [5, 4], value: (u, v) => (v == null ? "–" : String(v)) }],
    data: (P) => [P.map((p) => p.hosts_on), P.map((p) => p.hosts)],
    now: (p) => `${p.hosts_on} of ${p.hosts}`,
    legend: false,
  },
  power: {
    yTicks: (splits) => splits.map((v) => (v == null ? "" : si(v, "W"))), yRange: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)],
    series: [{ label: "power", stroke: "#b45309", width: 1.6, fill: "rgba(180,83,9,.08)", value: (u, v) => si(v, "W") }],
    data: (P) => [P.map((p) => p.power_w)],
    now: (p) => si(p.power_w, "W"),
    legend: false,
  },
  moves: {
    yTicks: intTicks, yRange: (u, min, max) => [0, Math.max(2, (max || 0) * 1.2)],
    series: [{ label: "live migrations", stroke: "#b45309", fill: "rgba(245,158,11,.75)", width: 1, value: (u, v) => (v == null ? "–" : String(v)), bars: -1 },
             { label: "re-pins", stroke: "#0f766e", fill: "rgba(20,184,166,.65)", width: 1, value: (u, v) => (v == null ? "–" : String(v)), bars: 1 }],
    data: (P) => [P.map((p) => p.live_migrations || null), P.map((p) => p.repins || null)], // no bar for 0
    now: (p) => `${p.live_migrations} live, ${p.repins} re-pin${p.repins === 1 ? "" : "s"}`,
    legend: true,
  },
  sla: {
    yTicks: pctTicks, yRange: (u, min, max) => [0, Math.max(0.01, (max || 0) * 1.2)],
    series: [{ label: "unserved", stroke: "#dc2626", width: 1.6, fill: "rgba(220,38,38,.10)", value: (u, v) => pct(v) }],
    data: (P) => [P.map((p) => p.unserved_share)],
    now: (p) => pct(p.unserved_share),
    legend: false,
  },
};

function seriesOf(spec) {
  return spec.series.map((s) => {
    const { bars, ...rest } = s;
    if (bars !== undefined && uPlot.paths && uPlot.paths.bars) {
      return { ...rest, paths: uPlot.paths.bars({ size: [0.42, 24, 3], align: bars }), points: { show: false } };
    }
    return { ...rest, points: { show: false } };
  });
}

function drawFleetCharts() {
  if (!history || tab !== "fleet") return;
  const P = history.points;
  const ep = history.start_epoch_s != null ? history.start_epoch_s : epoch();
  const x = P.map((p) => ep + p.t);
  const last = P[P.length - 1];
  fleetPoints = P;
  for (const [name, spec] of Object.entries(FLEET_CHARTS)) {
    const fig = $(`#fleet-charts [data-chart="${name}"]`);
    fleetCaption(name, null);
    if (!HAVE_UPLOT) continue;
    const el = fig.querySelector(".plot");
    const data = [x, ...spec.data(P)];
    let u = fleetCharts[name];
    if (!u) {
      const opts = baseOptions(el, { height: 170, yTicks: spec.yTicks, yRange: spec.yRange, legend: spec.legend });
      if (spec.legend) opts.legend.live = false;
      opts.series.push(...seriesOf(spec));
      opts.hooks = { setCursor: [(u) => fleetCaption(name, u.cursor.idx)] };
      u = fleetCharts[name] = new uPlot(opts, data, el);
    } else {
      u.setData(data);
    }
  }
  if (!HAVE_UPLOT) $("#range").textContent = "The chart library (vendor/uPlot.iife.min.js) did not load.";
  else if (P.length) {
    $("#range").textContent = `${dateFull(P[0].t)} – ${dateFull(last.t)} · one point per control tick (${span(history.interval_s)}), ` +
      `the last ${P.length} ticks. Dates are the simulated world's (its start + simulated time).`;
  } else {
    $("#range").textContent = "No tick yet.";
  }
  fleetKpis(last);
}

// A fleet chart's caption: the value under the cursor (all charts follow it), else the latest.
let fleetPoints = [];
function fleetCaption(name, idx) {
  const P = fleetPoints, spec = FLEET_CHARTS[name];
  const b = $(`#fleet-charts [data-chart="${name}"] figcaption b`);
  const p = idx != null && P[idx] ? P[idx] : P[P.length - 1];
  if (!p) { b.textContent = ""; return; }
  b.textContent = idx != null && P[idx] ? `${spec.now(p)} at ${dateShort(p.t)}` : spec.now(p);
}

function fleetKpis(p) {
  const c = (status && status.counts) || {};
  const k = (v, l, warn = false) => `<div class="kpi${warn ? " warn" : ""}"><div class="v">${v}</div><div class="l">${l}</div></div>`;
  const html = [];
  html.push(k(`${c.hosts_on ?? "–"}/${c.hosts ?? "–"}`, "hosts on"));
  if (p) {
    html.push(k(pct(p.cpu_utilisation), `CPU of the hosts on (${si(p.demand_mips)} of ${si(p.capacity_mips)} MIPS)`));
    html.push(k(pct(p.mem_utilisation), `memory booked (${mem(p.mem_reserved_mb)} of ${mem(p.mem_mb)})`));
    html.push(k(si(p.power_w, "W"), "power now"));
    html.push(k(pct(p.unserved_share), "demand unserved now", p.unserved_share > 0.001));
  }
  html.push(k(`${c.guests_running ?? 0}`, `guests running${c.guests_migrating ? `, ${c.guests_migrating} migrating` : ""}`));
  html.push(k(`${c.guests_pending ?? 0}`, "guests pending placement", (c.guests_pending || 0) > 0));
  $("#kpis").innerHTML = html.join("");
}

// One entity's history: load, capacity, and the forecast interval -- over the past, what was forecast one tick
// before each tick; ahead of "now", the forecast for the next tick (the forecaster's horizon).
let entityChart = null, entityKey = null, entityInfo = null;

function nowPlugin() {
  return {
    hooks: {
      draw: [(u) => {
        const info = entityInfo;
        if (!info || info.nowX == null) return;
        const ctx = u.ctx, { top, height } = u.bbox, dpr = devicePixelRatio || 1;
        const x0 = u.valToPos(info.nowX, "x", true);
        ctx.save();
        ctx.strokeStyle = "#374151";
        ctx.lineWidth = dpr;
        ctx.setLineDash([4 * dpr, 3 * dpr]);
        ctx.beginPath(); ctx.moveTo(x0, top); ctx.lineTo(x0, top + height); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#374151";
        ctx.font = `${11 * dpr}px system-ui, sans-serif`;
        ctx.textAlign = "right";
        ctx.fillText("now", x0 - 4 * dpr, top + height - 5 * dpr);
        if (info.next && info.nextX != null) {
          const x1 = Math.max(u.valToPos(info.nextX, "x", true), x0 + 12 * dpr);
          const hi = u.valToPos(info.next.p95, "y", true), lo = u.valToPos(info.next.p05, "y", true);
          const mid = u.valToPos(info.next.p50, "y", true);
          ctx.fillStyle = "rgba(245,158,11,.55)";
          ctx.fillRect(x0, hi, x1 - x0, Math.max(lo - hi, dpr));
          ctx.strokeStyle = "#b45309";
          ctx.lineWidth = 1.5 * dpr;
          ctx.strokeRect(x0, hi, x1 - x0, Math.max(lo - hi, dpr));
          ctx.beginPath(); ctx.moveTo(x0, mid); ctx.lineTo(x1, mid); ctx.stroke();
          ctx.textAlign = "right";
          ctx.fillStyle = "#92400e";
          ctx.fillText("next tick", x1, Math.min(lo + 13 * dpr, top + height - 20 * dpr));
        }
        ctx.restore();
      }],
    },
  };
}

function entityLabel(kind, id) {
  if (kind === "host") return fleet?.hosts.find((h) => String(h.id) === id)?.name || `host ${id}`;
  if (kind === "domain") {
    const d = fleet?.domains.find((x) => String(x.id) === id);
    const h = d ? fleet.hosts[d.host] : null;
    return `domain ${id}${h ? ` · ${h.name}` : ""}`;
  }
  return `guest ${id}`;
}

async function drawEntity() {
  const { kind, id } = selected;
  let s;
  try { s = await getJSON(`/api/${kind}s/${encodeURIComponent(id)}/forecast`); } catch (e) { return; }
  if (selected.kind !== kind || selected.id !== id) return;
  $("#chart-title").textContent = entityLabel(kind, id);
  const el = $("#entity-chart");
  const ep = epoch();
  let pts = s.points;
  if (pts.length) { const lastT = pts[pts.length - 1].t; pts = pts.filter((p) => p.t >= lastT - chartSpan); }
  const ahead = s.next && s.next_t != null && (!pts.length || s.next_t > pts[pts.length - 1].t);
  const x = pts.map((p) => ep + p.t), load = pts.map((p) => p.load), cap = pts.map((p) => p.capacity);
  const f = (q) => pts.map((p) => (p.forecast ? p.forecast[q] : null));
  const p05 = f("p05"), p50 = f("p50"), p95 = f("p95");
  if (ahead) {
    x.push(ep + s.next_t); load.push(null); cap.push(pts.length ? pts[pts.length - 1].capacity : null);
    p05.push(s.next.p05); p50.push(s.next.p50); p95.push(s.next.p95);
  }
  const capNow = pts.length ? pts[pts.length - 1].capacity : 0;
  entityInfo = { nowIdx: pts.length - 1, nowX: pts.length ? x[pts.length - 1] : null, nextX: ahead ? ep + s.next_t : null, next: ahead ? s.next : null, cap: capNow };
  el.dataset.band = p95.filter((v) => v != null).length >= 2 ? "1" : "0";
  el.dataset.points = String(pts.length);
  const interval = status?.interval_s || (s.next_t != null && pts.length ? s.next_t - pts[pts.length - 1].t : 0);
  const horizon = history?.forecast_horizon_s ?? interval;
  const oneTick = !interval || horizon <= interval * 1.01;
  $("#chart-note").innerHTML = (pts.length ? `${dateShort(pts[0].t)} – ${dateShort(pts[pts.length - 1].t)} UTC. ` : "") +
    "<b>Blue</b>: CPU demand. <b>Red dashed</b>: capacity. <b>Amber band</b>: the p05–p95 forecast made one tick before each tick " +
    "(dashed: p50). " + (oneTick
      ? `<b>Box after “now”</b>: the forecast for the next tick — the forecaster looks one tick (${span(interval || 300)}) ahead, so that is its whole horizon.`
      : `<b>After “now”</b>: the forecast over its horizon (${span(horizon)}).`) +
    (capNow ? ` Right axis: share of the capacity now (${si(capNow)} MIPS).` : "");
  if (!HAVE_UPLOT) { el.textContent = "The chart library (vendor/uPlot.iife.min.js) did not load."; return; }
  const data = [x, load, cap, p05, p95, p50];
  const key = `${kind}:${id}`;
  if (!entityChart || entityKey !== key || entityChart._n !== (ahead ? 1 : 0)) {
    if (entityChart) entityChart.destroy();
    el.innerHTML = "";
    const opts = baseOptions(el, { height: 250, sync: null, xPad: 0.03, yLabel: "CPU (MIPS)",
      yTicks: (splits) => splits.map((v) => (v == null ? "" : si(v))),
      yRange: (u, min, max) => [0, Math.max(1, (max || 0) * 1.08)] });
    opts.axes.push({ side: 1, scale: "y", stroke: "#6b7280", font: FONT, size: 50, grid: { show: false },
      ticks: { stroke: "#d1d5db", width: 1, size: 4 },
      values: (u, splits) => splits.map((v) => (v == null || !entityInfo?.cap ? "" : `${Math.round((v / entityInfo.cap) * 100)} %`)) });
    const mips = (u, v) => (v == null ? "–" : `${si(v)} MIPS`);
    opts.series.push(
      { label: "demand", stroke: "#1d4ed8", width: 2, value: mips, points: { show: false } },
      { label: "capacity", stroke: "#dc2626", width: 1.2, dash: [6, 4], value: mips, points: { show: false } },
      { label: "p05", stroke: "rgba(180,83,9,.6)", width: 1, value: mips, points: { show: false } },
      { label: "p95", stroke: "rgba(180,83,9,.8)", width: 1, value: mips, points: { show: false } },
      { label: "p50", stroke: "#b45309", width: 1.2, dash: [4, 3], value: mips, points: { show: false } },
    );
    opts.bands = [{ series: [4, 3], fill: "rgba(245,158,11,.28)" }];
    opts.plugins = [nowPlugin()];
    opts.hooks = { setCursor: [(u) => { if (u.cursor.idx == null && entityInfo?.nowIdx >= 0) u.setLegend({ idx: entityInfo.nowIdx }); }] };
    entityChart = new uPlot(opts, data, el);
    entityChart._n = ahead ? 1 : 0;
    entityKey = key;
  } else {
    entityChart.setData(data);
  }
  if (entityChart.cursor.idx == null && entityInfo.nowIdx >= 0) entityChart.setLegend({ idx: entityInfo.nowIdx });
}

function resizeCharts() {
  const fit = (u, el) => { const w = el.clientWidth; if (u && w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: w, height: u.height }); };
  for (const [name, u] of Object.entries(fleetCharts)) fit(u, $(`#fleet-charts [data-chart="${name}"] .plot`));
  fit(entityChart, $("#entity-chart"));
}
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(resizeCharts, 100); });

// ------------------------------------------------------------------ header, banner
function drawStatus(s) {
  status = s;
  const c = s.counts || {};
  $("#clock").textContent = dateFull(s.now);
  $("#clock").title = `simulated time: t = ${s.now == null ? "–" : Math.round(s.now)} s (${s.now == null ? "–" : span(s.now)}) since the world's start, ${dateFull(0)}`;
  const err = s.last_error ? ` · error: ${typeof s.last_error === "string" ? s.last_error : s.last_error.error || "see /api/status"}` : "";
  $("#status").textContent = `${s.backend} · ${s.profile}${s.dry_run ? " · recommend only" : ""} · ${s.running ? "running" : "stopped"} · tick ${s.ticks} · ` +
    `${c.hosts_on ?? "–"}/${c.hosts ?? "–"} hosts on · ${c.guests_running ?? 0} running, ${c.guests_pending ?? 0} pending${err}`;
  drawBanner();
}

function drawBanner() {
  const b = $("#banner");
  if (!status || !status.dry_run) { b.hidden = true; return; }
  const open = plans.filter((p) => p.status === "recommended");
  const pending = status.counts?.guests_pending || 0;
  const what = open.length
    ? `Plan <a href="#plans" data-open-plan="${open[0].id}">#${open[0].id}</a> (${Object.values(open[0].actions).reduce((a, b) => a + b, 0)} actions, made ${dateShort(open[0].tick)}) awaits a decision in <a href="#plans">Plans</a>.`
    : "No recommendation is open right now.";
  b.innerHTML = `<b>Recommend-only mode (dry run):</b> the controller changes nothing until an operator approves a plan. ${what}` +
    (pending ? ` ${pending} guest${pending === 1 ? "" : "s"} wait${pending === 1 ? "s" : ""} for placement.` : "");
  b.hidden = false;
}

// ------------------------------------------------------------------ hosts tab
function drawHosts(f) {
  const doms = new Map(f.domains.map((d) => [d.id, d]));
  const byDomain = new Map();
  const pending = [];
  for (const g of f.guests) {
    if (g.domain === null) { if (g.status === "pending") pending.push(g); continue; }
    if (!byDomain.has(g.domain)) byDomain.set(g.domain, []);
    byDomain.get(g.domain).push(g);
  }
  const html = [];
  for (const h of f.hosts) {
    const total = h.domains.reduce((s, id) => s + (doms.get(id)?.cpu_mips || 0), 0) || 1;
    const win = h.window ? `<span class="badge ${h.window.state}" title="${esc(h.window.rule)}: ${esc(dateFull(h.window.start))} – ${esc(dateFull(h.window.end))}">patch ${h.window.state === "open" ? "now" : esc(F_HM.format(dateOf(h.window.start)))}</span>` : "";
    const sel = selected.kind === "host" && selected.id === String(h.id) ? " sel" : "";
    html.push(`<div class="host${h.on ? "" : " off"}${sel}" data-host="${h.id}" data-kind="host" data-id="${h.id}" title="${esc(h.name)} (rack ${esc(h.rack)}): load ${pct(h.utilisation)}, p95 forecast ${pct(h.forecast_utilisation.p95)}; ${h.guests} guests">`);
    html.push(`<div class="host-head"><span>${esc(h.name)} <span class="num">${esc(h.rack)}</span> ${win}</span>` +
      `<span class="num">${h.on ? `${pct(h.utilisation)} → ${pct(h.forecast_utilisation.p95)}` : "off"}</span></div>`);
    html.push(`<div class="fbar"><i style="width:${Math.min(100, h.utilisation * 100)}%;background:${heat(h.utilisation)}"></i>` +
      `<b style="left:${Math.min(99, h.forecast_utilisation.p95 * 100)}%"></b></div><div class="domains">`);
    for (const id of h.domains) {
      const d = doms.get(id);
      if (!d) continue;
      const dsel = selected.kind === "domain" && selected.id === String(d.id) ? " sel" : "";
      html.push(`<div class="domain ${esc(d.state)}${dsel}" data-domain="${d.id}" data-kind="domain" data-id="${d.id}" ` +
        `style="flex:${Math.max(d.cpu_mips / total, 0.08)};background:${heat(d.utilisation)}22;border-color:${heat(d.forecast_utilisation.p95)}" ` +
        `title="domain ${d.id} (${esc(d.state)}): ${si(d.cpu_mips)} MIPS, ${mem(d.mem_mb)}; load ${pct(d.utilisation)}, p95 ${pct(d.forecast_utilisation.p95)}; services ${esc(d.services.join(", "))}">`);
      html.push(`<div class="dh">d${d.id} ${d.state !== "active" ? esc(d.state) : ""} ${pct(d.utilisation)}</div>`);
      html.push(`<div class="fbar"><i style="width:${Math.min(100, d.utilisation * 100)}%;background:${heat(d.utilisation)}"></i>` +
        `<b style="left:${Math.min(99, d.forecast_utilisation.p95 * 100)}%"></b></div><div class="guests">`);
      const gs = byDomain.get(d.id) || [];
      for (const g of gs.slice(0, 48)) {
        const gsel = selected.kind === "guest" && selected.id === g.id ? " sel" : "";
        const fc = g.mips ? g.forecast_mips.p95 / g.mips : 0;
        html.push(`<span class="guest ${esc(g.status)}${gsel}" data-guest="${esc(g.id)}" data-kind="guest" data-id="${esc(g.id)}" ` +
          `style="background:${heat(g.utilisation)};border-color:${heat(fc)}" ` +
          `title="${esc(g.id)} ${esc(g.status)}${g.dest_domain !== null ? " → d" + g.dest_domain : ""}: ${si(g.demand_mips)} of ${si(g.mips)} MIPS, p95 ${si(g.forecast_mips.p95)}"></span>`);
      }
      if (gs.length > 48) html.push(`<span class="more">+${gs.length - 48}</span>`);
      html.push("</div></div>");
    }
    html.push("</div></div>");
  }
  $("#hostgrid").innerHTML = html.join("");
  const shown = pending.slice(0, 40);
  $("#pending").innerHTML = pending.length
    ? `<b>${pending.length} guest${pending.length === 1 ? "" : "s"} pending placement</b>${status?.dry_run ? " (dry run: placed once a plan is approved, see <a href=\"#plans\">Plans</a>)" : ""}: ` +
      shown.map((g) => `<span class="guest pending-chip" data-guest="${esc(g.id)}" data-kind="guest" data-id="${esc(g.id)}" title="${esc(g.id)} waits for placement"></span>`).join(" ") +
      (pending.length > shown.length ? ` <span class="more">and ${pending.length - shown.length} more</span>` : "")
    : "";
}

function drawFabric(fab, f) {
  const svg = $("#fabric");
  const W = 600;
  const hosts = fab.nodes.filter((n) => n.kind === "host");
  const switches = fab.nodes.filter((n) => n.kind === "switch");
  const racks = [...new Set(hosts.map((h) => h.rack))];
  const info = new Map((f?.hosts || []).map((h) => [String(h.id), h]));
  const pos = new Map();
  const colW = W / Math.max(racks.length, 1);
  const perRow = Math.max(1, Math.floor((colW - 12) / 24));
  const maxInRack = Math.max(1, ...racks.map((r) => hosts.filter((h) => h.rack === r).length));
  const rows = Math.ceil(maxInRack / perRow);
  const spacing = (colW - 12) / Math.min(maxInRack, perRow);
  const radius = Math.max(5, Math.min(11, spacing * 0.3));
  const rowH = Math.max(28, radius * 2 + 12);
  const y0 = 150, H = y0 + rows * rowH + 10;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.style.height = `${Math.min(420, Math.max(200, H))}px`;
  svg.classList.toggle("labels", spacing >= 52);
  racks.forEach((r, ri) => {
    const inRack = hosts.filter((h) => h.rack === r);
    const x0 = colW * ri + 6, n = Math.min(inRack.length, perRow);
    inRack.forEach((h, i) => {
      const row = Math.floor(i / perRow), col = i % perRow;
      pos.set(h.id, [x0 + ((colW - 12) * (col + 0.5)) / n, y0 + row * rowH]);
    });
    pos.set(`tor:${r}`, [colW * ri + colW / 2, 80]);
  });
  for (const s of switches) if (!pos.has(s.id)) pos.set(s.id, [W / 2, 24]);
  const parts = [];
  const dense = maxInRack > 6;
  for (const l of fab.links) {
    const a = pos.get(l.a), b = pos.get(l.b);
    if (!a || !b) continue;
    const hot = l.migrations > 0;
    const stroke = hot ? "#f59e0b" : "#9ca3af", width = hot ? 3 + 2 * l.migrations : Math.max(0.6, Math.log10(l.gbit + 1));
    const title = `<title>${esc(l.a)} – ${esc(l.b)}: ${l.gbit} Gbit/s, ${l.latency_ms} ms${hot ? `, ${l.migrations} migration(s) in flight` : ""}</title>`;
    const cls = `link${hot ? " hot" : ""}`;
    const hostHost = !String(l.a).includes(":") && !String(l.b).includes(":");
    if (hostHost) { // host-host inside a rack: an arc below
      const mx = (a[0] + b[0]) / 2, dy = 14 + Math.abs(a[0] - b[0]) / 6;
      parts.push(`<path class="${cls}" d="M${a[0]},${a[1]} Q${mx},${Math.max(a[1], b[1]) + dy} ${b[0]},${b[1]}" fill="none" stroke="${stroke}" stroke-width="${width}" opacity="${hot ? 1 : dense ? 0.12 : 0.5}">${title}</path>`);
    } else {
      parts.push(`<line class="${cls}" x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}" stroke="${stroke}" stroke-width="${width}" opacity="${hot ? 1 : dense ? 0.45 : 1}">${title}</line>`);
    }
  }
  for (const s of switches) {
    const [x, y] = pos.get(s.id);
    const label = s.kind === "switch" && s.rack ? `ToR ${s.rack}` : s.id;
    parts.push(`<rect x="${x - 32}" y="${y - 10}" width="64" height="20" rx="4" fill="#374151"><title>${esc(s.id)}</title></rect>` +
      `<text x="${x}" y="${y + 4}" fill="#fff" font-size="10" text-anchor="middle">${esc(label)}</text>`);
  }
  racks.forEach((r, ri) => {
    const n = hosts.filter((h) => h.rack === r).length;
    parts.push(`<text class="rack" x="${colW * ri + colW / 2}" y="112" font-size="11" font-weight="600" text-anchor="middle" fill="#374151" paint-order="stroke" stroke="#fff" stroke-width="4">rack ${esc(r)} · ${n} host${n === 1 ? "" : "s"}</text>`);
  });
  for (const h of hosts) {
    const [x, y] = pos.get(h.id);
    const u = info.get(h.id);
    const fill = u ? (u.on ? heat(u.utilisation) : "#d1d5db") : "#9ca3af";
    const name = u ? u.name : h.id;
    const sel = selected.kind === "host" && selected.id === String(h.id) ? " sel" : "";
    parts.push(`<g class="fab-host${sel}" data-kind="host" data-id="${esc(h.id)}"><circle cx="${x}" cy="${y}" r="${radius}" fill="${fill}" stroke="#1f2937">` +
      `<title>${esc(name)}${u ? ` (rack ${esc(u.rack)}): ${u.on ? `load ${pct(u.utilisation)}` : "off"}` : ""}</title></circle>` +
      `<text class="hl" x="${x}" y="${y + radius + 11}" font-size="10" text-anchor="middle" paint-order="stroke" stroke="#fff" stroke-width="3">${esc(name)}</text></g>`);
  }
  svg.innerHTML = parts.join("");
}

// ------------------------------------------------------------------ timeline
function actionRow(e) {
  let what = "";
  if (e.guest) what = `${esc(e.guest)}${e.from_domain !== null ? ` d${e.from_domain}` : ""} → d${e.to_domain ?? "?"}`;
  else if (e.to_domain !== null) what = `domain d${e.to_domain}`;
  else if (e.hosts.length) what = `host ${e.hosts.map(hostName).join(", ")}`;
  return `<li class="${esc(e.kind)} ${esc(e.status)}" data-kind-action="${esc(e.kind)}" data-plan="${e.plan_id}">` +
    `<span class="t" title="t = ${Math.round(e.t)} s">${esc(dateShort(e.t))}</span><span class="kind">${esc(e.kind)}</span>` +
    `<span><span class="what">${what}</span><span class="st ${esc(e.status)}">${esc(e.status)}</span> <a href="#plans" data-open-plan="${e.plan_id}" class="more">plan #${e.plan_id}</a>` +
    `<div class="why">${esc(e.reason)}</div></span></li>`;
}

function drawTimeline(items) {
  const only = $("#moves-only").checked;
  const kinds = new Set(["PlaceGuest", "MoveGuest", "MigrateGuest"]);
  $("#timeline").innerHTML = items.filter((e) => !only || kinds.has(e.kind)).map(actionRow).join("") || "<li>no actions yet</li>";
  $("#recent").innerHTML = items.slice(0, 10).map(actionRow).join("") || "<li>no actions yet</li>";
}

// ------------------------------------------------------------------ plans
const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (v) => sessionStorage.setItem(TOKEN_KEY, v),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

function drawToken(message) {
  const have = !!token.get();
  $("#token-state").textContent = have ? "🔑 token set for this tab" : message || "";
  $("#token-state").style.color = have ? "" : "#b91c1c";
  $("#token-input").hidden = have;
  $("#token-save").hidden = have;
  $("#token-forget").hidden = !have;
  if (!have && message) $("#token-input").focus();
}

function hostName(h) {
  return fleet?.hosts[h]?.name ?? `host ${h}`;
}

function actionWhat(a) {
  const bits = [];
  for (const [k, v] of Object.entries(a.args || {})) {
    if (v === null || v === undefined) continue;
    if (k === "guest" && Number.isInteger(v)) bits.push(`guest ${fleet?.guests[v]?.id ?? v}`);
    else if (k === "host" && Number.isInteger(v)) bits.push(hostName(v));
    else if (/domain/.test(k) && Number.isInteger(v)) bits.push(`${k.replace("_", " ")} d${v}`);
    else bits.push(`${k.replace(/_/g, " ")} ${typeof v === "number" ? si(v) : esc(JSON.stringify(v)).slice(0, 60)}`);
  }
  const hosts = (a.hosts || []).map((h) => (Number.isInteger(h) ? hostName(h) : String(h)))
    .filter((h) => !bits.includes(h));
  return `${bits.join(" · ")}${hosts.length ? ` <span class="more">(${esc(hosts.join(" → "))})</span>` : ""}`;
}

function countsText(counts) {
  return Object.entries(counts).map(([st, n]) => `<span class="pstatus ${esc(st)}">${n} ${esc(st)}</span>`).join(" ");
}

const planRows = new Map(); // id -> {tr, detail, sig, open}
const polling = new Set();

function decisionCell(p) {
  if (p.status === "recommended") {
    return `<button type="button" class="act approve" data-act="approve" data-plan-id="${p.id}">Approve</button>` +
      `<button type="button" class="act reject" data-act="reject" data-plan-id="${p.id}">Reject</button>`;
  }
  if (p.status === "running") {
    return `<button type="button" class="act cancel" data-act="cancel" data-plan-id="${p.id}">Cancel</button>` +
      `<span class="decision-note">${polling.has(p.id) ? "applying…" : ""}</span>`;
  }
  const s = p.summary || {};
  if (p.status === "superseded" && s.superseded_by) return `<span class="decision-note">superseded by #${s.superseded_by}</span>`;
  return p.finished_at ? `<span class="decision-note" title="finished ${esc(new Date(p.finished_at * 1000).toISOString())} (wall clock)">closed</span>` : "";
}

function planSig(p) {
  return JSON.stringify([p.status, p.actions, p.summary && p.summary.superseded_by, polling.has(p.id)]);
}

function fillPlanRow(r, p) {
  const n = Object.values(p.actions).reduce((a, b) => a + b, 0);
  r.tr.className = `plan ${p.status}${r.open ? " open" : ""}`;
  r.tr.dataset.status = p.status;
  r.tr.innerHTML = `<td><b>#${p.id}</b></td><td title="t = ${Math.round(p.tick)} s">${esc(dateShort(p.tick))}</td>` +
    `<td><span class="pstatus ${esc(p.status)}">${esc(p.status.replace("_", " "))}</span></td><td>${esc(p.source || "")}</td>` +
    `<td class="acts">${n} action${n === 1 ? "" : "s"}: ${countsText(p.actions)}</td><td>${decisionCell(p)}</td>`;
  r.sig = planSig(p);
  r.plan = p;
}

function renderPlans(list) {
  const tbody = $("#plans tbody");
  const keep = new Set(list.map((p) => p.id));
  for (const [id, r] of planRows) {
    if (!keep.has(id) && !r.open && !polling.has(id)) { r.tr.remove(); r.detail.remove(); planRows.delete(id); }
  }
  let prev = null;
  for (const p of list) {
    let r = planRows.get(p.id);
    if (!r) {
      r = { tr: document.createElement("tr"), detail: document.createElement("tr"), open: false, sig: "" };
      r.tr.dataset.planId = p.id;
      r.detail.className = "detail";
      r.detail.hidden = true;
      r.detail.innerHTML = `<td colspan="6">loading…</td>`;
      planRows.set(p.id, r);
    }
    if (r.sig !== planSig(p)) {
      fillPlanRow(r, p);
      if (r.open) loadPlanDetail(p.id);
    }
    // keep the order (newest first) while touching as little of the DOM as possible
    const want = prev ? prev.detail.nextSibling : tbody.firstChild;
    if (want !== r.tr) { tbody.insertBefore(r.tr, want); }
    if (r.tr.nextSibling !== r.detail) tbody.insertBefore(r.detail, r.tr.nextSibling);
    prev = r;
  }
  if (!list.length && !planRows.size) tbody.innerHTML = `<tr><td colspan="6">no plans yet</td></tr>`;
  else for (const tr of $$("tr:not(.plan):not(.detail)", tbody)) tr.remove();
  const open = list.filter((p) => p.status === "recommended").length;
  const badge = $("#plans-badge");
  badge.textContent = open;
  badge.hidden = !open;
  badge.title = `${open} recommendation${open === 1 ? "" : "s"} awaiting a decision`;
}

async function loadPlans() {
  lastPlansAt = Date.now();
  const st = $("#plan-filter").value;
  const list = await getJSON(`/api/plans?limit=40${st ? `&status=${encodeURIComponent(st)}` : ""}`);
  if (!st) plans = list;
  else if (tab !== "plans") return;
  renderPlans(list);
  drawBanner();
}

async function loadPlanDetail(id) {
  const r = planRows.get(id);
  if (!r) return;
  if (!fleet) { try { fleet = await getJSON("/api/fleet"); } catch (e) { /* names fall back to numbers */ } }
  let p;
  try { p = await getJSON(`/api/plans/${id}`); } catch (e) { r.detail.innerHTML = `<td colspan="6">${esc(e.message)}</td>`; return; }
  const acts = p.action_list;
  const byKind = {};
  for (const a of acts) byKind[a.kind] = (byKind[a.kind] || 0) + 1;
  const s = p.summary || {};
  const head = [`<b>${acts.length} action${acts.length === 1 ? "" : "s"}</b>: ${Object.entries(byKind).map(([k, n]) => `${n} ${esc(k)}`).join(", ")}`];
  if (p.created_at) head.push(`recorded ${esc(new Date(p.created_at * 1000).toISOString().replace("T", " ").slice(0, 19))} UTC (wall clock)`);
  if (s.superseded_by) head.push(`superseded by plan #${s.superseded_by} at ${esc(dateShort(s.superseded_at))}`);
  if (p.limits) head.push(`limits: ${esc(Object.entries(p.limits).filter(([, v]) => v !== null).map(([k, v]) => `${k.replace("_", " ")} ${v}`).join(", "))}`);
  const rows = acts.slice(0, 300).map((a) => `<tr class="${esc(a.status)}"><td>${a.idx}</td><td><b>${esc(a.kind)}</b></td><td>${actionWhat(a)}</td>` +
    `<td><span class="pstatus ${esc(a.status)}">${esc(a.status)}</span></td><td class="why">${esc(a.reason)}` +
    `${a.error ? `<div class="err">${esc(a.error)}</div>` : ""}${a.deps.length ? ` <span class="more">after ${a.deps.map((d) => `#${d}`).join(", ")}</span>` : ""}</td></tr>`);
  r.detail.innerHTML = `<td colspan="6"><p class="note">${head.join(" · ")}</p><table class="action-table"><thead><tr><th>#</th><th>kind</th><th>what</th><th>status</th><th>reason</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>${acts.length > 300 ? `<p class="note">and ${acts.length - 300} more (GET /api/plans/${id}/actions)</p>` : ""}</td>`;
}

function togglePlan(id, open) {
  const r = planRows.get(id);
  if (!r) return;
  r.open = open === undefined ? !r.open : open;
  r.tr.classList.toggle("open", r.open);
  r.detail.hidden = !r.open;
  if (r.open) loadPlanDetail(id);
}

async function decide(id, act, button) {
  const t = token.get();
  if (!t) { drawToken(`Enter the API token to ${act} plan #${id}.`); notice(`Enter the API token first (${act} plan #${id}).`, "error"); return; }
  if (button) button.disabled = true;
  let r, body = null;
  try {
    r = await fetch(`/api/plans/${id}/${act}`, {
      method: "POST", cache: "no-store",
      headers: { "Authorization": `Bearer ${t}`, "Content-Type": "application/json" },
      body: JSON.stringify({ note: `${act} from the dashboard` }),
    });
    body = await r.json().catch(() => null);
  } catch (e) {
    notice(`plan #${id}: ${e.message}`, "error");
    if (button) button.disabled = false;
    return;
  }
  if (r.status === 401) {
    token.forget();
    drawToken("The server refused the token; enter it again.");
    notice(`The token was refused (401); plan #${id} is unchanged.`, "error");
  } else if (!r.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : `HTTP ${r.status}`;
    notice(`Could not ${act} plan #${id}: ${detail}`, "error");
  } else {
    const p = body;
    const row = planRows.get(id);
    if (act === "approve") {
      notice(`Plan #${id} approved: it is applied between two ticks; its status updates here.`);
      pollPlan(id);
    } else {
      notice(`Plan #${id} is ${p.status}.`);
    }
    if (row) { fillPlanRow(row, p); if (row.open) loadPlanDetail(id); }
  }
  if (button) button.disabled = false;
  loadPlans().catch(() => {});
}

async function pollPlan(id) {
  if (polling.has(id)) return;
  polling.add(id);
  try {
    for (let i = 0; i < 1200; i++) {
      let p;
      try { p = await getJSON(`/api/plans/${id}`); } catch (e) { await sleep(1000); continue; }
      const r = planRows.get(id);
      if (p.status !== "running") {
        polling.delete(id);
        if (r) { fillPlanRow(r, p); if (r.open) loadPlanDetail(id); }
        const failed = p.action_list.filter((a) => a.status === "failed" || a.status === "revert_failed").length;
        notice(`Plan #${id} ${p.status.replace("_", " ")}${failed ? ` (${failed} action${failed === 1 ? "" : "s"} failed)` : ""}.`, p.status === "succeeded" ? "" : "error");
        return;
      }
      if (r) {
        const counts = {};
        for (const a of p.action_list) counts[a.status] = (counts[a.status] || 0) + 1;
        fillPlanRow(r, { ...p, actions: counts });
      }
      await sleep(500);
    }
  } finally {
    polling.delete(id);
  }
}

function drawPlansHelp() {
  const s = status;
  if (!s) return;
  const tick = span(s.interval_s || 300);
  $("#plans-help").textContent = s.dry_run
    ? `Recommend-only mode: every tick (${tick}) the controller records a recommendation and nothing changes until you approve one. ` +
      "Approve runs the plan in the background between two ticks (its status goes running, then succeeded or partially failed); " +
      "a newer recommendation supersedes the open one, and one older than the max plan age can no longer be approved. Reject closes it unapplied."
    : "The controller applies its own plans every tick; Cancel stops a running plan (the running action finishes, the rest are cancelled).";
}

// ------------------------------------------------------------------ tabs
const TABS = ["fleet", "hosts", "plans", "timeline"];
function showTab(name) {
  if (!TABS.includes(name)) name = "fleet";
  tab = name;
  for (const s of $$("main > .tab")) s.hidden = s.dataset.tab !== name;
  for (const a of $$("#tabs a")) { a.classList.toggle("active", a.dataset.tab === name); a.setAttribute("aria-selected", a.dataset.tab === name); }
  requestAnimationFrame(resizeCharts);
  refresh();
}
window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));

// ------------------------------------------------------------------ refresh and live updates
let busy = false, again = false, lastPlansAt = 0;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const jobs = [];
    if (tab === "hosts") {
      const [f, fab] = await Promise.all([getJSON("/api/fleet"), getJSON("/api/fabric")]);
      fleet = f;
      drawStatus(f.status);
      drawHosts(f);
      drawFabric(fab, f);
      jobs.push(drawEntity());
      if (!history) jobs.push(getJSON("/api/history?limit=1").then((h) => { history = h; }));
    } else {
      drawStatus(await getJSON("/api/status"));
      if (!fleet) jobs.push(getJSON("/api/fleet").then((f) => { fleet = f; })); // host and guest names
    }
    if (tab === "fleet") {
      jobs.push(getJSON("/api/history?limit=288").then((h) => { history = h; drawFleetCharts(); }));
    }
    if (tab === "fleet" || tab === "timeline") {
      const n = tab === "timeline" ? 200 : 10; // the Fleet tab shows the latest ten
      jobs.push(getJSON(`/api/timeline?limit=${n}`).then((tl) => { timelineItems = tl; drawTimeline(tl); }));
    }
    if (tab === "plans" || Date.now() - lastPlansAt > 2000) jobs.push(loadPlans());
    if (tab === "plans") drawPlansHelp();
    await Promise.all(jobs);
  } catch (e) {
    $("#status").textContent = `error: ${e.message}`;
  } finally {
    busy = false;
    if (again) { again = false; setTimeout(refresh, 0); }
  }
}

function connect() {
  const es = new EventSource("/api/live");
  es.addEventListener("open", () => { $("#live").className = "on"; });
  es.addEventListener("tick", () => refresh());
  es.addEventListener("error", () => { $("#live").className = "off"; });
  return es;
}

document.addEventListener("click", (ev) => {
  const open = ev.target.closest("[data-open-plan]");
  if (open) {
    ev.preventDefault();
    const id = Number(open.dataset.openPlan);
    if (location.hash !== "#plans") location.hash = "#plans";
    loadPlans().then(() => togglePlan(id, true)).catch(() => {});
    return;
  }
  const act = ev.target.closest("button[data-act]");
  if (act) { ev.stopPropagation(); decide(Number(act.dataset.planId), act.dataset.act, act); return; }
  const row = ev.target.closest("#plans tr.plan");
  if (row) { togglePlan(Number(row.dataset.planId)); return; }
  const el = ev.target.closest("#tab-hosts [data-kind][data-id]");
  if (!el) return;
  ev.stopPropagation();
  selected = { kind: el.dataset.kind, id: el.dataset.id };
  if (fleet) drawHosts(fleet);
  for (const g of $$("#fabric .fab-host")) g.classList.toggle("sel", selected.kind === "host" && g.dataset.id === selected.id);
  drawEntity();
});
for (const b of $$(".range-btns button")) {
  b.addEventListener("click", (ev) => {
    ev.stopPropagation();
    chartSpan = Number(b.dataset.span);
    for (const x of $$(".range-btns button")) x.classList.toggle("on", x === b);
    drawEntity();
  });
}
$(".range-btns button").classList.add("on");
$("#moves-only").addEventListener("change", () => drawTimeline(timelineItems));
$("#plan-filter").addEventListener("change", () => { for (const [, r] of planRows) { r.tr.remove(); r.detail.remove(); } planRows.clear(); loadPlans(); });
$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("#token-input").value.trim();
  if (!v) { drawToken("Enter the token the service was started with."); return; }
  token.set(v);
  $("#token-input").value = "";
  drawToken();
  notice("Token kept for this browser tab (sessionStorage); it is sent as Authorization: Bearer with each decision.");
});
$("#token-forget").addEventListener("click", () => { token.forget(); drawToken(); });
$("#legend").innerHTML = `load <i style="background:linear-gradient(90deg, ${heat(0)}, ${heat(0.6)}, ${heat(1.2)})"></i> 0 → 120 % · the black tick on a bar is the p95 forecast for the next tick`;

drawToken();
showTab(location.hash.slice(1) || "fleet");
connect();
setInterval(() => { if ($("#live").className !== "on") refresh(); }, 3000); // fallback when the stream is down
