// Shared pieces of the end-to-end tests: the real server binary on random loopback ports with a
// fresh SQLite file, Debian's Chromium through playwright-core, and a window-event recorder.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SERVER_BIN = process.env.EM_SERVER_BIN || join(ROOT, "target/debug/em-server");

export const ORG_ID = "00D000000000001";
export const DEPLOYMENT = "Demo_Deployment";
export const STORAGE_KEY = `embeddedMessaging:${ORG_ID}:${DEPLOYMENT}`;
export const AGENT = { username: "ada", credential: "demo-password", displayName: "Ada" };

/** Starts the real server; resolves once it printed its addresses. */
export async function startServer({ config = join(ROOT, "server/demo/deployments.toml"), dbDir, listen = "127.0.0.1:0", siteListen = "127.0.0.1:0" } = {}) {
  const dir = dbDir ?? mkdtempSync(join(tmpdir(), "em-e2e-"));
  const child = spawn(SERVER_BIN, [
    "--config", config,
    "--db", join(dir, "e2e.sqlite"),
    "--widget-dir", join(ROOT, "pkg"),
    "--site-dir", join(ROOT, "www"),
    "--listen", listen,
    "--site-listen", siteListen,
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } });
  let log = "";
  child.stderr.on("data", (d) => { log += d; });
  const urls = await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`server did not start in 20 s:\n${out}\n${log}`)), 20_000);
    child.on("exit", (code) => fail(new Error(`server exited with ${code}:\n${out}\n${log}`)));
    child.stdout.on("data", (d) => {
      out += d;
      const server = out.match(/^listening on (http:\/\/\S+)$/m);
      const site = out.match(/^site on (http:\/\/\S+)$/m);
      if (server && site) { clearTimeout(timer); ok({ url: server[1], siteUrl: site[1] }); }
    });
  });
  return {
    ...urls,
    dir,
    log: () => log,
    async stop({ keepDb = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once("exit", ok));
        child.kill("SIGTERM");
        await exited;
      }
      if (!keepDb) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The demo config with `[deployment.limits]` of Demo_Deployment set to `limits` (a TOML
 * inline-table body, e.g. `"messages_per_second = 1"`) and `tables` (whole TOML tables, e.g.
 * `"[server]\nreplay_page_entries = 20"`) appended, written to a temp file; returns its path.
 */
export function demoConfigWithLimits(limits, tables = "") {
  const demoDir = join(ROOT, "server/demo");
  const text = readFileSync(join(demoDir, "deployments.toml"), "utf8")
    .replace('name = "Demo_Deployment"\n', `name = "Demo_Deployment"\nlimits = { ${limits} }\n`)
    // Key files are named relative to the config's folder.
    .replaceAll('"keys/', `"${demoDir}/keys/`);
  const file = join(mkdtempSync(join(tmpdir(), "em-config-")), "deployments.toml");
  writeFileSync(file, `${text}\n${tables}\n`);
  return file;
}

/** Debian's Chromium, headless, contacting nothing but loopback. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run", "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
  });
}

export const EVENT_NAMES = [
  "onEmbeddedMessagingReady", "onEmbeddedMessagingInitSuccess", "onEmbeddedMessagingInitError",
  "onEmbeddedMessagingButtonCreated", "onEmbeddedMessagingButtonClicked",
  "onEmbeddedMessagingWindowMaximized", "onEmbeddedMessagingWindowMinimized", "onEmbeddedMessagingWindowClosed",
  "onEmbeddedMessagingConversationStarted", "onEmbeddedMessagingConversationOpened",
  "onEmbeddedMessagingConversationParticipantChanged", "onEmbeddedMessagingSessionStatusUpdate",
  "onEmbeddedMessageSent", "onEmbeddedMessageDelivered", "onEmbeddedMessageRead",
  "onEmbeddedMessagingConversationClosed", "onEmbeddedMessagingIdentityTokenExpired",
  "onEmbeddedMessagingBusinessHoursStarted", "onEmbeddedMessagingBusinessHoursEnded",
  "onEmbeddedMessageLinkClicked", "onEmbeddedMessagingConversationRouted",
];

/**
 * A visitor page that records every widget window event (name + detail) in `window.__events`
 * from before any page script runs, and collects console errors and page errors.
 */
export async function visitorPage(context) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if ((m.type() === "error" || m.type() === "warning") && !m.location().url.endsWith("/favicon.ico")) problems.push(`${m.type()}: ${m.text()} (${m.location().url})`); });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  await page.addInitScript((names) => {
    window.__events = [];
    for (const name of names) {
      window.addEventListener(name, (e) => window.__events.push({ name, detail: e.detail, at: performance.now() }));
    }
  }, EVENT_NAMES);
  page.problems = problems;
  return page;
}

/** Waits until `name` has been recorded `count` times; returns the recorded events of that name. */
export async function waitForEvent(page, name, count = 1, timeout = 10_000) {
  await page.waitForFunction(([n, c]) => window.__events.filter((e) => e.name === n).length >= c, [name, count], { timeout });
  return page.evaluate((n) => window.__events.filter((e) => e.name === n), name);
}

/** Signs an agent in at /console and goes Online. */
export async function agentConsole(context, serverUrl, agent = AGENT) {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  await page.goto(`${serverUrl}/console`);
  await page.getByTestId("console-username").fill(agent.username);
  await page.getByTestId("console-credential").fill(agent.credential);
  await page.getByTestId("console-signin").click();
  await page.getByTestId("console-presence").waitFor();
  if (!/online/i.test(await page.getByTestId("console-status").textContent())) {
    await page.getByTestId("console-presence").click();
  }
  await page.waitForFunction(() => /online/i.test(document.querySelector('[data-testid="console-status"]')?.textContent ?? ""));
  return page;
}
