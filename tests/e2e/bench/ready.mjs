// `cargo xtask bench` (browser part): time to Ready and to a visible launcher, per loader shape,
// at 0 ms and 150 ms round-trip time, in fresh headless Chromium contexts against the real
// server. Prints medians; asserts nothing (figures to compare with DESIGN.md's budgets).
import { loadavg, cpus } from "node:os";
import { startServer, launchBrowser } from "../harness.mjs";

const RUNS = Number(process.env.BENCH_RUNS || 15);
const SHAPES = ["streaming", "inline"];
const RTTS = [0, 150];

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x) => (x === undefined || Number.isNaN(x) ? "   -  " : x.toFixed(1).padStart(6));

// Records, from before any page script: Ready time, the frame after the launcher appears,
// first contentful paint, long tasks and layout shifts.
function probe() {
  window.__bench = { longTasks: 0, shift: 0 };
  addEventListener("onEmbeddedMessagingReady", () => { window.__bench.ready = performance.now(); });
  new PerformanceObserver((l) => { window.__bench.longTasks += l.getEntries().length; }).observe({ type: "longtask", buffered: true });
  new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__bench.shift += e.value; }).observe({ type: "layout-shift", buffered: true });
  new MutationObserver((_, obs) => {
    if (document.getElementById("embeddedMessagingConversationButton")) {
      obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => { window.__bench.launcher = performance.now(); }));
    }
  }).observe(document, { childList: true, subtree: true });
}

async function measure(browser, url, rtt, widget) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (rtt) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: rtt, downloadThroughput: -1, uploadThroughput: -1 });
  }
  await page.addInitScript(probe);
  await page.goto(url, { waitUntil: "load" });
  if (widget) await page.waitForFunction(() => window.__bench.ready !== undefined && window.__bench.launcher !== undefined, null, { timeout: 20_000 });
  else await page.waitForTimeout(50);
  const r = await page.evaluate(() => {
    const fcp = performance.getEntriesByName("first-contentful-paint")[0]?.startTime;
    const script = performance.getEntriesByType("resource").find((e) => /\/bootstrap\.(min|inline)\.js$/.test(e.name));
    return { ...window.__bench, fcp, scriptStart: script?.startTime };
  });
  await context.close();
  return r;
}

const server = await startServer();
const browser = await launchBrowser();
try {
  console.log(`time to Ready and to a visible launcher: median of ${RUNS} fresh page loads (ms)`);
  // Timings on a shared machine mean little without its load: print it with the figures.
  console.log(`  machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log("  shape       rtt   nav→Ready  script→Ready  nav→launcher  launcher−bare FCP  long tasks  layout shift");
  for (const rtt of RTTS) {
    const bare = [];
    for (let i = 0; i < RUNS; i++) bare.push((await measure(browser, `${server.siteUrl}/bench/bare.html`, rtt, false)).fcp);
    const bareFcp = median(bare);
    console.log(`  (no widget) ${String(rtt).padStart(3)}  FCP ${fmt(bareFcp)}`);
    for (const shape of SHAPES) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await measure(browser, `${server.siteUrl}/bench/${shape}.html`, rtt, true));
      const ready = median(runs.map((r) => r.ready));
      const fromScript = median(runs.map((r) => r.ready - r.scriptStart));
      const launcher = median(runs.map((r) => r.launcher));
      const longTasks = runs.reduce((n, r) => n + r.longTasks, 0);
      const shift = Math.max(...runs.map((r) => r.shift));
      console.log(`  ${shape.padEnd(10)} ${String(rtt).padStart(4)}  ${fmt(ready)}     ${fmt(fromScript)}       ${fmt(launcher)}         ${fmt(launcher - bareFcp)}        ${String(longTasks).padStart(4)}        ${shift.toFixed(3)}`);
    }
  }
  console.log("budgets: script→Ready ≤ 50 ms median; launcher ≤ 50 ms after the bare page's FCP; no long tasks; layout shift 0");
} finally {
  await browser.close();
  await server.stop();
}
