// The persisted outbox end to end: messages typed while the browser is offline survive a
// reload and arrive once each, in order, when it is back online; a refused message shows
// why and can be retried from the keyboard.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole, demoConfigWithLimits, STORAGE_KEY } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

const mine = '[data-testid="message"][data-role="EndUser"]';

async function openChat(visitor) {
  await waitForEvent(visitor, "onEmbeddedMessagingReady");
  const dialog = visitor.locator('[role="dialog"]');
  if (!(await dialog.isVisible())) await visitor.locator("#embeddedMessagingConversationButton").click();
  await dialog.waitFor({ state: "visible" });
}

async function myTexts(visitor) {
  return visitor.locator(`${mine} [data-testid="message-text"]`).allTextContents();
}

test("offline: three messages, reload while offline, back online: all three arrive once, in order", async () => {
  const context = await browser.newContext();
  const visitor = await visitorPage(context);
  await visitor.goto(`${server.siteUrl}/index.html`);
  await openChat(visitor);
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
  const input = visitor.getByTestId("input");
  await input.fill("before");
  await input.press("Enter");
  await visitor.locator(`${mine}[data-status="sent"]`).waitFor();

  await context.setOffline(true);
  for (const text of ["one", "two", "three"]) {
    await input.fill(text);
    await input.press("Enter");
  }
  // Shown at once, pending, and kept in localStorage beside the record.
  assert.equal(await visitor.locator(`${mine}[data-status="pending"]`).count(), 3);
  const stored = await visitor.evaluate((k) => JSON.parse(localStorage.getItem(k + ":outbox")), STORAGE_KEY);
  assert.deepEqual(stored.map((o) => o.text), ["one", "two", "three"]);

  // The reload itself fails while offline (no page without a network), the storage stays.
  await visitor.reload().catch(() => {});
  await context.setOffline(false);
  await visitor.goto(`${server.siteUrl}/index.html`);
  await openChat(visitor);
  await visitor.waitForFunction(
    (sel) => [...document.querySelector("#embedded-messaging [data-testid=host]").shadowRoot.querySelectorAll(sel)]
      .filter((li) => li.dataset.status === "sent").length === 4,
    `[data-testid="message"][data-role="EndUser"]`, { timeout: 15_000 });
  assert.deepEqual(await myTexts(visitor), ["before", "one", "two", "three"]);
  const outbox = await visitor.evaluate((k) => localStorage.getItem(k + ":outbox"), STORAGE_KEY);
  assert.equal(outbox, null, "the outbox is empty once everything is stored");

  // Stored on the server once each: a fresh page replays exactly these.
  await visitor.reload();
  await openChat(visitor);
  await visitor.locator(mine, { hasText: "three" }).waitFor();
  await visitor.waitForTimeout(300); // a late duplicate would show up here
  assert.deepEqual(await myTexts(visitor), ["before", "one", "two", "three"]);
  const seqs = await visitor.locator(mine).evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "in seq order");
  await context.close();
});

test("a refused message shows the reason and Retry sends it again from the keyboard", async () => {
  const context = await browser.newContext();
  const visitor = await visitorPage(context);
  await visitor.goto(`${server.siteUrl}/index.html`);
  await openChat(visitor);
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
  // Too long for the server (the composer's maxlength is bypassed through the API).
  await visitor.evaluate(() => embeddedservice_bootstrap.utilAPI.sendTextMessage("x".repeat(20_000)));
  const failed = visitor.locator(`${mine}[data-status="failed"]`);
  await failed.waitFor();
  assert.match(await failed.getByTestId("message-error").textContent(), /^Not delivered: /);
  const refusals = () => visitor.problems.filter((p) => p.includes("message not sent")).length;
  assert.equal(refusals(), 1);
  const retry = failed.getByTestId("message-retry");
  await retry.focus();
  await visitor.keyboard.press("Enter");
  // It went out again and was refused again (same text): still one line, failed, retryable.
  for (let i = 0; i < 100 && refusals() < 2; i++) await visitor.waitForTimeout(50);
  assert.equal(refusals(), 2);
  await failed.getByTestId("message-retry").waitFor();
  assert.equal(await visitor.locator(mine).count(), 1);
  await context.close();
});

test("two tabs: one thread live in both, one unread count, a closed tab's unsent message is sent by the other", async () => {
  const context = await browser.newContext();
  const a = await visitorPage(context);
  const b = await visitorPage(context);
  await a.goto(`${server.siteUrl}/index.html`);
  await b.goto(`${server.siteUrl}/index.html`);
  await openChat(a);
  const [started] = await waitForEvent(a, "onEmbeddedMessagingConversationStarted");
  await waitForEvent(a, "onEmbeddedMessagingConversationOpened");
  await a.getByTestId("input").fill("from tab A");
  await a.getByTestId("input").press("Enter");
  await openChat(b);
  await b.locator(mine, { hasText: "from tab A" }).waitFor();
  assert.equal(await b.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingConversationStarted").length), 0,
    "tab B joins tab A's conversation instead of starting one");

  // Both minimized: an agent reply is unread in both; reading it in A clears B's count too.
  await a.getByTestId("minimize").click();
  await b.getByTestId("minimize").click();
  const agentContext = await browser.newContext();
  const agent = await agentConsole(agentContext, server.url);
  await agent.locator(`[data-testid="console-conversation"][data-conversation-id="${started.detail.conversationId}"]`).click();
  await agent.getByTestId("console-input").fill("Hello from Ada");
  await agent.getByTestId("console-send").click();
  for (const tab of [a, b]) await tab.waitForFunction(() => document.querySelector("#embedded-messaging [data-testid=host]")
    .shadowRoot.querySelector("[data-testid=unread]")?.textContent === "1");
  await a.getByTestId("minimized").click();
  await b.waitForFunction(() => document.querySelector("#embedded-messaging [data-testid=host]")
    .shadowRoot.querySelector("[data-testid=unread]").hidden);

  await b.getByTestId("minimized").click();
  await b.locator('[data-testid="message"][data-role="Agent"]', { hasText: "Hello from Ada" }).waitFor();

  // Offline, A writes and closes: B shows the message pending and sends it once back online.
  await context.setOffline(true);
  await a.getByTestId("input").fill("written in A, then A closed");
  await a.getByTestId("input").press("Enter");
  await b.locator(mine, { hasText: "written in A, then A closed" }).waitFor();
  await a.close();
  await context.setOffline(false);
  await b.locator(`${mine}[data-status="sent"]`, { hasText: "written in A, then A closed" }).waitFor({ timeout: 15_000 });
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "written in A, then A closed" }).waitFor();
  await b.waitForTimeout(300);
  assert.equal(await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "written in A, then A closed" }).count(), 1);
  assert.deepEqual(await myTexts(b), ["from tab A", "written in A, then A closed"]);
  await agentContext.close();
  await context.close();
});

test("rate_limited: messages written faster than the deployment allows wait, stay pending, and arrive once each, in order", async () => {
  // One message per second (bursts of two): six typed at once exceed it. The widget shows
  // them pending, says nothing alarming, and sends the refused ones after the server's wait.
  const own = await startServer({ config: demoConfigWithLimits("messages_per_second = 1") });
  const context = await browser.newContext();
  try {
    const visitor = await visitorPage(context);
    await visitor.goto(`${own.siteUrl}/index.html`);
    await openChat(visitor);
    await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
    const input = visitor.getByTestId("input");
    const texts = ["one", "two", "three", "four", "five", "six"];
    for (const text of texts) {
      await input.fill(text);
      await input.press("Enter");
    }
    await visitor.waitForFunction(
      (sel) => [...document.querySelector("#embedded-messaging [data-testid=host]").shadowRoot.querySelectorAll(sel)]
        .filter((li) => li.dataset.status === "sent").length === 6,
      `[data-testid="message"][data-role="EndUser"]`, { timeout: 30_000 });
    assert.equal(await visitor.locator(`${mine}[data-status="failed"]`).count(), 0, "nothing failed");
    assert.deepEqual(visitor.problems, [], "no console noise");
    // Stored once each, in order: a fresh page replays exactly these.
    await visitor.reload();
    await openChat(visitor);
    await visitor.locator(mine, { hasText: "six" }).waitFor();
    assert.deepEqual(await myTexts(visitor), texts);
    const seqs = await visitor.locator(mine).evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "in seq order");
  } finally {
    await context.close();
    await own.stop();
  }
});
