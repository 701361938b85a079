// presplit dashboard: plain JavaScript, no build step, no network beyond this server.
// Data: /api/fleet, /api/fabric, /api/timeline, /api/{hosts|domains|guests}/{id}/forecast; live: /api/live (SSE).
"use strict";

const $ = (s) => document.querySelector(s);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const pct = (x) => `${Math.round(x * 100)}%`;
const SVG = "http://www.w3.org/2000/svg";
let selected = { kind: "host", id: "0" };
let fleet = null;
let busy = false, again = false;

function simTime(t) {
  if (t === null || t === undefined) return "–";
  const d = Math.floor(t / 86400), h = Math.floor((t % 86400) / 3600), m = Math.floor((t % 3600) / 60);
  return `${d ? d + "d " : ""}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
}

// Load colour: green (idle) -> amber -> red (at or over capacity).
function heat(x) {
  const v = Math.max(0, Math.min(1.2, x || 0)) / 1.2;
  const hue = 130 - 130 * v;
  return `hsl(${hue}, 70%, ${52 - 10 * v}%)`;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

// ------------------------------------------------------------------ fleet
function drawFleet(f) {
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
    const win = h.window ? `<span class="badge ${h.window.state}" title="${esc(h.window.rule)}">patch ${h.window.state === "open" ? "now" : simTime(h.window.start)}</span>` : "";
    const sel = selected.kind === "host" && selected.id === String(h.id) ? " sel" : "";
    html.push(`<div class="host${h.on ? "" : " off"}${sel}" data-host="${h.id}" data-kind="host" data-id="${h.id}" title="${esc(h.name)}: load ${pct(h.utilisation)}, p95 forecast ${pct(h.forecast_utilisation.p95)}">`);
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
        `title="domain ${d.id} (${esc(d.state)}): ${Math.round(d.cpu_mips)} MIPS, ${Math.round(d.mem_mb)} MB; load ${pct(d.utilisation)}, p95 ${pct(d.forecast_utilisation.p95)}; services ${esc(d.services.join(", "))}">`);
      html.push(`<div class="dh">d${d.id} ${d.state !== "active" ? esc(d.state) : ""} ${pct(d.utilisation)}</div>`);
      html.push(`<div class="fbar"><i style="width:${Math.min(100, d.utilisation * 100)}%;background:${heat(d.utilisation)}"></i>` +
        `<b style="left:${Math.min(99, d.forecast_utilisation.p95 * 100)}%"></b></div><div class="guests">`);
      for (const g of byDomain.get(d.id) || []) {
        const gsel = selected.kind === "guest" && selected.id === g.id ? " sel" : "";
        const fc = g.mips ? g.forecast_mips.p95 / g.mips : 0;
        html.push(`<span class="guest ${esc(g.status)}${gsel}" data-guest="${esc(g.id)}" data-kind="guest" data-id="${esc(g.id)}" ` +
          `style="background:${heat(g.utilisation)};border-color:${heat(fc)}" ` +
          `title="${esc(g.id)} ${esc(g.status)}${g.dest_domain !== null ? " → d" + g.dest_domain : ""}: ${Math.round(g.demand_mips)} of ${Math.round(g.mips)} MIPS, p95 ${Math.round(g.forecast_mips.p95)}"></span>`);
      }
      html.push("</div></div>");
    }
    html.push("</div></div>");
  }
  if (pending.length) {
    html.push(`<div id="pending">pending: ${pending.map((g) => `<span class="guest pending-chip" data-guest="${esc(g.id)}" data-kind="guest" data-id="${esc(g.id)}" title="${esc(g.id)} waits for placement"></span>`).join(" ")}</div>`);
  }
  $("#fleet").innerHTML = html.join("");
  const s = f.status, c = s.counts || {};
  $("#clock").textContent = `t = ${simTime(s.now)}`;
  $("#status").textContent = `${s.backend} · ${s.profile}${s.dry_run ? " · recommend only" : ""} · ${s.running ? "running" : "stopped"} · tick ${s.ticks}`;
  $("#counts").textContent = `${c.hosts_on ?? "–"}/${c.hosts ?? "–"} hosts on · ${c.domains ?? "–"} domains · ${c.guests_running ?? 0} running, ${c.guests_migrating ?? 0} migrating, ${c.guests_pending ?? 0} pending`;
}

// ------------------------------------------------------------------ fabric
function drawFabric(fab, f) {
  const svg = $("#fabric");
  const W = 600, H = 250;
  const hosts = fab.nodes.filter((n) => n.kind === "host");
  const switches = fab.nodes.filter((n) => n.kind === "switch");
  const racks = [...new Set(hosts.map((h) => h.rack))];
  const pos = new Map();
  const util = new Map((f?.hosts || []).map((h) => [String(h.id), h]));
  racks.forEach((r, ri) => {
    const inRack = hosts.filter((h) => h.rack === r);
    const x0 = (W / racks.length) * ri, w = W / racks.length;
    inRack.forEach((h, i) => pos.set(h.id, [x0 + (w * (i + 0.5)) / inRack.length, 175]));
    pos.set(`tor:${r}`, [x0 + w / 2, 95]);
  });
  for (const s of switches) if (!pos.has(s.id)) pos.set(s.id, [W / 2, 25]);
  const parts = [];
  for (const l of fab.links) {
    const a = pos.get(l.a), b = pos.get(l.b);
    if (!a || !b) continue;
    const hot = l.migrations > 0;
    const stroke = hot ? "#f59e0b" : "#9ca3af", width = hot ? 3 + 2 * l.migrations : Math.max(0.6, Math.log10(l.gbit + 1));
    const title = `<title>${esc(l.a)} – ${esc(l.b)}: ${l.gbit} Gbit/s, ${l.latency_ms} ms${hot ? `, ${l.migrations} migration(s) in flight` : ""}</title>`;
    const cls = `link${hot ? " hot" : ""}`;
    if (a[1] === b[1]) { // host-host inside a rack: an arc below
      const mx = (a[0] + b[0]) / 2, dy = 18 + Math.abs(a[0] - b[0]) / 5;
      parts.push(`<path class="${cls}" d="M${a[0]},${a[1]} Q${mx},${a[1] + dy} ${b[0]},${b[1]}" fill="none" stroke="${stroke}" stroke-width="${width}" opacity="${hot ? 1 : 0.55}">${title}</path>`);
    } else {
      parts.push(`<line class="${cls}" x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}" stroke="${stroke}" stroke-width="${width}">${title}</line>`);
    }
  }
  for (const s of switches) {
    const [x, y] = pos.get(s.id);
    parts.push(`<rect x="${x - 28}" y="${y - 10}" width="56" height="20" rx="4" fill="#374151"><title>${esc(s.id)}</title></rect>` +
      `<text x="${x}" y="${y + 4}" fill="#fff" font-size="10" text-anchor="middle">${esc(s.id)}</text>`);
  }
  for (const h of hosts) {
    const [x, y] = pos.get(h.id);
    const u = util.get(h.id);
    const fill = u ? (u.on ? heat(u.utilisation) : "#d1d5db") : "#9ca3af";
    parts.push(`<g class="fab-host" data-kind="host" data-id="${esc(h.id)}"><circle cx="${x}" cy="${y}" r="11" fill="${fill}" stroke="#1f2937"><title>${esc(u ? u.name : h.id)}</title></circle>` +
      `<text x="${x}" y="${y + 26}" font-size="9" text-anchor="middle">${esc(u ? u.name : h.id)}</text></g>`);
  }
  svg.innerHTML = parts.join("");
}

// ------------------------------------------------------------------ forecast chart
async function drawChart() {
  const { kind, id } = selected;
  let s;
  try { s = await getJSON(`/api/${kind}s/${encodeURIComponent(id)}/forecast`); } catch (e) { return; }
  const label = kind === "host" ? (fleet?.hosts.find((h) => String(h.id) === id)?.name || `host ${id}`) : `${kind} ${id}`;
  $("#chart-title").textContent = label;
  const svg = $("#chart");
  const W = 600, H = 230, L = 46, R = 10, T = 10, B = 22;
  const pts = s.points;
  if (!pts.length) { svg.innerHTML = `<text x="300" y="115" text-anchor="middle" fill="#6b7280">no history yet</text>`; return; }
  const t0 = pts[0].t, t1 = s.next_t ?? pts[pts.length - 1].t;
  const ymax = Math.max(1, ...pts.map((p) => Math.max(p.load, p.capacity, p.forecast ? p.forecast.p95 : 0)), s.next ? s.next.p95 : 0) * 1.08;
  const X = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - R);
  const Y = (v) => H - B - (v / ymax) * (H - T - B);
  const out = [];
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    out.push(`<line x1="${L}" x2="${W - R}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eef0f3"/><text x="${L - 4}" y="${Y(v) + 3}" font-size="9" text-anchor="end" fill="#6b7280">${Math.round(v)}</text>`);
  }
  for (let k = 0; k <= 4; k++) {
    const t = t0 + ((t1 - t0) * k) / 4;
    out.push(`<text x="${X(t)}" y="${H - 6}" font-size="9" text-anchor="middle" fill="#6b7280">${simTime(t)}</text>`);
  }
  const fc = pts.filter((p) => p.forecast);
  const band = fc.map((p) => [p.t, p.forecast.p95]).concat(s.next ? [[s.next_t, s.next.p95]] : []);
  const low = fc.map((p) => [p.t, p.forecast.p05]).concat(s.next ? [[s.next_t, s.next.p05]] : []);
  if (band.length) {
    const poly = band.concat(low.reverse()).map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
    out.push(`<polygon class="band" points="${poly}" fill="rgba(245,158,11,.30)" stroke="none"/>`);
    const mid = fc.map((p) => [p.t, p.forecast.p50]).concat(s.next ? [[s.next_t, s.next.p50]] : []);
    out.push(`<polyline points="${mid.map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(" ")}" fill="none" stroke="#b45309" stroke-dasharray="4 3" stroke-width="1.2"/>`);
  }
  out.push(`<polyline points="${pts.map((p) => `${X(p.t).toFixed(1)},${Y(p.capacity).toFixed(1)}`).join(" ")}" fill="none" stroke="#dc2626" stroke-dasharray="6 4" stroke-width="1.2"/>`);
  out.push(`<polyline class="load" points="${pts.map((p) => `${X(p.t).toFixed(1)},${Y(p.load).toFixed(1)}`).join(" ")}" fill="none" stroke="#1d4ed8" stroke-width="1.8"/>`);
  if (s.next) {
    const x = X(s.next_t);
    out.push(`<line x1="${x}" x2="${x}" y1="${Y(s.next.p05)}" y2="${Y(s.next.p95)}" stroke="#b45309" stroke-width="3"><title>next tick: p05 ${Math.round(s.next.p05)}, p50 ${Math.round(s.next.p50)}, p95 ${Math.round(s.next.p95)} MIPS</title></line>`);
  }
  out.push(`<text x="${L + 4}" y="${T + 8}" font-size="9" fill="#6b7280">MIPS</text>`);
  svg.innerHTML = out.join("");
}

// ------------------------------------------------------------------ timeline
function drawTimeline(items) {
  const only = $("#moves-only").checked;
  const kinds = new Set(["PlaceGuest", "MoveGuest", "MigrateGuest"]);
  const rows = items.filter((e) => !only || kinds.has(e.kind)).map((e) => {
    let what = "";
    if (e.guest) what = `${esc(e.guest)}${e.from_domain !== null ? ` d${e.from_domain}` : ""} → d${e.to_domain ?? "?"}`;
    else if (e.to_domain !== null) what = `domain d${e.to_domain}`;
    else if (e.hosts.length) what = `host ${e.hosts.join(", ")}`;
    return `<li class="${esc(e.kind)} ${esc(e.status)}" data-kind="${esc(e.kind)}" data-plan="${e.plan_id}">` +
      `<span class="t">${simTime(e.t)}</span><span class="kind">${esc(e.kind)}</span>` +
      `<span><span class="what">${what}</span><span class="st ${esc(e.status)}">${esc(e.status)}</span>` +
      `<div class="why">${esc(e.reason)}</div></span></li>`;
  });
  $("#timeline").innerHTML = rows.join("") || "<li>no actions yet</li>";
}

// ------------------------------------------------------------------ refresh and live updates
let lastTimeline = [];
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const [f, fab, tl] = await Promise.all([getJSON("/api/fleet"), getJSON("/api/fabric"), getJSON("/api/timeline?limit=80")]);
    fleet = f;
    drawFleet(f);
    drawFabric(fab, f);
    lastTimeline = tl;
    drawTimeline(tl);
    await drawChart();
  } catch (e) {
    $("#status").textContent = `error: ${e.message}`;
  } finally {
    busy = false;
    if (again) { again = false; setTimeout(refresh, 0); }
  }
}

function connect() {
  const es = new EventSource("/api/live");
  es.addEventListener("open", () => $("#live").className = "on");
  es.addEventListener("tick", () => refresh());
  es.addEventListener("error", () => { $("#live").className = "off"; });
  return es;
}

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-kind][data-id]");
  if (!el) return;
  ev.stopPropagation();
  selected = { kind: el.dataset.kind, id: el.dataset.id };
  if (fleet) drawFleet(fleet);
  drawChart();
});
$("#moves-only").addEventListener("change", () => drawTimeline(lastTimeline));
$("#legend").innerHTML = `load <i style="background:linear-gradient(90deg, ${heat(0)}, ${heat(0.6)}, ${heat(1.2)})"></i> 0 → 120 % · the black tick on a bar is the p95 forecast`;

refresh();
connect();
setInterval(() => { if ($("#live").className !== "on") refresh(); }, 3000); // fallback when the stream is down
