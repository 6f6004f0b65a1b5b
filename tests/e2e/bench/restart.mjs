// `cargo xtask bench` (restart part): how long after the server is back (restarted on the same
// SQLite file and port) the widget has resumed, measured as "a message typed while the server
// was down is acknowledged". Median of several restarts; asserts nothing.
import { startServer, launchBrowser, visitorPage, waitForEvent } from "../harness.mjs";

const RESTARTS = Number(process.env.BENCH_RESTARTS || 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

let server = await startServer();
const { dir } = server;
const listen = new URL(server.url).host;
const siteListen = new URL(server.siteUrl).host;
const browser = await launchBrowser();
try {
  const page = await visitorPage(await browser.newContext());
  await page.goto(`${server.siteUrl}/index.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await waitForEvent(page, "onEmbeddedMessagingConversationOpened");
  const times = [];
  for (let i = 1; i <= RESTARTS; i++) {
    await server.stop({ keepDb: true });
    // Let the widget notice and go into its reconnect backoff, as after a real outage.
    await page.waitForTimeout(1500);
    const text = `typed while the server was down #${i}`;
    await page.getByTestId("input").fill(text);
    await page.getByTestId("input").press("Enter");
    server = await startServer({ dbDir: dir, listen, siteListen });
    const back = Date.now();
    await page.locator('[data-testid="message"][data-status="sent"]', { hasText: text }).waitFor({ timeout: 60_000 });
    times.push(Date.now() - back);
  }
  console.log(`server restart → widget resumed (pending message acknowledged), ${RESTARTS} restarts after 1.5 s outages:`);
  console.log(`  median ${median(times)} ms, max ${Math.max(...times)} ms (includes the widget's jittered reconnect backoff)`);
} finally {
  await browser.close();
  await server.stop();
}
