// Proves that the widget in Chromium loses and repeats nothing through random network faults:
// visitor and agent exchange N messages each way through a proxy that cuts, stalls, delays and
// splits, and both end with the same ordered sequence, every message once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, visitorPage, waitForEvent, demoConfigWithLimits, ORG_ID, DEPLOYMENT, AGENT, ROOT } from "./harness.mjs";
import { startProxy, seededRandom } from "./proxy.mjs";

const N = Number(process.env.EM_FAULT_MESSAGES ?? 1000);
const SEED = Number(process.env.EM_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 32));

const GENEROUS = demoConfigWithLimits(
  "frames_per_second = 100000, messages_per_second = 100000, new_visitors_per_minute = 100000");

let server, browser, proxy, site, siteUrl;
before(async () => {
  console.log(`faults.test.mjs: fault seed ${SEED} (replay with EM_FAULT_SEED=${SEED}), N=${N}`);
  // A thousand messages as fast as the test types them: far above what a person writes, so
  // the deployment's rate limits are lifted (they are tested in outbox.test.mjs).
  server = await startServer({ config: GENEROUS });
  browser = await launchBrowser();
  proxy = await startProxy({ upstream: server.url, seed: SEED });
  // The customer site: our own page on its own loopback origin (a page fulfilled by
  // `page.route` would not count as loopback, and Chromium's local-network-access check would
  // then block the snippet's script).
  // `/p/PORT/faults.html` points the snippet at the proxy on PORT.
  site = http.createServer((req, res) => {
    const port = req.url.match(/^\/p\/(\d+)\/faults\.html$/)?.[1];
    res.writeHead(port ? 200 : 404, { "Content-Type": "text/html" });
    res.end(port ? snippetPage(`http://127.0.0.1:${port}`) : "");
  });
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  siteUrl = `http://127.0.0.1:${site.address().port}`;
});
after(async () => {
  await browser?.close();
  await proxy?.close();
  site?.closeAllConnections();
  await new Promise((ok) => (site ? site.close(ok) : ok()));
  await server?.stop();
});

/** The customer page: the standard snippet, with every messaging URL pointing at the proxy. */
function snippetPage(base) {
  const site = `${base}/ESWDemoDeployment1700000000000`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>faults</title></head><body><h1>Faults</h1>
<script>
  function initEmbeddedMessaging() {
    embeddedservice_bootstrap.settings.language = 'en_US';
    embeddedservice_bootstrap.init('${ORG_ID}', '${DEPLOYMENT}', '${site}', { scrt2URL: '${base}' });
  }
</script>
<script src="${site}/assets/js/bootstrap.min.js" onload="initEmbeddedMessaging()"></script>
</body></html>`;
}

/**
 * Runs in a page on the server's origin: an agent on a raw WebSocket with an outbox (8 in
 * flight), resends of everything unacknowledged after each reconnect, entries deduped by seq,
 * and a dead-connection check (no frame for 3 s while pinging every 500 ms).
 */
function installAgent({ wsUrl, username, credential, texts }) {
  const a = {
    conversationId: null, entries: new Map(), acked: new Map(), written: [], outbox: [], inFlight: new Map(),
    connections: 0, resends: 0, duplicates: 0, violations: [], stopped: false, ws: null, timers: new Set(),
  };
  window.__agent = a;
  for (const text of texts) {
    const entryId = crypto.randomUUID();
    a.written.push({ entryId, text });
    a.outbox.push({ entryId, text });
  }
  const later = (ms, f) => { const t = setTimeout(() => { a.timers.delete(t); f(); }, ms); a.timers.add(t); };
  const add = (e) => {
    if (a.conversationId && e.conversationId !== a.conversationId) return a.violations.push(`entry of another conversation ${e.conversationId}`);
    const had = a.entries.get(e.seq);
    if (had && had.identifier !== e.identifier) a.violations.push(`seq ${e.seq} was ${had.identifier}, now ${e.identifier}`);
    else if (had) a.duplicates += 1;
    else a.entries.set(e.seq, e);
  };
  const connect = () => {
    if (a.stopped) return;
    const ws = new WebSocket(wsUrl);
    a.ws = ws;
    let ready = false;
    let heard = Date.now();
    const frame = (f) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(f)); };
    const message = ({ entryId, text }) => frame({ type: "sendMessage", conversationId: a.conversationId, entryId, text });
    // `assigned` carries the newest page: fill any hole from just above it, a page at a time.
    let asked = false;
    const fill = () => {
      if (asked || !a.conversationId) return;
      let next = 1;
      while (a.entries.has(next)) next += 1;
      const above = [...a.entries.keys()].filter((seq) => seq > next).sort((x, y) => x - y)[0];
      if (above === undefined) return;
      asked = true;
      frame({ type: "history", conversationId: a.conversationId, beforeSeq: above });
    };
    const pump = () => {
      if (!ready || !a.conversationId) return;
      while (a.inFlight.size < 8 && a.outbox.length) {
        const m = a.outbox.shift();
        a.inFlight.set(m.entryId, m);
        message(m);
      }
    };
    const tick = setInterval(() => {
      if (Date.now() - heard > 3000) ws.close(); // a stalled or dead connection
      else frame({ type: "ping" });
    }, 500);
    ws.onopen = () => { a.connections += 1; frame({ type: "hello", protocolVersion: 1, username, credential }); };
    ws.onmessage = (ev) => {
      heard = Date.now();
      const f = JSON.parse(ev.data);
      if (f.type === "welcome") frame({ type: "setPresence", presence: "Online" });
      else if (f.type === "presence") {
        ready = true;
        for (const m of a.inFlight.values()) { a.resends += 1; message(m); }
        pump();
      } else if (f.type === "assigned") {
        if (a.conversationId && a.conversationId !== f.conversation.conversationId) a.violations.push(`second conversation ${f.conversation.conversationId}`);
        a.conversationId = f.conversation.conversationId;
        for (const e of f.history) add(e);
        fill();
        pump();
      } else if (f.type === "history") {
        asked = false;
        for (const e of f.entries) add(e);
        fill();
      } else if (f.type === "entry") { add(f.entry); fill(); }
      else if (f.type === "ack") {
        const before = a.acked.get(f.entryId);
        if (before !== undefined && before !== f.seq) a.violations.push(`${f.entryId} acked as ${before}, then ${f.seq}`);
        a.acked.set(f.entryId, f.seq);
        a.inFlight.delete(f.entryId);
        pump();
      } else if (f.type === "error") a.violations.push(`error frame ${ev.data}`);
    };
    ws.onclose = () => {
      clearInterval(tick);
      if (a.ws === ws) later(20 + Math.floor(Math.random() * 80), connect);
    };
  };
  a.stop = () => { a.stopped = true; for (const t of a.timers) clearTimeout(t); a.ws?.close(); };
  connect();
}

/** The agent's state, as plain data. */
const agentState = (page) => page.evaluate(() => {
  const a = window.__agent;
  const entries = [...a.entries.values()].sort((x, y) => x.seq - y.seq);
  return {
    conversationId: a.conversationId, entries, written: a.written, acked: Object.fromEntries(a.acked),
    pending: a.outbox.length + a.inFlight.size, connections: a.connections, resends: a.resends,
    duplicates: a.duplicates, violations: a.violations,
  };
});

/** A message from the visitor or the agent (not the bot's or the system's). */
const isMessage = (e) => e.entryPayload.entryType === "Message" && (e.sender.role === "EndUser" || e.sender.role === "Agent");
const textOf = (e) => e.entryPayload.abstractMessage.staticContent.text;

/** Every visitor/agent message row in the widget, oldest first, after loading all history. */
async function widgetRows(visitor) {
  const rows = visitor.locator('[data-testid="message"][data-role="EndUser"], [data-testid="message"][data-role="Agent"]');
  const transcript = visitor.getByTestId("transcript");
  let count = -1;
  for (let i = 0; i < 50; i++) { // scroll to the top until no older page appears
    const now = await visitor.locator('[data-testid="message"]').count();
    if (now === count) break;
    count = now;
    await transcript.evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event("scroll")); });
    await visitor.waitForTimeout(150);
  }
  return rows.evaluateAll((els) => els.map((el) => ({
    entryId: el.dataset.entryId, seq: Number(el.dataset.seq), role: el.dataset.role, status: el.dataset.status,
    text: el.querySelector('[data-testid="message-text"]').textContent,
  })));
}

/**
 * The visitor types `n` messages in the widget while the agent writes `n` replies, all through
 * `proxy` (in front of the server at `serverUrl`), faults on; then both sides must hold the
 * same ordered sequence, every message once. Returns a line for the log.
 */
async function exchange({ proxy, serverUrl, n }) {
  const started = Date.now();
  const visitorContext = await browser.newContext();
  const visitor = await visitorPage(visitorContext);
  await visitor.goto(`${siteUrl}/p/${proxy.port}/faults.html`);
  await waitForEvent(visitor, "onEmbeddedMessagingReady");
  await visitor.locator("#embeddedMessagingConversationButton").click();
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");

  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  // The agent socket admits pages of its own origin only: the page comes through the proxy too.
  await agent.goto(`http://127.0.0.1:${proxy.port}/healthz`);
  const texts = Array.from({ length: n }, (_, i) => `agent reply ${i}`);
  await agent.evaluate(installAgent, { wsUrl: `ws://127.0.0.1:${proxy.port}/agent/ws`, username: AGENT.username, credential: AGENT.credential, texts });

  // Assets are loaded and the conversation is open: from here on, faults throughout.
  proxy.setFaults(true);
  const input = visitor.getByTestId("input");
  for (let i = 0; i < n; i++) {
    await input.fill(`visitor message ${i}`);
    await input.press("Enter");
  }
  const typed = Date.now();

  // Both sides converge: the agent has all 2N messages acknowledged and received, and the
  // widget has nothing pending and shows the agent's last seq.
  let state;
  for (const until = Date.now() + 240_000; ;) {
    state = await agentState(agent);
    assert.deepEqual(state.violations, []);
    const done = state.pending === 0 && state.entries.filter(isMessage).length === 2 * n;
    const last = state.entries.at(-1)?.seq ?? 0;
    const widget = await visitor.locator('[data-testid="message"]').evaluateAll((rows) => ({
      pending: rows.filter((r) => r.dataset.status === "pending").length,
      maxSeq: Math.max(0, ...rows.map((r) => Number(r.dataset.seq ?? 0))),
    }));
    if (done && widget.pending === 0 && widget.maxSeq === last && last === state.entries.length) break;
    assert.ok(Date.now() < until, `no convergence in 240 s: agent pending ${state.pending}, agent messages ${state.entries.filter(isMessage).length}, widget ${JSON.stringify(widget)}, proxy ${JSON.stringify(proxy.stats)}`);
    await visitor.waitForTimeout(250);
  }
  proxy.setFaults(false);
  const converged = Date.now();
  await agent.evaluate(() => window.__agent.stop());

  // The agent's sequence: seqs 1..last without gaps, each of its replies once, as acknowledged.
  const seqs = state.entries.map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "no gaps");
  const expected = state.entries.filter(isMessage).map((e) => ({ entryId: e.identifier, seq: e.seq, role: e.sender.role, text: textOf(e) }));
  for (const { entryId, text } of state.written) {
    const copies = expected.filter((m) => m.entryId === entryId);
    assert.equal(copies.length, 1, `${text} stored ${copies.length} times`);
    assert.equal(state.acked[entryId], copies[0].seq, `${text}: ack and store agree`);
  }
  assert.deepEqual(expected.filter((m) => m.role === "Agent").map((m) => m.text), texts, "agent replies in the order written");
  assert.deepEqual(expected.filter((m) => m.role === "EndUser").map((m) => m.text), Array.from({ length: n }, (_, i) => `visitor message ${i}`), "visitor messages once each, in the order typed");

  // The widget shows exactly that sequence.
  await visitor.waitForTimeout(300); // a late duplicate would show up here
  const rows = await widgetRows(visitor);
  assert.deepEqual(rows.map(({ entryId, seq, role, text }) => ({ entryId, seq, role, text })), expected);
  assert.ok(rows.every((r) => r.role === "Agent" || r.status === "sent"), "every visitor message is sent");

  const line = `n=${n}: typed in ${((typed - started) / 1000).toFixed(1)} s, converged in ${((converged - started) / 1000).toFixed(1)} s; ` +
    `proxy ${JSON.stringify(proxy.stats)}; agent connections ${state.connections}, resends ${state.resends}, duplicate entries ${state.duplicates}`;
  assert.deepEqual(visitor.problems.filter((p) => !/WebSocket|ERR_CONNECTION|net::/.test(p)), [], "no console errors on the visitor page other than the cut connections");
  await visitorContext.close();
  await agentContext.close();
  return line;
}

test(`${N} messages each way between the widget and an agent through cuts, stalls and delays arrive once, in order`, { timeout: 600_000 }, async () => {
  console.log(`faults.test.mjs: ${await exchange({ proxy, serverUrl: server.url, n: N })}`);
});

/**
 * The server binary with a SIGKILL at hand (the harness's `stop` sends SIGTERM): same flags as
 * the harness, no site listener; resolves once it printed its address.
 */
async function killableServer(dir) {
  const bin = process.env.EM_SERVER_BIN || join(ROOT, "target/debug/em-server");
  const child = spawn(bin, [
    "--config", GENEROUS, "--db", join(dir, "e2e.sqlite"),
    "--widget-dir", join(ROOT, "pkg"), "--listen", "127.0.0.1:0",
  ], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, RUST_LOG: "error" } });
  const url = await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`server did not start in 20 s: ${out}`)), 20_000);
    child.once("exit", (code) => { clearTimeout(timer); fail(new Error(`server exited with ${code}: ${out}`)); });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^listening on (http:\/\/\S+)$/m);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
  });
  child.stdout.resume();
  return {
    url,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

test("kill -9 of the server in the middle of the widget's burst: every message stored once, in order", { timeout: 180_000 }, async () => {
  const M = 200;
  const rnd = seededRandom(SEED ^ 0x5eed);
  const killAfter = 30 + Math.floor(rnd() * 100); // acknowledged (sent) rows before the kill
  const dir = mkdtempSync(join(tmpdir(), "em-e2e-kill-"));
  let first = await killableServer(dir);
  let second;
  const front = await startProxy({ upstream: first.url, seed: SEED });
  const context = await browser.newContext();
  try {
    const visitor = await visitorPage(context);
    await visitor.goto(`${siteUrl}/p/${front.port}/faults.html`);
    await waitForEvent(visitor, "onEmbeddedMessagingReady");
    await visitor.locator("#embeddedMessagingConversationButton").click();
    await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");

    // Type the burst; kill the server once `killAfter` messages show as sent, restart it on the
    // same database (another port, so the proxy points there), and keep typing through it all.
    const sent = visitor.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]');
    let killedAt = null;
    const killer = (async () => {
      for (const until = Date.now() + 60_000; Date.now() < until;) {
        const n = await sent.count();
        if (n >= killAfter) {
          await first.kill();
          killedAt = n;
          second = await killableServer(dir);
          front.setUpstream(second.url);
          return;
        }
        await visitor.waitForTimeout(20);
      }
    })();
    const input = visitor.getByTestId("input");
    for (let i = 0; i < M; i++) {
      await input.fill(`burst ${i}`);
      await input.press("Enter");
    }
    await killer;
    assert.ok(second, `the server was killed (after ${killAfter} sent)`);
    // Only the newest lines are in the DOM: wait for the last message to show as sent.
    await visitor.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]', { hasText: `burst ${M - 1}` }).waitFor({ timeout: 60_000 });
    assert.equal(await visitor.locator('[data-testid="message"][data-status="pending"]').count(), 0);

    // An agent on the restarted server gets the whole history.
    const agentContext = await browser.newContext();
    const agent = await agentContext.newPage();
    await agent.goto(`${second.url}/healthz`);
    await agent.evaluate(installAgent, { wsUrl: `${second.url.replace("http", "ws")}/agent/ws`, username: AGENT.username, credential: AGENT.credential, texts: [] });
    await agent.waitForFunction((m) => [...window.__agent.entries.values()].filter((e) => e.entryPayload.entryType === "Message").length >= m, M, { timeout: 30_000 });
    const state = await agentState(agent);
    await agent.evaluate(() => window.__agent.stop());
    await agentContext.close();
    assert.deepEqual(state.violations, []);
    const seqs = state.entries.map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "no gaps");
    const stored = state.entries.filter(isMessage).map((e) => ({ entryId: e.identifier, seq: e.seq, role: e.sender.role, text: textOf(e) }));
    assert.deepEqual(stored.map((m) => m.text), Array.from({ length: M }, (_, i) => `burst ${i}`), "every message once, in the order typed");
    await visitor.waitForTimeout(300); // a late duplicate would show up here
    const rows = await widgetRows(visitor);
    assert.deepEqual(rows.map(({ entryId, seq, role, text }) => ({ entryId, seq, role, text })), stored, "the widget shows what was stored");
    console.log(`faults.test.mjs: kill -9 after ${killedAt} of ${M} messages sent; all ${M} stored once`);
  } finally {
    await context.close();
    await front.close();
    await first.kill();
    await second?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `exchange` on a server of its own (the shared one's agent is busy with the first test). */
async function exchangeMangled(frames, check) {
  const dir = mkdtempSync(join(tmpdir(), "em-e2e-mangle-"));
  const own = await killableServer(dir);
  const mangler = await startProxy({ upstream: own.url, seed: SEED ^ 0xf4a3e5, frames });
  try {
    const line = await exchange({ proxy: mangler, serverUrl: own.url, n: Math.min(N, 200) });
    check(mangler.stats);
    return line;
  } finally {
    await mangler.close();
    await own.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("entries that arrive twice (besides cuts, stalls and delays) are shown once", { timeout: 300_000 }, async () => {
  const line = await exchangeMangled({ duplicate: 0.05, swap: 0 }, (stats) => assert.ok(stats.duplicates > 0, JSON.stringify(stats)));
  console.log(`faults.test.mjs: entries duplicated: ${line}`);
});

test("entries that arrive out of order (besides cuts, stalls and delays) are shown once, in order", { timeout: 300_000 }, async () => {
  const line = await exchangeMangled({ duplicate: 0.05, swap: 0.3 }, (stats) => assert.ok(stats.swaps > 0, JSON.stringify(stats)));
  console.log(`faults.test.mjs: entries duplicated and swapped: ${line}`);
});

test("a connection that goes silent without closing is noticed within 45 s and the message typed into it arrives", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "em-e2e-silent-"));
  const own = await killableServer(dir);
  const front = await startProxy({ upstream: own.url, seed: SEED }); // no random faults
  const context = await browser.newContext();
  try {
    const visitor = await visitorPage(context);
    await visitor.goto(`${siteUrl}/p/${front.port}/faults.html`);
    await waitForEvent(visitor, "onEmbeddedMessagingReady");
    await visitor.locator("#embeddedMessagingConversationButton").click();
    await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
    const input = visitor.getByTestId("input");
    await input.fill("before the silence");
    await input.press("Enter");
    const sent = (text) => visitor.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]', { hasText: text });
    await sent("before the silence").waitFor();

    // The network drops the widget's socket without a FIN or RST (a NAT entry expired).
    front.blackholeOpen();
    const silentAt = Date.now();
    await input.fill("typed into the silence");
    await input.press("Enter");
    await sent("typed into the silence").waitFor({ timeout: 60_000 });
    const noticed = (Date.now() - silentAt) / 1000;
    console.log(`faults.test.mjs: a silent socket was replaced and the message sent after ${noticed.toFixed(1)} s`);
    assert.ok(noticed <= 47, `the dead socket was noticed within 45 s (+ reconnect), not ${noticed.toFixed(1)} s`);

    // Stored once, in order, as an agent on the server sees it.
    const agentContext = await browser.newContext();
    const agent = await agentContext.newPage();
    await agent.goto(`${own.url}/healthz`);
    await agent.evaluate(installAgent, { wsUrl: `${own.url.replace("http", "ws")}/agent/ws`, username: AGENT.username, credential: AGENT.credential, texts: [] });
    await agent.waitForFunction(() => [...window.__agent.entries.values()].some((e) => e.entryPayload.abstractMessage?.staticContent?.text === "typed into the silence"), null, { timeout: 20_000 });
    const state = await agentState(agent);
    await agent.evaluate(() => window.__agent.stop());
    await agentContext.close();
    assert.deepEqual(state.entries.filter(isMessage).map(textOf), ["before the silence", "typed into the silence"]);
  } finally {
    await context.close();
    await front.close();
    await own.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
