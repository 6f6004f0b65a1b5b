// Pages written the way real integrations are written, each on its own origin against the real
// server: the commercial snippet's patterns must work unchanged.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

async function open(path) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await visitorPage(context);
  await page.goto(`${server.siteUrl}/compat/${path}`);
  return { page, context };
}

test("listeners attached before init fire once each, duplicates harmless", async () => {
  const { page, context } = await open("listeners-before-init.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.waitForTimeout(100);
  const log = await page.evaluate(() => window.__log);
  assert.deepEqual(log.filter((e) => e === "onEmbeddedMessagingReady"), ["onEmbeddedMessagingReady"]);
  assert.ok(log.includes("ButtonCreated:Show"), log.join(","));
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("init called on a click, with the script loaded earlier in <head>", async () => {
  const { page, context } = await open("init-on-click.html");
  await page.waitForTimeout(200);
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0, "no button before init");
  await page.locator("#need-help").click();
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("hidden default button + a custom launcher calling launchChat(); a second launchChat resolves", async () => {
  const { page, context } = await open("custom-launcher.html");
  const [created] = await waitForEvent(page, "onEmbeddedMessagingButtonCreated");
  assert.deepEqual(created.detail, { buttonVisibility: "Hide" });
  await waitForEvent(page, "onEmbeddedMessagingReady");
  assert.equal(await page.locator("#embeddedMessagingConversationButton").isVisible(), false);
  await page.locator("#my-chat").click();
  await page.locator('[role="dialog"]').waitFor({ state: "visible" });
  await page.waitForFunction(() => window.__launches.length === 1);
  await page.locator("#my-chat").click(); // already open: resolves at once
  await page.waitForFunction(() => window.__launches.length === 2);
  assert.deepEqual(await page.evaluate(() => window.__launches), ["resolved", "resolved"]);
  await waitForEvent(page, "onEmbeddedMessagingButtonClicked", 1);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("launchChat() then sendTextMessage() after ConversationOpened", async () => {
  const { page, context } = await open("send-on-open.html");
  await page.waitForFunction(() => window.__results.includes("sent"), null, { timeout: 10_000 });
  assert.deepEqual(await page.evaluate(() => window.__results), ["launched", "sent"]);
  const msg = page.locator('[data-testid="message"][data-role="EndUser"]', { hasText: "Order 1234 has not arrived" });
  await page.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]').waitFor();
  assert.equal(await msg.count(), 1);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("sendTextMessage() with no open conversation rejects with a string", async () => {
  const { page, context } = await open("listeners-before-init.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  const outcome = await page.evaluate(() => embeddedservice_bootstrap.utilAPI.sendTextMessage("hi").then(() => "resolved", (e) => e));
  assert.equal(typeof outcome, "string");
  assert.notEqual(outcome, "resolved");
  await context.close();
});

test("chatButtonPosition in percent places the launcher from the bottom right", async () => {
  const { page, context } = await open("position-percent.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  const box = await page.locator("#embeddedMessagingConversationButton").boundingBox();
  const view = page.viewportSize();
  assert.ok(Math.abs(view.height - (box.y + box.height) - 0.05 * view.height) <= 1, `bottom ${view.height - box.y - box.height}`);
  assert.ok(Math.abs(view.width - (box.x + box.width) - 0.10 * view.width) <= 1, `right ${view.width - box.x - box.width}`);
  await context.close();
});

test("removeAllComponents() leaves the page as it was, and loading the script again works", async () => {
  const { page, context } = await open("remove-all.html");
  const before = await page.evaluate(() => window.__snapshot());
  await page.evaluate(() => window.__load());
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await page.locator('[role="dialog"]').waitFor({ state: "visible" });
  await waitForEvent(page, "onEmbeddedMessagingConversationOpened");
  await page.evaluate(() => embeddedservice_bootstrap.utilAPI.removeAllComponents());
  await page.waitForTimeout(100);
  assert.deepEqual(await page.evaluate(() => window.__snapshot()), before);
  // A second life: the script loads and initialises again.
  await page.evaluate(() => window.__load());
  await waitForEvent(page, "onEmbeddedMessagingReady", 2);
  // The window was open when the components were removed, so it comes back open, same thread.
  await page.locator('[role="dialog"]').waitFor({ state: "visible" });
  await waitForEvent(page, "onEmbeddedMessagingConversationOpened", 2);
  assert.equal((await page.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingConversationStarted"))).length, 1);
  assert.deepEqual(page.problems, []);
  await context.close();
});
