// The rule bot's quick replies in a real page: the widget shows the bot's menu as buttons, and
// a click answers it with an ordinary visitor message that the bot understands.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test("Demo_Bot greets with quick replies; clicking one sends its title and gets the answer", async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 720 } });
  const page = await visitorPage(context);
  await page.goto(`${server.siteUrl}/compat/bot.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await waitForEvent(page, "onEmbeddedMessagingConversationOpened");

  const input = page.getByTestId("input");
  await input.fill("hi");
  await input.press("Enter");
  const bot = page.locator('[data-testid="message"][data-role="Chatbot"]');
  await bot.filter({ hasText: "Hi, I'm the virtual assistant." }).waitFor();
  const menu = bot.filter({ hasText: "What can I help you with?" });
  await menu.waitFor();
  const replies = menu.getByTestId("quick-reply");
  assert.deepEqual(await replies.allTextContents(), ["Opening hours", "Order status", "Talk to a person"]);
  assert.equal(await replies.first().evaluate((b) => b.tagName), "BUTTON");

  await replies.filter({ hasText: "Opening hours" }).click();
  const mine = page.locator('[data-testid="message"][data-role="EndUser"]', { hasText: "Opening hours" });
  await mine.and(page.locator('[data-status="sent"]')).waitFor();
  const [, sent] = await waitForEvent(page, "onEmbeddedMessageSent", 2);
  assert.equal(JSON.parse(sent.detail.conversationEntry.entryPayload).abstractMessage.staticContent.text, "Opening hours");
  await bot.filter({ hasText: "We are open Monday to Friday, 9:00 to 17:00." }).waitFor();

  // The bot offers its menu again: only that newest menu has buttons.
  await page.waitForFunction(() => {
    const root = document.querySelector("[data-testid=host]").shadowRoot;
    const menus = [...root.querySelectorAll("li")].filter((li) => li.querySelector("[data-testid=quick-reply]"));
    return menus.length === 1 && menus[0] === [...root.querySelectorAll("li")].at(-1);
  });
  assert.equal(await mine.count(), 1, "the answer was sent once");
  assert.deepEqual(page.problems, []);
  await context.close();
});
