// The pre-chat form and prechatAPI on the demo's Demo_Prechat deployment, each page on its own
// origin against the real server: what the page and the visitor enter reaches the agent's
// context panel, and what is wrong is named in the console (page) or beside the field (visitor).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent, agentConsole } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

const PRECHAT_EVENTS = ["onEmbeddedMessagingPreChatLoaded", "onEmbeddedMessagingPreChatSubmitted"];

async function open(context, path) {
  const page = await visitorPage(context);
  // The harness records the other events; these two are recorded the same way.
  await page.addInitScript((names) => {
    for (const name of names) window.addEventListener(name, (e) => window.__events.push({ name, detail: e.detail }));
  }, PRECHAT_EVENTS);
  await page.goto(`${server.siteUrl}/compat/${path}`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  return page;
}

const item = (agent, id) => agent.locator(`[data-testid="console-conversation"][data-conversation-id="${id}"]`);
const contextItem = (agent, key) => agent.locator(`[data-testid="console-context-item"][data-key="${key}"]`);
/** Resolves once `check()` holds (state kept on the Node side, such as console messages). */
async function until(check) {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((ok) => setTimeout(ok, 50));
}
/** The element focused inside the widget's shadow root: its `name`, or its test id. */
const focused = (page) => page.evaluate(() => {
  const active = document.querySelector(".embedded-messaging-host").shadowRoot.activeElement;
  return active && (active.getAttribute("name") || active.getAttribute("data-testid"));
});

test("hidden fields set on Ready: bad ones are named in the console and skipped, good ones and prefills reach the agent", async () => {
  const agent = await agentConsole(await browser.newContext(), server.url);
  const visitor = await open(await browser.newContext(), "prechat-hidden.html");
  assert.notEqual(new URL(server.siteUrl).origin, new URL(server.url).origin);
  // Each refused field is one console error naming the method, the field and the fix (the
  // calls run just after Ready; console messages arrive here asynchronously).
  await until(() => visitor.problems.length >= 3);
  const [coupon, script, long] = ["Coupon", "CustomerId", "Plan"].map((field) =>
    visitor.problems.find((p) => p.includes(`field "${field}"`)));
  assert.match(coupon, /^error: \[embedded-messaging\] prechatAPI\.setHiddenPrechatFields: field "Coupon" is not a hidden pre-chat field of this deployment \(it has: Plan, CustomerId\); fix the name/);
  assert.match(script, /prechatAPI\.setHiddenPrechatFields: field "CustomerId" contains a script .*; pass plain text\. The field was skipped\./);
  assert.match(long, /prechatAPI\.setHiddenPrechatFields: field "Plan" is longer than its maxLength of 20 characters; shorten it\. The field was skipped\./);
  assert.equal(visitor.problems.length, 3, visitor.problems.join("\n"));

  // The page's prefills are in the form: the name read-only, the email editable.
  await visitor.locator("#embeddedMessagingConversationButton").click();
  const firstName = visitor.locator('[data-testid="prechat-field"][name="_firstName"]');
  const email = visitor.locator('[data-testid="prechat-field"][name="_email"]');
  await firstName.waitFor({ state: "visible" });
  assert.equal(await firstName.inputValue(), "Ada");
  assert.equal(await firstName.getAttribute("readonly"), "");
  assert.equal(await email.inputValue(), "ada@example.com");
  assert.equal(await email.getAttribute("readonly"), null);
  assert.equal(await visitor.locator('[data-testid="input"]').isVisible(), false, "the form stands in for the composer");
  await visitor.locator('[data-testid="prechat-field"][name="Topic"]').selectOption("Orders");
  await visitor.locator('[data-testid="prechat-submit"]').click();

  const [started] = await waitForEvent(visitor, "onEmbeddedMessagingConversationStarted");
  await visitor.locator('[data-testid="input"]').fill("Where is my order?");
  await visitor.locator('[data-testid="input"]').press("Enter");
  await item(agent, started.detail.conversationId).click();
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "Where is my order?" }).waitFor();
  assert.equal(await contextItem(agent, "hidden.Plan").textContent(), "Gold");
  assert.equal(await contextItem(agent, "hidden.CustomerId").count(), 0);
  assert.equal(await contextItem(agent, "hidden.Coupon").count(), 0);
  assert.equal(await contextItem(agent, "prechat._firstName").textContent(), "Ada");
  assert.equal(await contextItem(agent, "prechat._email").textContent(), "ada@example.com");
  assert.equal(await contextItem(agent, "prechat.Topic").textContent(), "Orders");
  assert.equal(visitor.problems.length, 3, visitor.problems.join("\n"));
  assert.deepEqual(agent.problems, []);
});

test("the visible form with the keyboard: labelled fields, errors in place, Enter or the button submits; a resumed conversation skips it", async () => {
  const agent = await agentConsole(await browser.newContext(), server.url);
  const visitor = await open(await browser.newContext(), "prechat-form.html");
  await visitor.locator("#embeddedMessagingConversationButton").click();
  const [loaded] = await waitForEvent(visitor, "onEmbeddedMessagingPreChatLoaded");
  assert.deepEqual(loaded.detail, { prechatDisplay: "Conversation" });
  await visitor.locator('[data-testid="prechat"]').waitFor({ state: "visible" });
  assert.equal(await focused(visitor), "_firstName", "focus starts on the first field");

  // Each field has its label, its kind, its limits and its (empty) error line.
  const described = await visitor.evaluate(() => {
    const root = document.querySelector(".embedded-messaging-host").shadowRoot;
    return [...root.querySelectorAll('[data-testid="prechat-field"]')].map((f) => ({
      label: root.querySelector(`label[for="${f.id}"]`)?.textContent,
      tag: f.tagName, type: f.getAttribute("type"), required: f.required, ariaRequired: f.getAttribute("aria-required"),
      maxLength: f.getAttribute("maxlength"), error: root.getElementById(f.getAttribute("aria-describedby"))?.dataset.testid,
    }));
  });
  assert.deepEqual(described, [
    { label: "First name", tag: "INPUT", type: "text", required: true, ariaRequired: "true", maxLength: "40", error: "prechat-error" },
    { label: "Email", tag: "INPUT", type: "email", required: true, ariaRequired: "true", maxLength: "80", error: "prechat-error" },
    { label: "Topic", tag: "SELECT", type: null, required: false, ariaRequired: "false", maxLength: null, error: "prechat-error" },
  ]);

  await visitor.keyboard.type("Grace");
  await visitor.keyboard.press("Tab");
  await visitor.keyboard.type("grace@example");
  await visitor.keyboard.press("Enter");
  const emailError = visitor.locator('[data-testid="prechat-error"]').nth(1);
  await emailError.filter({ hasText: "Enter an email address like name@example.com." }).waitFor();
  assert.equal(await visitor.locator('[name="_email"]').getAttribute("aria-invalid"), "true");
  assert.equal(await visitor.locator('[data-testid="prechat-error"]').first().textContent(), "");
  assert.equal(await focused(visitor), "_email", "focus goes to the field in error");
  assert.equal((await visitor.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingConversationStarted"))).length, 0);

  await visitor.keyboard.type(".com");
  await visitor.keyboard.press("Tab");
  await visitor.keyboard.press("b"); // type-ahead in the <select>: Billing
  assert.equal(await visitor.locator('[name="Topic"]').inputValue(), "Billing");
  await visitor.keyboard.press("Tab");
  assert.equal(await focused(visitor), "prechat-submit");
  await visitor.keyboard.press("Enter");
  const [submitted] = await waitForEvent(visitor, "onEmbeddedMessagingPreChatSubmitted");
  assert.deepEqual(submitted.detail, { prechatDisplay: "Conversation" });
  const [started] = await waitForEvent(visitor, "onEmbeddedMessagingConversationStarted");
  await visitor.locator('[data-testid="input"]').waitFor({ state: "visible" });
  assert.equal(await visitor.locator('[data-testid="prechat"]').isVisible(), false);
  assert.equal(await focused(visitor), "input", "the composer takes over");
  await visitor.keyboard.type("I have a question about my invoice");
  await visitor.keyboard.press("Enter");

  await item(agent, started.detail.conversationId).click();
  await agent.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "my invoice" }).waitFor();
  assert.equal(await contextItem(agent, "prechat._firstName").textContent(), "Grace");
  assert.equal(await contextItem(agent, "prechat._email").textContent(), "grace@example.com");
  assert.equal(await contextItem(agent, "prechat.Topic").textContent(), "Billing");

  // Reload: the same conversation resumes, without the form.
  await visitor.reload();
  await waitForEvent(visitor, "onEmbeddedMessagingConversationOpened");
  await visitor.locator('[data-testid="message"][data-role="EndUser"]', { hasText: "my invoice" }).waitFor();
  assert.equal(await visitor.locator('[data-testid="input"]').isVisible(), true);
  assert.equal(await visitor.locator('[data-testid="prechat"]').count(), 0, "never built for a resumed conversation");
  assert.equal((await visitor.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingPreChatLoaded"))).length, 0);
  assert.deepEqual(visitor.problems, []);
  assert.deepEqual(agent.problems, []);
});
