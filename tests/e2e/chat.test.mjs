// The first whole slice: a visitor on a customer's page chats with an agent in the console,
// then reloads and finds the same thread, every message exactly once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole, STORAGE_KEY, ROOT } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test("visitor and agent talk end to end from the pasted snippet; reload keeps the thread", async () => {
  // The demo page lives on another origin than the server, as on a real customer site.
  assert.notEqual(new URL(server.siteUrl).origin, new URL(server.url).origin);
  // The agent is online first, so the conversation is routed at once (the README screenshot).
  const agentContext = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const agent = await agentConsole(agentContext, server.url);
  const visitorContext = await browser.newContext({ viewport: { width: 1000, height: 720 } });
  const visitor = await visitorPage(visitorContext);
  await visitor.goto(`${server.siteUrl}/index.html`);

  await waitForEvent(visitor, "onEmbeddedMessagingReady");
  const [created] = await waitForEvent(visitor, "onEmbeddedMessagingButtonCreated");
  assert.deepEqual(created.detail, { buttonVisibility: "Show" });
  const launcher = visitor.locator("#embeddedMessagingConversationButton");
  await launcher.waitFor({ state: "visible" });
  assert.equal(await launcher.evaluate((b) => b.closest("#embedded-messaging") !== null), true);

  await launcher.click();
  await waitForEvent(visitor, "onEmbeddedMessagingButtonClicked");
  await waitForEvent(visitor, "onEmbeddedMessagingWindowMaximized");
  const dialog = visitor.locator('[role="dialog"]');
  await dialog.waitFor({ state: "visible" });
  const [started] = await waitForEvent(visitor, "onEmbeddedMessagingConversationStarted");
  const conversationId = started.detail.conversationId;
  assert.match(conversationId, /^[0-9a-f-]{36}$/);
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");

  const input = visitor.getByTestId("input");
  await input.fill("hello");
  await input.press("Enter");
  const mine = visitor.locator('[data-testid="message"][data-role="EndUser"]');
  await visitor.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]').waitFor();
  assert.equal(await mine.count(), 1);
  const [sent] = await waitForEvent(visitor, "onEmbeddedMessageSent");
  const entry = sent.detail.conversationEntry;
  assert.equal(entry.entryType, "Message");
  assert.equal(entry.sender.role, "EndUser");
  assert.equal(typeof entry.entryPayload, "string", "entryPayload is a JSON string as in the commercial API");
  assert.equal(JSON.parse(entry.entryPayload).abstractMessage.staticContent.text, "hello");

  // The agent answers from the console.
  const item = agent.locator(`[data-testid="console-conversation"][data-conversation-id="${conversationId}"]`);
  await item.waitFor();
  await item.click();
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "hello" }).waitFor();
  await agent.getByTestId("console-input").fill("Hi, I'm Ada. How can I help?");
  await agent.getByTestId("console-send").click();

  const reply = visitor.locator('[data-testid="message"][data-role="Agent"]', { hasText: "Hi, I'm Ada. How can I help?" });
  await reply.waitFor();
  // Give the live region a moment, then take the README screenshot with the window open.
  await visitor.waitForTimeout(300);
  await visitor.screenshot({ path: join(ROOT, "docs/screenshot.png") });

  // Reload: same conversation, both messages, each once.
  const stored = await visitor.evaluate((k) => JSON.parse(localStorage.getItem(k)), STORAGE_KEY);
  assert.equal(stored.conversationId, conversationId);
  assert.equal(typeof stored.credential, "string");
  await visitor.reload();
  await waitForEvent(visitor, "onEmbeddedMessagingReady");
  if (!(await dialog.isVisible())) await launcher.click();
  await reply.waitFor();
  await visitor.locator('[data-testid="message"][data-role="EndUser"]', { hasText: "hello" }).waitFor();
  await visitor.waitForTimeout(300); // a late duplicate would show up here
  assert.equal(await visitor.locator('[data-testid="message"][data-role="EndUser"]').count(), 1);
  assert.equal(await visitor.locator('[data-testid="message"][data-role="Agent"]').count(), 1);
  const again = await visitor.evaluate((k) => JSON.parse(localStorage.getItem(k)), STORAGE_KEY);
  assert.equal(again.conversationId, conversationId);
  const startedAgain = await visitor.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingConversationStarted").length);
  assert.equal(startedAgain, 0, "a resumed conversation is not a new one");

  assert.deepEqual(visitor.problems, [], "no console errors or warnings on the visitor page");
  assert.deepEqual(agent.problems, []);
  await visitorContext.close();
  await agentContext.close();
});
