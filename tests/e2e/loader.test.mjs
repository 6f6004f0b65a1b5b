// The loader as pages really use it: script in <head>, bad init arguments, a second init,
// the script included twice, assets fetched from the script's own URL, compressed and cached.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, visitorPage, waitForEvent } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

async function open(path) {
  const context = await browser.newContext();
  const page = await visitorPage(context);
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(`${server.siteUrl}/compat/${path}`);
  return { page, context, requests };
}

test("script in <head>: the global exists at once, the button appears once <body> exists", async () => {
  const { page, context, requests } = await open("script-in-head.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.locator("#embeddedMessagingConversationButton").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => window.__globalAtScriptRun), "object");
  // The wasm comes from beside the script (its own path prefix), not from siteURL.
  const wasm = requests.filter((u) => u.endsWith(".wasm"));
  assert.equal(wasm.length, 1);
  assert.ok(wasm[0].startsWith(`${server.url}/ESWHeadPage1700000000000/assets/js/`), wasm[0]);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the page gets the widget as shipped: brotli, the wasm under its content hash and cached for a year", async () => {
  // Proves Chromium receives compressed files (Content-Encoding on the wasm response), the
  // wasm from its hashed URL with year-long caching, and the script revalidated by ETag.
  const context = await browser.newContext();
  const page = await visitorPage(context);
  const responses = [];
  page.on("response", (r) => responses.push(r));
  await page.goto(`${server.siteUrl}/compat/script-in-head.html`);
  await waitForEvent(page, "onEmbeddedMessagingReady");
  const wasm = responses.filter((r) => r.url().endsWith(".wasm"));
  assert.equal(wasm.length, 1);
  assert.match(wasm[0].url(), /\/assets\/js\/embedded_messaging_bg\.[0-9a-f]{16}\.wasm$/);
  const w = await wasm[0].allHeaders();
  assert.equal(w["content-encoding"], "br");
  assert.equal(w["content-type"], "application/wasm");
  assert.equal(w["cache-control"], "public, max-age=31536000, immutable");
  assert.equal(w["access-control-allow-origin"], "*");
  assert.ok((await wasm[0].request().sizes()).responseBodySize < (await wasm[0].body()).length, "fewer bytes sent than the wasm holds");
  const script = responses.find((r) => /\/bootstrap\.min\.js$/.test(r.url()));
  const s = await script.allHeaders();
  assert.equal(s["content-encoding"], "br");
  assert.equal(s["cache-control"], "no-cache");
  assert.match(s.etag ?? "", /^"[0-9a-f]+"$/);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a wasm that cannot be fetched fires InitError naming the hashed file, application/wasm and CORS", async () => {
  // Proves a backend that serves the script but not the wasm (e.g. without CORS) is told what to fix.
  const context = await browser.newContext();
  const page = await visitorPage(context);
  await page.route(/\.wasm$/, (route) => route.abort("accessdenied"));
  await page.goto(`${server.siteUrl}/compat/script-in-head.html`);
  const [err] = await waitForEvent(page, "onEmbeddedMessagingInitError");
  assert.equal(err.detail.code, "wasm_load_failed");
  assert.match(err.detail.message, /embedded_messaging_bg\.[0-9a-f]{16}\.wasm/);
  assert.match(err.detail.message, /application\/wasm/);
  assert.match(err.detail.message, /Access-Control-Allow-Origin/);
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});

test("invalid init arguments throw, log which argument is wrong, and fire InitError", async () => {
  const { page, context } = await open("invalid-init.html");
  const results = await page.waitForFunction(() => window.__results?.length === 4 && window.__results).then((h) => h.jsonValue());
  for (const r of results) {
    assert.equal(r.threw, true, `${r.case} throws`);
    assert.match(r.message, /embeddedservice_bootstrap\.init/, `${r.case} names the method`);
  }
  assert.match(results.find((r) => r.case === "orgId").message, /orgId/);
  assert.match(results.find((r) => r.case === "scrt2URL").message, /scrt2URL/);
  const errors = await waitForEvent(page, "onEmbeddedMessagingInitError", 4);
  assert.ok(errors.every((e) => typeof e.detail.code === "string" && typeof e.detail.message === "string"));
  assert.ok(page.problems.some((p) => /orgId/.test(p)), "the console says what is wrong");
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});

test("a second init is refused with a console message and does not break the first", async () => {
  const { page, context } = await open("double-init.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.waitForTimeout(200);
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 1);
  assert.ok(page.problems.some((p) => /already initialized/.test(p)), page.problems.join("\n"));
  assert.equal(await page.evaluate(() => window.__secondInitThrew), false);
  await context.close();
});

test("the script included twice defines one widget and says so", async () => {
  const { page, context } = await open("script-twice.html");
  await waitForEvent(page, "onEmbeddedMessagingReady");
  await page.waitForTimeout(200);
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 1);
  assert.equal(await page.evaluate(() => window.__events.filter((e) => e.name === "onEmbeddedMessagingReady").length), 1);
  assert.ok(page.problems.some((p) => /loaded twice/i.test(p)), page.problems.join("\n"));
  await context.close();
});

test("an unpublished deployment shows no button and says it is not published", async () => {
  const { page, context } = await open("unpublished-deployment.html");
  const [err] = await waitForEvent(page, "onEmbeddedMessagingInitError");
  assert.equal(err.detail.code, "deployment_unpublished");
  assert.ok(page.problems.some((p) => /Demo_Unpublished.*not published/.test(p)), page.problems.join("\n"));
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});

test("a page on an origin the deployment does not allow shows no button and names the origin", async () => {
  const { page, context } = await open("origin-not-allowed.html");
  const [err] = await waitForEvent(page, "onEmbeddedMessagingInitError");
  assert.equal(err.detail.code, "origin_not_allowed");
  const origin = new URL(server.siteUrl).origin;
  assert.ok(page.problems.some((p) => p.includes(origin) && /Demo_Elsewhere.*allowed origins/.test(p)), page.problems.join("\n"));
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});

test("an unreachable messaging server shows no button and says which URL to check", async () => {
  const { page, context } = await open("server-unreachable.html");
  const [err] = await waitForEvent(page, "onEmbeddedMessagingInitError");
  assert.equal(err.detail.code, "server_unreachable");
  assert.ok(page.problems.some((p) => p.includes("http://127.0.0.1:9") && /scrt2URL/.test(p)), page.problems.join("\n"));
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});

test("an unknown deployment shows no button and says why in the console", async () => {
  const { page, context } = await open("unknown-deployment.html");
  const [err] = await waitForEvent(page, "onEmbeddedMessagingInitError");
  assert.equal(err.detail.code, "unknown_deployment");
  assert.ok(page.problems.some((p) => /No_Such_Deployment/.test(p)), page.problems.join("\n"));
  assert.equal(await page.locator("#embeddedMessagingConversationButton").count(), 0);
  await context.close();
});
