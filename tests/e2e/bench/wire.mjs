// `cargo xtask bench` (bytes part): what the server really sends Chromium, as Chromium counts
// it (CDP's encoded lengths), for a page until its launcher
// is visible, then for opening a chat (HTTP bodies + WebSocket frames), then for a repeat visit.
// Prints figures against the 60,000 B budget; asserts nothing.
import { startServer, launchBrowser, visitorPage, waitForEvent } from "../harness.mjs";

const BUDGET = 60_000;
const STRETCH = 50_000;
const SHAPES = ["streaming", "inline"];

/**
 * Records every finished request and WebSocket frame of `page` into `log`, from Chromium's own
 * counts (CDP): `loadingFinished.encodedDataLength` is what came over the wire for a request
 * (headers + body as sent, 0 when served from the cache), the raw header text its header part.
 */
async function record(page, log) {
  const cdp = await page.context().newCDPSession(page);
  const requests = new Map();
  const get = (id) => requests.get(id) ?? requests.set(id, { url: "", ws: false, body: 0, headers: 0, status: 0, encoding: "" }).get(id);
  cdp.on("Network.responseReceived", ({ requestId, response }) => {
    const r = get(requestId);
    r.url = response.url;
    r.status = response.status;
    const enc = Object.entries(response.headers).find(([k]) => k.toLowerCase() === "content-encoding");
    r.encoding = enc ? enc[1] : "";
  });
  cdp.on("Network.responseReceivedExtraInfo", ({ requestId, headersText, statusCode }) => {
    const r = get(requestId);
    r.headers = headersText ? Buffer.byteLength(headersText) : 0;
    r.wireStatus = statusCode; // 304 when a cached copy was revalidated
  });
  cdp.on("Network.loadingFinished", ({ requestId, encodedDataLength }) => {
    const r = get(requestId);
    requests.delete(requestId);
    if (!r.url) return;
    r.body = Math.max(0, encodedDataLength - r.headers);
    r.headers = Math.min(r.headers, encodedDataLength);
    if (r.wireStatus) r.status = r.wireStatus;
    else if (encodedDataLength === 0) r.status = "cache";
    log.push(r);
  });
  const sockets = new Map();
  cdp.on("Network.webSocketCreated", ({ requestId, url }) => sockets.set(requestId, url));
  const frame = (dir) => ({ requestId, response }) =>
    log.push({ url: sockets.get(requestId) ?? "ws://unknown", ws: dir, body: Buffer.byteLength(response.payloadData), headers: 0, status: 101, encoding: "" });
  cdp.on("Network.webSocketFrameReceived", frame("in"));
  cdp.on("Network.webSocketFrameSent", frame("out"));
  await cdp.send("Network.enable");
  return cdp;
}

/** Sums a phase: the widget's bytes (from the messaging server), and the host page's. */
function sum(entries, serverOrigin) {
  const widget = entries.filter((e) => new URL(e.url).host === new URL(serverOrigin).host);
  const http = widget.filter((e) => !e.ws);
  return {
    body: http.reduce((n, e) => n + e.body, 0),
    headers: http.reduce((n, e) => n + e.headers, 0),
    wsIn: widget.filter((e) => e.ws === "in").reduce((n, e) => n + e.body, 0),
    wsOut: widget.filter((e) => e.ws === "out").reduce((n, e) => n + e.body, 0),
    page: entries.filter((e) => !widget.includes(e)).reduce((n, e) => n + e.body + e.headers, 0),
    rows: http,
  };
}

const settle = () => new Promise((ok) => setTimeout(ok, 300));

async function visit(page, url, server, { openChat }) {
  const log = [];
  const cdp = await record(page, log);
  await page.goto(url, { waitUntil: "load" });
  await waitForEvent(page, "onEmbeddedMessagingReady", 1, 20_000);
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });
  await settle(); // late loadingFinished events
  const launcher = sum(log.splice(0), server.url);
  if (!openChat) {
    await cdp.detach();
    return { launcher };
  }
  await page.locator("#embeddedMessagingConversationButton").click();
  await waitForEvent(page, "onEmbeddedMessagingConversationOpened", 1, 20_000);
  await settle();
  const chat = sum(log.splice(0), server.url);
  await cdp.detach();
  return { launcher, chat };
}

const kb = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",").padStart(8);

const server = await startServer();
const browser = await launchBrowser();
try {
  console.log(`bytes on the wire to Chromium (response bodies as sent; budget ≤ ${kb(BUDGET).trim()} B to a visible launcher, stretch ${kb(STRETCH).trim()} B)`);
  for (const shape of SHAPES) {
    const context = await browser.newContext();
    const page = await visitorPage(context);
    const url = `${server.siteUrl}/bench/${shape}.html`;
    const first = await visit(page, url, server, { openChat: true });
    if (shape === SHAPES[0]) {
      for (const r of first.launcher.rows) {
        console.log(`    ${new URL(r.url).pathname.replace(/^.*\/assets\/js\//, "").slice(0, 60).padEnd(60)} ${String(r.status).padStart(3)} ${(r.encoding || "identity").padEnd(8)} ${kb(r.body)} B`);
      }
    }
    // A repeat visit with the HTTP cache kept but no conversation to resume.
    await page.goto(`${server.siteUrl}/bench/bare.html`);
    await page.evaluate(() => { localStorage.clear(); sessionStorage.clear(); });
    const repeat = await visit(page, url, server, { openChat: false });
    await context.close();
    const line = (label, p, withWs) => {
      const ws = withWs ? `  + WebSocket ${kb(p.wsIn)} in / ${kb(p.wsOut)} out` : "";
      return `  ${shape.padEnd(10)} ${label.padEnd(24)} ${kb(p.body)} B (+ ${kb(p.headers)} B headers)${ws}`;
    };
    const total = (v) => v.launcher.body + v.chat.body + v.chat.wsIn + v.launcher.wsIn;
    console.log(line("launcher visible", first.launcher, true) + `   ${first.launcher.body <= BUDGET ? "within" : "OVER"} budget`);
    console.log(line("+ open a chat", first.chat, true));
    console.log(`  ${shape.padEnd(10)} ${"launcher + chat, in".padEnd(24)} ${kb(total(first))} B   ${total(first) <= BUDGET ? "within" : "OVER"} budget`);
    console.log(line("repeat visit: launcher", repeat.launcher, true) + `   (${repeat.launcher.rows.map((r) => `${r.status}`).join(" ")})`);
    console.log(`  ${shape.padEnd(10)} ${"host page (not ours)".padEnd(24)} ${kb(first.launcher.page)} B`);
  }
} finally {
  await browser.close();
  await server.stop();
}
