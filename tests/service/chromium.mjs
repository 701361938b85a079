// Debian's headless Chromium through playwright-core (no browser download), shared by the dashboard drivers.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

// A browser context: a persistent one on PRESPLIT_CHROME_DIR (a fresh profile directory per run; playwright-core
// passes --user-data-dir itself), else a plain one.
export async function launchContext() {
  const dataDir = process.env.PRESPLIT_CHROME_DIR;
  const options = {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1500, height: 1000 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  };
  return dataDir ? await chromium.launchPersistentContext(dataDir, options)
                 : await (await chromium.launch(options)).newContext({ viewport: options.viewport });
}
