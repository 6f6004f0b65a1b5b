// The TypeScript declarations shipped in pkg/ type-check page code written against them, reject
// a wrong use, and are served next to the script.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startServer } from "./harness.mjs";

const TSC = join(ROOT, "tests/e2e/node_modules/typescript/bin/tsc");
const tsc = (...args) => execFileSync(process.execPath, [TSC, ...args], { stdio: "pipe" });

test("pkg/bootstrap.d.ts type-checks real page code under strict TypeScript", () => {
  // Throws with tsc's diagnostics (non-zero exit) if a declaration is wrong or missing.
  tsc("-p", join(ROOT, "tests/e2e/types/tsconfig.json"));
});

test("a wrong use of the API is a type error", () => {
  const dir = mkdtempSync(join(tmpdir(), "em-tsc-"));
  const file = join(dir, "bad.ts");
  writeFileSync(file, `/// <reference path="${join(ROOT, "pkg/bootstrap.d.ts")}" />
window.embeddedservice_bootstrap.init("00D000000000001", "Demo");
window.addEventListener("onEmbeddedMessagingButtonCreated", (e) => e.detail.conversationId);
export {};
`);
  let output = "";
  try {
    tsc("--noEmit", "--strict", "--lib", "ES2017,DOM", file);
  } catch (e) {
    output = String(e.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(output, /Expected 4 arguments/);
  assert.match(output, /conversationId/);
});

test("the declarations are served next to the script", async () => {
  const server = await startServer();
  try {
    const res = await fetch(`${server.url}/ESWDemoDeployment1700000000000/assets/js/bootstrap.d.ts`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /interface EmbeddedServiceBootstrap/);
  } finally {
    await server.stop();
  }
});
