// An operator's session in Debian's headless Chromium (playwright-core): fleet charts with dates, the plans list,
// the token asked once, a recommended plan approved by a click and seen running to its end; no external request.
// usage: node dashboard_operator.mjs URL TOKEN OUTDIR  -> prints one JSON line; screenshots in OUTDIR.
import { launchContext } from "./chromium.mjs";

const [url, token, outdir] = process.argv.slice(2);
const origin = new URL(url).origin;
const context = await launchContext();
const out = { errors: [], external_requests: [], attempts: [] };
// Every request goes through here: anything not for the server under test is recorded and refused.
await context.route("**/*", (route) => {
  const u = route.request().url();
  if (u.startsWith(origin) || u.startsWith("data:")) return route.continue();
  out.external_requests.push(u);
  return route.abort();
});
const YEAR = /\b(19|20)\d\d\b/;
try {
  const page = await context.newPage();
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/status of 409/.test(m.text())) out.errors.push(m.text()); });
  page.on("request", (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith("data:")) out.external_requests.push(r.url()); });
  await page.goto(url, { waitUntil: "domcontentloaded" });

  // Fleet: six charts drawn on canvases, time axes labelled with dates (a year), a few ticks of history
  await page.waitForFunction(() => {
    const roots = [...document.querySelectorAll("#fleet-charts .uplot")];
    return roots.length === 6 && roots.every((r) => /\b(19|20)\d\d\b/.test(r.dataset.xlabels || ""));
  }, null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll("#kpis .kpi").length >= 5, null, { timeout: 15000 });
  await page.waitForTimeout(3000); // a few more ticks on the charts
  out.fleet_canvases = await page.locator("#fleet-charts .plot canvas").count();
  out.fleet_charts = await page.locator("#fleet-charts figure").evaluateAll((fs) => fs.map((f) => ({
    chart: f.dataset.chart, caption: f.querySelector("figcaption").innerText,
    xlabels: f.querySelector(".uplot")?.dataset.xlabels || "" })));
  out.x_labels_with_year = out.fleet_charts.filter((c) => YEAR.test(c.xlabels)).length;
  out.clock = await page.locator("#clock").innerText();
  out.range = await page.locator("#range").innerText();
  out.banner = await page.locator("#banner").innerText();
  await page.screenshot({ path: `${outdir}/fleet.png`, fullPage: true });

  // Plans: the list, the token asked once
  await page.locator('#tabs a[data-tab="plans"]').click();
  await page.waitForSelector("#plans tr.plan", { timeout: 30000 });
  out.plans_listed = await page.locator("#plans tr.plan").count();
  out.token_asked = await page.locator("#token-input").isVisible();
  await page.locator("#token-input").fill(token);
  await page.locator("#token-save").click();
  out.token_state = await page.locator("#token-state").innerText();
  out.token_in_session = (await page.evaluate(() => sessionStorage.getItem("presplit-api-token"))) === token;

  // Approve the newest recommendation by clicking; a tick may supersede it first (the page says so): try again.
  let approved = null;
  const deadline = Date.now() + 60000;
  while (!approved && Date.now() < deadline) {
    const button = page.locator("#plans tr.plan.recommended button.approve").first();
    try { await button.waitFor({ timeout: 10000 }); } catch (e) { continue; }
    const id = await button.getAttribute("data-plan-id");
    await page.locator("#notice").evaluate((n) => { n.hidden = true; n.textContent = ""; });
    try { await button.click({ timeout: 3000 }); } catch (e) { out.attempts.push({ id, click: String(e).slice(0, 200) }); continue; }
    await page.waitForFunction(() => { const n = document.querySelector("#notice"); return !n.hidden && n.textContent; },
                               null, { timeout: 10000 });
    const said = await page.locator("#notice").innerText();
    out.attempts.push({ id, said });
    const m = said.match(/^Plan #(\d+) approved/);
    if (m) approved = m[1];
  }
  if (!approved) throw new Error("no recommended plan could be approved by a click within 60 s");
  out.approved = Number(approved);
  const row = page.locator(`#plans tr.plan[data-plan-id="${approved}"]`);
  out.status_after_click = await row.getAttribute("data-status");
  await page.waitForFunction((id) => {
    const tr = document.querySelector(`#plans tr.plan[data-plan-id="${id}"]`);
    return tr && ["succeeded", "partially_failed", "failed", "cancelled"].includes(tr.dataset.status);
  }, approved, { timeout: 60000 });
  out.final_status = await row.getAttribute("data-status");
  out.final_row = await row.innerText();
  out.final_notice = await page.locator("#notice").innerText();
  // its actions, each with its reason
  await row.locator("td").first().click();
  const detail = page.locator(`#plans tr.plan[data-plan-id="${approved}"] + tr.detail`);
  await detail.locator(".action-table tbody tr").first().waitFor({ timeout: 10000 });
  out.detail_actions = await detail.locator(".action-table tbody tr").count();
  out.detail_reasons = await detail.locator(".action-table td.why").evaluateAll((tds) => tds.slice(0, 5).map((t) => t.innerText));
  out.detail_statuses = await detail.locator(".action-table tbody tr .pstatus").evaluateAll((s) => [...new Set(s.map((x) => x.innerText))]);
  await page.screenshot({ path: `${outdir}/plans.png`, fullPage: true });

  // Hosts: compact grid, a host's history with its forecast band, the fabric with rack labels
  await page.locator('#tabs a[data-tab="hosts"]').click();
  await page.waitForSelector("#hostgrid .host", { timeout: 15000 });
  await page.locator("#hostgrid .host").first().click({ position: { x: 8, y: 8 } });
  await page.waitForSelector('#entity-chart[data-band="1"] canvas', { timeout: 15000 });
  out.host_chart_title = await page.locator("#chart-title").innerText();
  out.host_chart_note = await page.locator("#chart-note").innerText();
  out.host_chart_xlabels = await page.locator("#entity-chart .uplot").getAttribute("data-xlabels");
  out.rack_labels = await page.locator("#fabric text.rack").evaluateAll((ts) => ts.map((t) => t.textContent));
  out.fabric_hosts = await page.locator("#fabric .fab-host").count();
  await page.screenshot({ path: `${outdir}/hosts.png`, fullPage: true });

  // Timeline: one click away, not below the hosts
  await page.locator('#tabs a[data-tab="timeline"]').click();
  await page.waitForSelector("#timeline li[data-plan]", { timeout: 15000 });
  out.timeline_items = await page.locator("#timeline li[data-plan]").count();
  const box = await page.locator("#timeline").boundingBox();
  out.timeline_top = box ? box.y : null;
  out.timeline_first = await page.locator("#timeline li[data-plan]").first().innerText();
  await page.screenshot({ path: `${outdir}/timeline.png` });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
