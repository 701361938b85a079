// Drive the dashboard in Debian's headless Chromium with playwright-core (no browser download).
// usage: node dashboard.mjs URL SCREENSHOT.png  -> prints one JSON line with what the page showed.
import { launchContext } from "./chromium.mjs";

const [url, shot] = process.argv.slice(2);
const context = await launchContext();
const out = { errors: [] };
try {
  const page = await context.newPage();
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(new URL(url).origin)) external.push(r.url()); });
  await page.goto(url, { waitUntil: "domcontentloaded" });
  // the Fleet tab (the default): its charts and the latest actions
  await page.waitForSelector("#fleet-charts .plot canvas", { timeout: 30000 });
  await page.waitForSelector("#timeline li", { state: "attached", timeout: 30000 });
  out.initial_migrations = await page.locator("#timeline li.MigrateGuest").count();
  // the Hosts tab: hosts, domains, guests, the fabric
  await page.locator('#tabs a[data-tab="hosts"]').click();
  await page.waitForSelector("#hostgrid .host .domain .guest", { timeout: 30000 });
  out.hosts = await page.locator("#hostgrid .host").count();
  out.domains = await page.locator("#hostgrid .domain").count();
  out.guests = await page.locator("#hostgrid .guest").count();
  out.fabric_hosts = await page.locator("#fabric .fab-host").count();
  out.fabric_links = await page.locator("#fabric .link").count();
  // the Timeline tab: a live migration appears, with its reason
  await page.locator('#tabs a[data-tab="timeline"]').click();
  await page.waitForSelector("#timeline li.MigrateGuest", { timeout: 60000 });
  out.migration = await page.locator("#timeline li.MigrateGuest").first().innerText();
  out.live = await page.locator("#live").getAttribute("class");
  // a domain's chart: back to Hosts, click the first domain's header
  await page.locator('#tabs a[data-tab="hosts"]').click();
  await page.locator("#hostgrid .domain .dh").first().click();
  await page.waitForFunction(() => document.querySelector("#chart-title").textContent.startsWith("domain"));
  await page.waitForSelector('#entity-chart[data-band="1"] canvas', { timeout: 10000 });
  out.chart_title = await page.locator("#chart-title").innerText();
  out.chart_band = await page.locator('#entity-chart[data-band="1"]').count();
  out.clock = await page.locator("#clock").innerText();
  await page.screenshot({ path: shot, fullPage: true });
  out.external_requests = external;
} catch (e) {
  out.errors.push(String(e));
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
