// The visitor's session as page code drives it (pages in www/compat/, each on its own origin,
// the real server): clearSession when the conversation closes, identity tokens set on Ready,
// expired and refreshed, a null token, the visitor ending the conversation, inline mode,
// business hours, and the legacy API names.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole, ROOT, ORG_ID } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

async function open(path) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await visitorPage(context);
  await page.goto(`${server.siteUrl}/compat/${path}`);
  return { page, context };
}

const input = (page) => page.getByTestId("input");
const say = async (page, text) => { await input(page).fill(text); await input(page).press("Enter"); };
const conversationItem = (agent, id) => agent.locator(`[data-testid="console-conversation"][data-conversation-id="${id}"]`);

/** An RS256 JWT for Demo_Verified, signed with the test key (a public fixture). */
function mintToken(sub, expiresInSeconds) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${part({ alg: "RS256", typ: "JWT" })}.${part({
    iss: "https://demo.embedded-messaging.test", aud: "embedded-messaging-demo",
    sub, iat: now, exp: now + expiresInSeconds,
  })}`;
  const key = readFileSync(join(ROOT, "server/tests/keys/rsa-private.pem"));
  return `${body}.${createSign("RSA-SHA256").update(body).sign(key).toString("base64url")}`;
}

test("clearSession() on ConversationClosed wipes the session in every tab and Ready fires again", async () => {
  const agent = await agentConsole(await browser.newContext(), server.url);
  const { page, context } = await open("clear-session.html");
  const second = await visitorPage(context);
  await second.goto(`${server.siteUrl}/compat/clear-session.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await say(page, "Please forget me after this");
  const [started] = await waitForEvent(page, "onEmbeddedMessagingConversationStarted");
  const id = started.detail.conversationId;
  await conversationItem(agent, id).click();
  await agent.getByTestId("console-end").click();

  // Whichever tab sees the end first clears the session; the other follows through storage
  // (and may then find no conversation left to close): both fire Ready again either way.
  await page.waitForFunction(() => window.__ready >= 2);
  await second.waitForFunction(() => window.__ready >= 2);
  assert.ok(await page.evaluate(() => window.__cleared) || await second.evaluate(() => window.__cleared));
  const storageKey = `embeddedMessaging:${ORG_ID}:Demo_Deployment`;
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), storageKey), null);
  await page.locator('[role="dialog"]').waitFor({ state: "hidden" });
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });

  // The next chat is a new visitor with a new conversation (whichever tab creates it, both
  // tabs then share it, as they share any conversation).
  await page.locator("#embeddedMessagingConversationButton").click();
  await say(page, "A different person now");
  await page.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]', { hasText: "A different person now" }).waitFor();
  const record = JSON.parse(await page.evaluate((k) => localStorage.getItem(k), storageKey));
  assert.ok(record.conversationId && record.conversationId !== id, JSON.stringify(record));
  assert.equal(await page.getByTestId("message").filter({ hasText: "Please forget me" }).count(), 0);
  assert.deepEqual(page.problems, []);
  await context.close();
  await agent.context().close();
});

test("identity token set on Ready, expired and refreshed: the conversation goes on", async () => {
  const agent = await agentConsole(await browser.newContext(), server.url);
  const context = await browser.newContext();
  const page = await visitorPage(context);
  const minted = [];
  // The page's backend: the first token lives 3 s, later ones an hour.
  await page.exposeFunction("getIdentityToken", () => {
    const token = mintToken("customer-42", minted.length === 0 ? 3 : 3600);
    minted.push(token);
    return token;
  });
  await page.goto(`${server.siteUrl}/compat/verified.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.waitForFunction(() => window.__accepted.length === 1);
  assert.deepEqual(await page.evaluate(() => window.__accepted), [true]);
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });
  await page.locator("#embeddedMessagingConversationButton").click();
  await say(page, "Signed in and asking");
  const [started] = await waitForEvent(page, "onEmbeddedMessagingConversationStarted");
  const id = started.detail.conversationId;

  await waitForEvent(page, "onEmbeddedMessagingIdentityTokenExpired", 1, 30_000);
  await page.waitForFunction(() => window.__accepted.length === 2);
  await say(page, "Still me after the refresh");
  await conversationItem(agent, id).click();
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "Still me after the refresh" }).waitFor();
  assert.equal(await agent.locator('[data-testid="console-context-item"][data-key="verifiedSubject"]').count() +
    await agent.getByText("customer-42").count() > 0, true, "the agent sees the verified identity");
  assert.equal(minted.length, 2);
  // The token is never stored in the browser.
  const stored = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage, sessionStorage)));
  for (const token of minted) assert.ok(!stored.includes(token.split(".")[2]), "token in storage");
  assert.deepEqual(page.problems, []);
  await context.close();
  await agent.context().close();
});

test("a null or expired token is refused with a message, never a throw, and no button appears", async () => {
  const context = await browser.newContext();
  const page = await visitorPage(context);
  await page.exposeFunction("getIdentityToken", () => null);
  await page.goto(`${server.siteUrl}/compat/verified.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.waitForFunction(() => window.__accepted.length === 1);
  const results = await page.evaluate((expired) => {
    const api = embeddedservice_bootstrap.userVerificationAPI;
    return [
      api.setIdentityToken(null),
      api.setIdentityToken({ identityTokenType: "JWT", identityToken: "not-a-jwt" }),
      api.setIdentityToken({ identityTokenType: "JWT", identityToken: expired }),
    ];
  }, mintToken("customer-42", -60));
  assert.deepEqual(await page.evaluate(() => window.__accepted), [false]);
  assert.deepEqual(results, [false, false, false]);
  assert.equal(await page.locator("#embeddedMessagingConversationButton").isVisible(), false);
  const errors = page.problems.filter((p) => p.includes("userVerificationAPI.setIdentityToken"));
  assert.equal(errors.length, 4, page.problems.join("\n"));
  assert.ok(errors.some((e) => /expired/.test(e)), errors.join("\n"));
  await context.close();
});

test("the visitor ends the conversation; the next message starts a new one", async () => {
  const { page, context } = await open("listeners-before-init.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await say(page, "Quick question");
  const [first] = await waitForEvent(page, "onEmbeddedMessagingConversationStarted");
  await page.getByTestId("end-conversation").click();
  await page.getByTestId("status").filter({ hasText: "Conversation ended" }).waitFor();
  await page.getByTestId("new-conversation").click();
  await say(page, "Another question");
  const both = await waitForEvent(page, "onEmbeddedMessagingConversationStarted", 2);
  assert.notEqual(both[1].detail.conversationId, first.detail.conversationId);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("inline mode renders the window inside the container, open, with no floating button", async () => {
  const { page, context } = await open("inline.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  const dialog = page.locator('[role="dialog"]');
  await dialog.waitFor({ state: "visible" });
  assert.equal(await page.locator("#embeddedMessagingConversationButton").isVisible(), false);
  assert.equal(await page.locator("#chat-container > .embedded-messaging-inline").count(), 1);
  const [box, container] = [await dialog.boundingBox(), await page.locator("#chat-container").boundingBox()];
  assert.ok(box.x >= container.x - 1 && box.y >= container.y - 1, JSON.stringify({ box, container }));
  assert.ok(box.x + box.width <= container.x + container.width + 1, JSON.stringify({ box, container }));
  assert.ok(box.height > 400, "the window fills the container's height");
  await say(page, "Hello from the inline window");
  await page.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]').waitFor();
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("outside business hours the button says offline, and messages still reach the thread", async () => {
  const { page, context } = await open("closed.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  const button = page.locator("#embeddedMessagingConversationButton");
  await button.waitFor({ state: "visible" });
  assert.equal(await button.getAttribute("data-offline"), "");
  assert.match(await button.getAttribute("aria-description"), /offline/i);
  await button.click();
  await say(page, "Are you open tomorrow?");
  await page.locator('[data-testid="message"][data-role="EndUser"][data-status="sent"]').waitFor();
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("legacy Embedded Service names log an error that names the replacement", async () => {
  const { page, context } = await open("legacy.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.evaluate(() => embeddedservice_bootstrap.addEventHandler);
  const legacy = page.problems.filter((p) => p.includes("legacy Embedded Service"));
  assert.equal(legacy.length, 3, page.problems.join("\n"));
  assert.ok(legacy.some((p) => p.includes("settings.displayHelpButton") && p.includes("hideChatButtonOnLoad")));
  assert.ok(legacy.some((p) => p.includes("addEventHandler") && p.includes("addEventListener")));
  // The widget works regardless.
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });
  await context.close();
});

/**
 * A fresh server (the tests above leave conversations open that would hold the agents), ada in
 * the console, and a visitor who wrote `text` and whose conversation ada has opened.
 */
async function chatOnOwnServer(text) {
  const own = await startServer();
  const agent = await agentConsole(await browser.newContext(), own.url);
  const context = await browser.newContext();
  const page = await visitorPage(context);
  await page.goto(`${own.siteUrl}/compat/listeners-before-init.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").click();
  await say(page, text);
  const [started] = await waitForEvent(page, "onEmbeddedMessagingConversationStarted");
  await conversationItem(agent, started.detail.conversationId).click();
  const close = async () => { await context.close(); await agent.context().close(); await own.stop(); };
  return { agent, page, close };
}

test("links in an agent's message are links; a click fires onEmbeddedMessageLinkClicked", async () => {
  const { agent, page, close } = await chatOnOwnServer("Where is my order?");
  await agent.getByTestId("console-input").fill("Track it at https://shop.example.com/track?id=7. Thanks!");
  await agent.getByTestId("console-send").click();
  const link = page.locator('[data-testid="message"][data-role="Agent"] a');
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), "https://shop.example.com/track?id=7");
  assert.equal(await link.getAttribute("target"), "_blank");
  assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
  assert.match(await page.locator('[data-testid="message"][data-role="Agent"]').textContent(), /Thanks!/);
  // The page keeps the browser from leaving (no network here); the widget still reports it.
  await page.evaluate(() => window.addEventListener("click", (e) => e.preventDefault(), true));
  await link.click();
  const [clicked] = await waitForEvent(page, "onEmbeddedMessageLinkClicked");
  assert.equal(clicked.detail.link, "https://shop.example.com/track?id=7");
  assert.equal(clicked.detail.conversationEntry.sender.role, "Agent");
  assert.deepEqual(page.problems, []);
  await close();
});

test("the agent opening the conversation in the console fires onEmbeddedMessageRead for the visitor's message", async () => {
  const { agent, page, close } = await chatOnOwnServer("Did you see this?");
  const [sent] = await waitForEvent(page, "onEmbeddedMessageSent");
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]').waitFor();
  const [read] = await waitForEvent(page, "onEmbeddedMessageRead");
  assert.equal(read.detail.conversationEntry.identifier, sent.detail.conversationEntry.identifier);
  assert.equal(read.detail.conversationEntry.sender.role, "EndUser");
  assert.deepEqual(page.problems, []);
  await close();
});
