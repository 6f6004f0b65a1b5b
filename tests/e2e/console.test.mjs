// The agent console in headless Chromium against the real server: sign in, receive a routed
// conversation with its context (pre-chat and hidden fields, page, bot variables), typing
// indicators both ways, reply, change presence, transfer to another agent, and end the session.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, agentConsole, ORG_ID, AGENT } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

/**
 * A visitor driven by a raw WebSocket from a page on the site origin (the browser sends the
 * site's Origin, as the widget would). Frames received are collected in `window.__frames`.
 */
async function rawVisitor(context, deployment, { context: ctx } = {}) {
  const page = await context.newPage();
  await page.goto(`${server.siteUrl}/index.html`);
  const wsUrl = `${server.url.replace(/^http/, "ws")}/embeddedservice/v1/ws?orgId=${ORG_ID}&esConfigName=${deployment}`;
  const conversationId = await page.evaluate(async ([url, ctx]) => {
    window.__frames = [];
    const ws = new WebSocket(url);
    window.__ws = ws;
    ws.onmessage = (e) => window.__frames.push(JSON.parse(e.data));
    await new Promise((ok) => { ws.onopen = ok; });
    const id = crypto.randomUUID();
    window.__say = (text) => ws.send(JSON.stringify({ type: "sendMessage", conversationId: id, entryId: crypto.randomUUID(), text, clientTimestamp: Date.now() }));
    ws.send(JSON.stringify({ type: "hello", protocolVersion: 1 }));
    ws.send(JSON.stringify({ type: "createConversation", conversationId: id }));
    if (ctx) ws.send(JSON.stringify({ type: "setContext", conversationId: id, ...ctx, page: { url: location.href, title: document.title } }));
    return id;
  }, [wsUrl, ctx ?? null]);
  page.say = (text) => page.evaluate((t) => window.__say(t), text);
  /** Waits for a received frame matching `pred` (a function source over `f`). */
  page.frame = (pred) => page.waitForFunction((p) => window.__frames.find(new Function("f", `return ${p}`)), pred, { timeout: 10_000 }).then((h) => h.jsonValue());
  return { page, conversationId };
}

const item = (page, id) => page.locator(`[data-testid="console-conversation"][data-conversation-id="${id}"]`);
const contextValue = (page, key) => page.locator(`[data-testid="console-context-item"][data-key="${key}"]`).textContent();

test("agent signs in, sees context, replies with typing, changes presence, transfers and ends", async () => {
  const ada = await agentConsole(await browser.newContext(), server.url);
  const grace = await agentConsole(await browser.newContext(), server.url, { username: "grace", credential: "demo-password" });

  // A billing question: the routing rule sends it to the billing queue, which only ada serves.
  const { page: visitor, conversationId: id } = await rawVisitor(await browser.newContext(), "Demo_Deployment", {
    context: { prechatFields: { Topic: "Billing" }, hiddenFields: { Plan: "Gold" } },
  });
  await visitor.say("I was charged twice");
  await item(ada, id).click();
  await ada.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "I was charged twice" }).waitFor();
  assert.equal(await contextValue(ada, "queue"), "billing");
  assert.equal(await contextValue(ada, "prechat.Topic"), "Billing");
  assert.equal(await contextValue(ada, "hidden.Plan"), "Gold");
  assert.match(await contextValue(ada, "page.url"), /index\.html/);
  assert.equal(await item(grace, id).count(), 0, "grace does not serve billing");

  // The visitor's typing shows in the console; the agent's typing reaches the visitor before the reply.
  await visitor.evaluate((id) => window.__ws.send(JSON.stringify({ type: "typing", conversationId: id, typing: true })), id);
  await ada.getByTestId("console-typing").filter({ hasText: "is typing" }).waitFor();
  await ada.getByTestId("console-input").pressSequentially("Let me check");
  const typing = await visitor.frame(`f.type === "typing" && f.typing`);
  assert.equal(typing.senderDisplayName, "Ada");
  await ada.getByTestId("console-send").click();
  const reply = await visitor.frame(`f.type === "entry" && f.entry.sender.role === "Agent"`);
  assert.equal(reply.entry.entryPayload.abstractMessage.staticContent.text, "Let me check");
  await visitor.frame(`f.type === "typing" && !f.typing`);

  // Presence: Busy keeps the conversation and shows in the header.
  await ada.getByTestId("console-presence-state").selectOption("Busy");
  await ada.waitForFunction(() => document.querySelector('[data-testid="console-status"]').textContent === "Busy");
  await ada.getByTestId("console-presence-state").selectOption("Online");
  await ada.waitForFunction(() => document.querySelector('[data-testid="console-status"]').textContent === "Online");

  // Transfer to grace: she gets the whole history; ada's copy is marked and read-only.
  await ada.getByTestId("console-transfer-target").selectOption("agent:grace");
  await ada.getByTestId("console-transfer").click();
  await item(grace, id).click();
  await grace.locator('[data-testid="console-message"][data-role="Agent"]', { hasText: "Let me check" }).waitFor();
  assert.equal(await contextValue(grace, "prechat.Topic"), "Billing");
  await item(ada, id).filter({ hasText: "Transferred" }).waitFor();
  assert.equal(await ada.getByTestId("console-input").isDisabled(), true);
  const moved = await visitor.frame(`f.type === "entry" && f.entry.entryPayload.entryType === "ParticipantChanged" && f.entry.entryPayload.entries.length === 2`);
  assert.deepEqual(moved.entry.entryPayload.entries.map((e) => [e.operation, e.participant.subject]), [["remove", "ada"], ["add", "grace"]]);

  // The visitor writes to grace now; then she ends the session.
  await visitor.say("thanks");
  await grace.locator('[data-testid="console-message"][data-role="EndUser"]', { hasText: "thanks" }).waitFor();
  await grace.getByTestId("console-end").click();
  await visitor.frame(`f.type === "entry" && f.entry.entryPayload.sessionStatus === "Ended"`);
  await grace.waitForFunction(() => document.querySelector('[data-testid="console-input"]').disabled);

  assert.deepEqual(ada.problems, []);
  assert.deepEqual(grace.problems, []);
});

test("the bot's part and its variables are in the console; unread counts while another conversation is open", async () => {
  const ada = await agentConsole(await browser.newContext(), server.url);
  const first = await rawVisitor(await browser.newContext(), "Demo_Deployment");
  await first.page.say("first conversation");
  await item(ada, first.conversationId).click();

  const { page: visitor, conversationId: id } = await rawVisitor(await browser.newContext(), "Demo_Bot");
  await visitor.say("Order status");
  await visitor.frame(`f.type === "entry" && f.entry.sender.role === "Chatbot" && /order number/.test(f.entry.entryPayload.abstractMessage?.staticContent?.text ?? "")`);
  await visitor.say("12345");
  await item(ada, id).waitFor();
  await visitor.say("are you there?");
  await item(ada, id).getByTestId("console-unread").waitFor();
  await item(ada, id).click();
  assert.equal(await item(ada, id).getByTestId("console-unread").count(), 0);
  await ada.locator('[data-testid="console-message"][data-role="Chatbot"]', { hasText: "order number" }).first().waitFor();
  assert.equal(await contextValue(ada, "var.orderNumber"), "12345");
  assert.deepEqual(ada.problems, []);
});

test("the console keeps only a session token: a reload reconnects without the form, sign-out shows it and voids the token", async () => {
  const ada = await agentConsole(await browser.newContext(), server.url);
  const readable = () => ada.evaluate(() => JSON.stringify({
    session: { ...sessionStorage },
    local: { ...localStorage },
    field: document.querySelector('[data-testid="console-credential"]').value,
  }));
  assert.equal((await readable()).includes(AGENT.credential), false, "no password in storage or the form");
  const saved = await ada.evaluate(() => JSON.parse(sessionStorage.getItem("em.console.session")));
  assert.equal(saved.username, AGENT.username);
  assert.match(saved.token, /^[A-Za-z0-9_-]{43}$/);

  // A reload signs in again with the token: no form, back Online.
  await ada.reload();
  await ada.waitForFunction(() => /online/i.test(document.querySelector('[data-testid="console-status"]').textContent));
  assert.equal(await ada.getByTestId("console-signin").isVisible(), false);
  assert.equal((await readable()).includes(AGENT.credential), false);

  // Sign-out: the form, nothing stored, and the server no longer takes the token.
  await ada.getByTestId("console-signout").click();
  await ada.getByTestId("console-signin").waitFor();
  assert.equal(await ada.evaluate(() => sessionStorage.getItem("em.console.session")), null);
  const answer = await ada.evaluate(([url, username, token]) => new Promise((done) => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", protocolVersion: 1, username, sessionToken: token }));
    ws.onmessage = (e) => { done(JSON.parse(e.data)); ws.close(); };
  }), [`${server.url.replace(/^http/, "ws")}/agent/ws`, AGENT.username, saved.token]);
  assert.equal(answer.code, "unauthorized");
  await ada.reload();
  await ada.getByTestId("console-signin").waitFor();
  assert.deepEqual(ada.problems, []);
});
