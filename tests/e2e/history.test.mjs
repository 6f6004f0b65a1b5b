// Paged history end to end: a long conversation reopens with its newest page in the widget
// and in the agent console; scrolling up (widget) and "Load earlier messages" (console) bring
// the older pages, until every message shows once, in order.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole, demoConfigWithLimits } from "./harness.mjs";

const PAGE = 20;
const N = 60;
let server, browser;
before(async () => {
  server = await startServer({
    config: demoConfigWithLimits("messages_per_second = 1000, frames_per_second = 1000",
      `[server]\nreplay_page_entries = ${PAGE}`),
  });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); await server?.stop(); });

const mine = '[data-testid="message"][data-role="EndUser"]';
const texts = Array.from({ length: N }, (_, i) => `line ${i + 1}`);

async function openChat(visitor) {
  await waitForEvent(visitor, "onEmbeddedMessagingReady");
  const dialog = visitor.locator('[role="dialog"]');
  if (!(await dialog.isVisible())) await visitor.locator("#embeddedMessagingConversationButton").click();
  await dialog.waitFor({ state: "visible" });
}

test("a long conversation reopens with its newest page; scrolling up and Load earlier bring the rest, each once", async () => {
  const context = await browser.newContext();
  const visitor = await visitorPage(context);
  await visitor.goto(`${server.siteUrl}/index.html`);
  await openChat(visitor);
  const [started] = await waitForEvent(visitor, "onEmbeddedMessagingConversationStarted");
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
  for (const text of texts) {
    await visitor.evaluate((t) => embeddedservice_bootstrap.utilAPI.sendTextMessage(t), text);
  }
  await visitor.locator(`${mine}[data-status="sent"]`, { hasText: `line ${N}` }).waitFor();

  // A new page view: only the newest page comes with the resume.
  await visitor.reload();
  await openChat(visitor);
  await visitor.locator(mine, { hasText: `line ${N}` }).waitFor();
  const shownFirst = await visitor.locator(mine).count();
  assert.ok(shownFirst <= PAGE && shownFirst < N, `newest page only: ${shownFirst} lines`);

  // Scrolling to the top asks for the page before; repeat until line 1 is there.
  for (let i = 0; i < 20 && !(await visitor.locator(mine, { hasText: /^line 1$/ }).count()); i++) {
    // (At offset 0 already, setting 0 again fires no scroll event: come from below.)
    await visitor.getByTestId("transcript").evaluate((el) => { el.scrollTop = 200; });
    await visitor.waitForTimeout(50);
    await visitor.getByTestId("transcript").evaluate((el) => { el.scrollTop = 0; });
    await visitor.waitForTimeout(150);
  }
  const lines = await visitor.locator(`${mine} [data-testid="message-text"]`).allTextContents();
  assert.deepEqual(lines, texts, "every line once, in order");
  const seqs = await visitor.locator('[data-testid="message"]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "in seq order");
  assert.deepEqual(visitor.problems, [], "no console noise");

  // The agent console: `assigned` brings the newest page; the button brings older ones.
  const agentContext = await browser.newContext();
  const agent = await agentConsole(agentContext, server.url);
  await agent.locator(`[data-testid="console-conversation"][data-conversation-id="${started.detail.conversationId}"]`).click();
  const visitorLines = agent.locator('[data-testid="console-message"][data-role="EndUser"]');
  await visitorLines.filter({ hasText: `line ${N}` }).waitFor();
  assert.ok((await visitorLines.count()) < N, "the console starts with the newest page");
  const earlier = agent.getByTestId("console-load-earlier");
  for (let i = 0; i < 20 && (await earlier.count()); i++) {
    if (await earlier.isEnabled()) await earlier.click();
    await agent.waitForTimeout(100);
  }
  assert.equal(await earlier.count(), 0, "no button once seq 1 is shown");
  const agentLines = await visitorLines.locator(".text").allTextContents();
  assert.deepEqual(agentLines, texts, "the console shows every line once, in order");
  await agentContext.close();
  await context.close();
});
