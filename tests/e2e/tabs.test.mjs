// One connection per browser: the tabs of a site share one visitor WebSocket, held by the tab
// with the Web Lock; when that tab closes another takes over, nothing is lost or doubled; only
// the leader blinks the title. Plus the leader's pure hello decision (src/link.js), natively.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import vm from "node:vm";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole, demoConfigWithLimits, ROOT } from "./harness.mjs";

let server, browser;
// Bursts of 25 messages a second per tab, through one shared socket: the hand-over is under
// test here, not the deployment's rate limits (outbox.test.mjs has those), so they are lifted.
const LIFTED = demoConfigWithLimits("messages_per_second = 1000, frames_per_second = 1000");
before(async () => { server = await startServer({ config: LIFTED }); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

const line = '[data-testid="message"]';
const mine = `${line}[data-role="EndUser"]`;

/** Visitor pages of one browser context (shared storage, locks, channels) that log their sockets. */
async function tabs(context, n, sockets) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await visitorPage(context);
    page.name = "abc"[i];
    page.on("websocket", (ws) => {
      if (ws.url().includes("/embeddedservice/v1/ws")) sockets.push({ tab: page.name, at: Date.now() });
    });
    await page.goto(`${server.siteUrl}/index.html`);
    await waitForEvent(page, "onEmbeddedMessagingReady");
    pages.push(page);
  }
  return pages;
}

async function openChat(page) {
  const dialog = page.locator('[role="dialog"]');
  if (!(await dialog.isVisible())) await page.locator("#embeddedMessagingConversationButton").click();
  await dialog.waitFor({ state: "visible" });
}

async function say(page, text) {
  await page.getByTestId("input").fill(text);
  await page.getByTestId("input").press("Enter");
}

/** The transcript as "Role: text" lines, in DOM order, with their seqs. */
function transcript(page) {
  return page.locator(line).evaluateAll((els) => els.map((e) => ({
    line: `${e.dataset.role}: ${e.querySelector('[data-testid="message-text"]')?.textContent}`,
    seq: Number(e.dataset.seq),
    status: e.dataset.status,
  })));
}

/** The agent Ada, online before the visitor writes (so the conversation is routed to her at once). */
async function agentOnline() {
  const agentContext = await browser.newContext();
  const agent = await agentConsole(agentContext, server.url);
  agent.open = (conversationId) => agent.locator(`[data-testid="console-conversation"][data-conversation-id="${conversationId}"]`).click();
  agent.say = async (text) => {
    await agent.getByTestId("console-input").fill(text);
    await agent.getByTestId("console-send").click();
  };
  agent.close = () => agentContext.close();
  return agent;
}

test("the leader's hello decision: send first, answer from the welcome, wait, or renew", () => {
  const sandbox = {};
  vm.runInNewContext(readFileSync(join(ROOT, "src/link.js"), "utf8"), sandbox);
  const route = sandbox.emHelloRoute;
  const none = { hello: null, fresh: false, welcome: null };
  const asked = { hello: '{"type":"hello","credential":"W"}', fresh: false, welcome: null };
  const answered = { ...asked, welcome: '{"type":"welcome"}' };
  const fresh = { hello: '{"type":"hello"}', fresh: true, welcome: '{"type":"welcome"}' };
  assert.equal(route(none, undefined, false), "send", "no socket yet: this hello opens one");
  assert.equal(route(none, "W", true), "send", "asking again with no hello out is just the first hello");
  assert.equal(route(asked, "W", false), "wait", "the welcome is on its way");
  assert.equal(route(answered, "W", false), "answer");
  assert.equal(route(answered, "other", false), "answer", "one visitor per browser: the socket's identity wins");
  assert.equal(route(answered, undefined, false), "renew", "a new visitor (clearSession) gets a new socket");
  assert.equal(route(fresh, undefined, false), "answer", "two new tabs at once share the new identity");
  assert.equal(route(fresh, "W", false), "answer");
  assert.equal(route(answered, "W", true), "renew", "a tab whose socket went silent asks for a new one");
});

test("two tabs: one WebSocket for the browser, every message live in both", async () => {
  const agent = await agentOnline();
  const context = await browser.newContext();
  const sockets = [];
  const [a, b] = await tabs(context, 2, sockets);
  // Tab A holds the lock but never chats: B's chat still goes through A's socket.
  await openChat(b);
  const [started] = await waitForEvent(b, "onEmbeddedMessagingConversationStarted");
  await waitForEvent(b, "onEmbeddedMessagingConversationOpened");
  await say(b, "from B");
  await b.locator(`${mine}[data-status="sent"]`, { hasText: "from B" }).waitFor();
  await openChat(a);
  await a.locator(mine, { hasText: "from B" }).waitFor();
  await say(a, "from A");
  await b.locator(mine, { hasText: "from A" }).waitFor();

  await agent.open(started.detail.conversationId);
  await agent.say("Hello both");
  for (const tab of [a, b]) await tab.locator(`${line}[data-role="Agent"]`, { hasText: "Hello both" }).waitFor();
  await a.waitForTimeout(300); // a late duplicate or a second socket would show up here
  const [ta, tb] = [await transcript(a), await transcript(b)];
  assert.deepEqual(ta.map((l) => l.line), ["EndUser: from B", "EndUser: from A", "Agent: Hello both"]);
  assert.deepEqual(tb, ta, "the same thread, same seqs, in both tabs");
  assert.deepEqual(sockets.map((s) => s.tab), ["a"], "exactly one visitor socket, opened by the lock holder");
  assert.equal(await agent.locator('[data-testid="console-message"][data-role="EndUser"]').count(), 2, "each visitor message reached the agent once");

  // removeAllComponents() in the leader's tab releases the lock: B takes over with its own socket.
  await a.evaluate(() => embeddedservice_bootstrap.utilAPI.removeAllComponents());
  await agent.say("Still there?");
  await b.locator(`${line}[data-role="Agent"]`, { hasText: "Still there?" }).waitFor();
  assert.deepEqual(sockets.map((s) => s.tab), ["a", "b"]);
  assert.equal(await a.locator("#embedded-messaging").count(), 0, "nothing of the widget is left in A");
  for (const tab of [a, b]) assert.deepEqual(tab.problems, []);
  await agent.close();
  await context.close();
});

test("three tabs: the leader closes, another takes over; nothing typed or received meanwhile is lost or doubled", async () => {
  const agent = await agentOnline();
  const context = await browser.newContext();
  const sockets = [];
  const [a, b, c] = await tabs(context, 3, sockets);
  for (const tab of [a, b, c]) await openChat(tab);
  const [started] = await waitForEvent(a, "onEmbeddedMessagingConversationStarted");
  await say(a, "before");
  for (const tab of [b, c]) await tab.locator(`${mine}[data-status="sent"]`, { hasText: "before" }).waitFor();
  assert.deepEqual(sockets.map((s) => s.tab), ["a"]);
  await agent.open(started.detail.conversationId);

  // Bursts from both remaining tabs and from the agent, with the leader's tab closed in the middle.
  const burst = (tab, n) => tab.evaluate(async ([name, n]) => {
    for (let i = 1; i <= n; i++) {
      await embeddedservice_bootstrap.utilAPI.sendTextMessage(`${name}${i}`);
      await new Promise((ok) => setTimeout(ok, 40));
    }
  }, [tab.name, n]);
  const agentBurst = (async () => { for (let i = 1; i <= 6; i++) await agent.say(`agent${i}`); })();
  const bursts = [burst(b, 8), burst(c, 8)];
  await b.waitForTimeout(150);
  const closedAt = Date.now();
  await a.close();
  await Promise.all([...bursts, agentBurst]);
  await b.waitForFunction(() => true); // settle
  // A wait, not a timing claim: the machines are shared, so the takeover time is printed
  // (typically ~45 ms against the 2 s) and the test asserts only what happened.
  for (let i = 0; i < 750 && sockets.length < 2; i++) await b.waitForTimeout(20);
  assert.equal(sockets.length, 2, "the new leader opened one socket");
  assert.notEqual(sockets[1].tab, "a");
  const takeover = sockets[1].at - closedAt;
  console.log(`takeover: the next socket opened ${takeover} ms after the leader's tab closed`);
  assert.ok(takeover >= 0, "the new socket opened only once the leader's tab had closed");

  const expected = ["before", ...[1, 2, 3, 4, 5, 6, 7, 8].flatMap((i) => [`b${i}`, `c${i}`]), ...[1, 2, 3, 4, 5, 6].map((i) => `agent${i}`)];
  for (const tab of [b, c]) {
    await tab.waitForFunction(([sel, n]) => [...document.querySelector("#embedded-messaging [data-testid=host]").shadowRoot.querySelectorAll(sel)]
      .filter((li) => li.dataset.status === "sent" || li.dataset.role === "Agent").length === n,
    [line, expected.length], { timeout: 15_000 });
  }
  await b.waitForTimeout(500); // a late duplicate would show up here
  const [tb, tc] = [await transcript(b), await transcript(c)];
  const texts = tb.map((l) => l.line.replace(/^\w+: /, ""));
  assert.deepEqual([...texts].sort(), [...expected].sort(), "every message once in tab b");
  assert.deepEqual(tc, tb, "tab c shows the same lines, seqs and order");
  assert.deepEqual(tb.map((l) => l.seq), [...tb.map((l) => l.seq)].sort((x, y) => x - y), "in seq order");
  for (const who of ["b", "c", "agent"]) {
    const own = texts.filter((t) => t.replace(/\d+$/, "") === who);
    assert.deepEqual(own, expected.filter((t) => t.replace(/\d+$/, "") === who), `${who}'s messages in the order written`);
  }
  assert.equal(await agent.locator('[data-testid="console-message"][data-role="EndUser"]').count(), 17, "the agent got each visitor message once");
  assert.equal(sockets.length, 2, "still one socket for the browser");
  for (const tab of [b, c]) assert.deepEqual(tab.problems, []);
  await agent.close();
  await context.close();
});

test("one notification: a hidden follower does not blink the title, the hidden leader does, and the next leader takes it over", async () => {
  const agent = await agentOnline();
  const context = await browser.newContext();
  const sockets = [];
  const [a, b] = await tabs(context, 2, sockets);
  await openChat(a);
  const [started] = await waitForEvent(a, "onEmbeddedMessagingConversationStarted");
  await say(a, "hello");
  await openChat(b);
  await waitForEvent(b, "onEmbeddedMessagingConversationOpened");
  for (const tab of [a, b]) {
    await tab.evaluate(() => {
      // The tab goes to the background (as when the visitor switches tabs).
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
      window.__titles = [document.title];
      new MutationObserver(() => window.__titles.push(document.title))
        .observe(document.querySelector("title"), { childList: true, characterData: true, subtree: true });
    });
  }
  await agent.open(started.detail.conversationId);
  await agent.say("Are you there?");
  const blinks = (tab) => tab.waitForFunction(() => window.__titles.some((t) => t.startsWith("(1) ")), null, { timeout: 5_000 });
  await blinks(a);
  await b.locator(`${line}[data-role="Agent"]`, { hasText: "Are you there?" }).waitFor();
  await b.waitForTimeout(2_500); // more than two blink ticks
  const titles = await b.evaluate(() => window.__titles);
  assert.deepEqual([...new Set(titles)], [titles[0]], "the follower's title never changed");
  assert.equal(sockets.length, 1);

  // The leader's tab closes: the other, still hidden with the message unread, blinks now.
  await a.close();
  await blinks(b);
  assert.deepEqual(b.problems, []);
  await agent.close();
  await context.close();
});

test("the leader's socket drops (server restart): every tab reconnects through the leader, a message typed meanwhile arrives once", async () => {
  // A server of its own, restarted on the same ports with the same database.
  const own = await startServer();
  let restarted = null;
  const context = await browser.newContext();
  try {
    const sockets = [];
    const pages = [];
    for (const name of ["a", "b"]) {
      const page = await visitorPage(context);
      page.on("websocket", (ws) => { if (ws.url().includes("/embeddedservice/v1/ws")) sockets.push(name); });
      await page.goto(`${own.siteUrl}/index.html`);
      await waitForEvent(page, "onEmbeddedMessagingReady");
      pages.push(page);
    }
    const [a, b] = pages;
    await openChat(a);
    await waitForEvent(a, "onEmbeddedMessagingConversationOpened");
    await say(a, "before the restart");
    await openChat(b);
    await b.locator(`${mine}[data-status="sent"]`, { hasText: "before the restart" }).waitFor();

    await own.stop({ keepDb: true });
    for (const tab of [a, b]) await tab.getByTestId("status").filter({ hasText: "Reconnecting" }).waitFor();
    await say(b, "typed while the server was down");
    await a.locator(`${mine}[data-status="pending"]`, { hasText: "typed while the server was down" }).waitFor();
    restarted = await startServer({ dbDir: own.dir, listen: new URL(own.url).host, siteListen: new URL(own.siteUrl).host });
    for (const tab of [a, b]) {
      await tab.locator(`${mine}[data-status="sent"]`, { hasText: "typed while the server was down" }).waitFor({ timeout: 40_000 });
    }
    await b.waitForTimeout(300); // a late duplicate would show up here
    for (const tab of [a, b]) {
      assert.deepEqual((await transcript(tab)).filter((l) => l.line.startsWith("EndUser")).map((l) => l.line),
        ["EndUser: before the restart", "EndUser: typed while the server was down"]);
    }
    assert.ok(sockets.length >= 2, "a socket before and one after the restart (and failed attempts between)");
    assert.deepEqual([...new Set(sockets)], ["a"], "only the leader's tab ever opens a socket");
  } finally {
    await context.close();
    await (restarted ?? own).stop();
  }
});
