// A fault-injecting TCP proxy on 127.0.0.1 for the end-to-end tests: forwards every connection
// to the server and, driven by a seeded generator, cuts connections (FIN or RST), stalls a
// direction, and delays or splits chunks. `close()` stops it and every connection it carries.
import net from "node:net";

/** mulberry32: a tiny seeded generator, so a failing run can be replayed from its seed. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Faults per forwarded chunk (probabilities) and their durations in ms; see `startProxy`. */
export const CHAOS = {
  lifetimeMs: [1500, 6000], // every connection is cut after a random lifetime, traffic or not
  cut: 0.004,
  stall: 0.01, stallMs: [100, 1500],
  delay: 0.1, delayMs: [1, 20],
  split: 0.05,
};

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Server → client WebSocket mangling, for entry frames only: `duplicate` sends an `entry` frame
 * twice, `swap` sends it after the entry frame that follows it in the same chunk. (TCP never
 * does this on one connection; it stands for what a client sees across reconnects, replays and
 * tabs, where an entry can arrive twice or late.) Returns a chunk → chunks transform.
 */
function entryMangler(r, frames, stats, on) {
  let mode = "head"; // the HTTP response head, then "ws" after a 101, else "raw"
  let buf = Buffer.alloc(0);
  const isEntry = (f, off) => f.subarray(off, off + 20).toString("latin1").replace(/\s/g, "").startsWith('{"type":"entry"');
  return (chunk) => {
    if (mode === "raw") return [chunk];
    buf = Buffer.concat([buf, chunk]);
    const out = [];
    if (mode === "head") {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return out;
      mode = buf.subarray(0, 12).toString("latin1") === "HTTP/1.1 101" ? "ws" : "raw";
      out.push(buf.subarray(0, end + 4));
      buf = buf.subarray(end + 4);
      if (mode === "raw") { if (buf.length) out.push(buf); buf = Buffer.alloc(0); return out; }
    }
    const complete = []; // [frame, is an unfragmented entry text frame]
    for (;;) {
      if (buf.length < 2) break;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf[1] & 0x80) off += 4; // masked: never from a server, handled anyway
      if (buf.length < off + len) break;
      const frame = Buffer.from(buf.subarray(0, off + len));
      buf = buf.subarray(off + len);
      complete.push([frame, frame[0] === 0x81 && !(frame[1] & 0x80) && isEntry(frame, off)]);
    }
    for (let i = 0; i < complete.length; i++) {
      const [frame, entry] = complete[i];
      if (entry && on() && complete[i + 1]?.[1] && r() < frames.swap) {
        stats.swaps += 1;
        out.push(complete[i + 1][0], frame);
        i += 1;
        continue;
      }
      out.push(frame);
      if (entry && on() && r() < frames.duplicate) { stats.duplicates += 1; out.push(frame); }
    }
    return out;
  };
}

/**
 * Listens on 127.0.0.1:0 in front of `upstream` (a URL such as `http://127.0.0.1:1234`).
 * Faults start off; `setFaults(true)` turns them on (e.g. once the page has loaded its assets).
 */
export async function startProxy({ upstream, seed, faults = CHAOS, frames = null }) {
  let target = new URL(upstream);
  const rnd = seededRandom(seed);
  const between = (r, [lo, hi]) => lo + Math.floor(r() * (hi - lo + 1));
  const stats = { connections: 0, cuts: 0, stalls: 0, delays: 0, splits: 0, bytes: 0, duplicates: 0, swaps: 0 };
  const open = new Set();
  let enabled = false;
  let closed = false;

  const server = net.createServer((client) => {
    if (closed) return client.destroy();
    stats.connections += 1;
    // Each connection gets its own generator, derived from the proxy's in accept order.
    const r = seededRandom(Math.floor(rnd() * 2 ** 32));
    const upstreamSocket = net.connect({ host: target.hostname, port: Number(target.port) });
    client.setNoDelay(true);
    upstreamSocket.setNoDelay(true);
    const conn = { dead: false, timer: null };
    const close = () => {
      if (conn.dead) return;
      conn.dead = true;
      clearTimeout(conn.timer);
      open.delete(conn);
      client.destroy();
      upstreamSocket.destroy();
    };
    conn.close = close;
    conn.cut = () => {
      if (conn.dead) return;
      stats.cuts += 1;
      if (r() < 0.5) {
        // RST instead of FIN: the peer sees a reset, not a clean close.
        for (const s of [client, upstreamSocket]) {
          try { s.resetAndDestroy(); } catch { /* not connected yet: destroy() below */ }
        }
      }
      close();
    };
    open.add(conn);
    client.on("error", close);
    upstreamSocket.on("error", close);
    client.on("close", close);
    upstreamSocket.on("close", close);
    conn.arm = () => {
      if (!enabled || !faults.lifetimeMs || conn.timer || conn.dead) return;
      conn.timer = setTimeout(() => { conn.timer = null; if (enabled) conn.cut(); }, between(r, faults.lifetimeMs));
    };
    conn.arm();
    pump(client, upstreamSocket, seededRandom(Math.floor(r() * 2 ** 32)), conn);
    const down = seededRandom(Math.floor(r() * 2 ** 32));
    pump(upstreamSocket, client, down, conn, frames && entryMangler(down, frames, stats, () => enabled));
  });

  /** Forwards `from` → `to` in order, one chunk at a time, with faults between chunks. */
  function pump(from, to, r, conn, mangle = null) {
    const queue = [];
    let busy = false;
    const END = Symbol("end");
    from.on("data", (chunk) => {
      stats.bytes += chunk.length;
      if (mangle) queue.push(...mangle(chunk).filter((c) => c.length));
      else queue.push(chunk);
      if (queue.length > 64) from.pause();
      drain();
    });
    from.on("end", () => { queue.push(END); drain(); });
    async function drain() {
      if (busy) return;
      busy = true;
      while (queue.length && !conn.dead) {
        let chunk = queue.shift();
        if (chunk === END) { to.end(); break; }
        if (enabled) {
          if (r() < faults.cut) { conn.cut(); break; }
          if (r() < faults.stall) { stats.stalls += 1; await sleep(between(r, faults.stallMs)); }
          else if (r() < faults.delay) { stats.delays += 1; await sleep(between(r, faults.delayMs)); }
          if (chunk.length > 1 && r() < faults.split) {
            stats.splits += 1;
            const at = between(r, [1, chunk.length - 1]);
            if (conn.dead) break;
            to.write(chunk.subarray(0, at));
            await sleep(between(r, [1, 5]));
            chunk = chunk.subarray(at);
          }
        }
        if (conn.dead) break;
        if (!conn.blackholed) to.write(chunk);
        if (queue.length < 16) from.resume();
      }
      busy = false;
    }
  }

  await new Promise((ok, fail) => { server.once("error", fail); server.listen(0, "127.0.0.1", ok); });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    setFaults(on) {
      enabled = on;
      // Connections opened while faults were off get their lifetime now.
      for (const c of open) if (on) c.arm(); else { clearTimeout(c.timer); c.timer = null; }
    },
    /** Where new connections go (e.g. a restarted server on another port). */
    setUpstream(url) { target = new URL(url); },
    /**
     * From now on, every connection open now silently swallows all traffic both ways and is
     * never closed by the proxy: a peer that vanished without a FIN. New connections are normal.
     */
    blackholeOpen() { for (const c of open) c.blackholed = true; },
    /** Cuts every open connection now. */
    cutAll() { for (const c of [...open]) c.cut(); },
    async close() {
      closed = true;
      enabled = false;
      for (const c of [...open]) c.close();
      await new Promise((ok) => server.close(ok));
    },
  };
}
