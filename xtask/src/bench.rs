//! `cargo xtask bench`: payload sizes (raw, gzip, brotli), the bytes the server really sends
//! Chromium, and time to Ready in Chromium.
//!
//! Figures to watch against the budgets in DESIGN.md; never asserted (machines are noisy).

use crate::cmd;
use crate::{bundle, setup};
use std::io::Write;
use std::process::Command;

fn run_sizes() -> Result<(), String> {
    let pkg = cmd::root().join("pkg");
    println!("payload, offline (bytes)        raw     gzip -9   brotli -q 11");
    let row = |name: &str, bytes: &[u8]| -> Result<Vec<usize>, String> {
        let sizes = vec![
            bytes.len(),
            bundle::gzip(bytes)?.len(),
            bundle::brotli(bytes)?.len(),
        ];
        println!(
            "  {name:<26} {:>9} {:>9} {:>9}",
            sizes[0], sizes[1], sizes[2]
        );
        Ok(sizes)
    };
    let read = |name: &str| std::fs::read(pkg.join(name)).map_err(|e| format!("pkg/{name}: {e}"));
    let bootstrap = read("bootstrap.min.js")?;
    let glue = read("embedded_messaging.js")?;
    let loader = std::fs::read(cmd::root().join("src/loader.js")).map_err(|e| e.to_string())?;
    row("loader (src/loader.js)", &loader)?;
    row("glue (wasm-bindgen)", &glue)?;
    row("bootstrap.js (unminified)", &read("bootstrap.js")?)?;
    let script = row("bootstrap.min.js (minified)", &bootstrap)?;
    let wasm_bytes = read(bundle::WASM)?;
    let wasm = row("wasm (name.<hash16>.wasm)", &wasm_bytes)?;
    let total: Vec<usize> = script.iter().zip(wasm).map(|(a, b)| a + b).collect();
    println!(
        "  {:<26} {:>9} {:>9} {:>9}   (budget: 60,000 B on the wire, measured below)",
        "total streamed", total[0], total[1], total[2]
    );
    row("bootstrap.inline.js", &read("bootstrap.inline.js")?)?;
    Ok(())
}

pub fn run() -> Result<(), String> {
    setup::toolchain()?;
    setup::browser()?;
    setup::postgres()?;
    bundle::build()?;
    println!();
    run_sizes()?;
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "em-server",
        "--bins",
        "--examples",
    ]))?;
    println!();
    let root = cmd::root();
    cmd::run(
        Command::new("node")
            .arg("tests/e2e/bench/wire.mjs")
            .env("EM_SERVER_BIN", root.join("target/release/em-server")),
    )?;
    println!();
    cmd::run(
        Command::new("node")
            .arg("tests/e2e/bench/ready.mjs")
            .env("EM_SERVER_BIN", root.join("target/release/em-server")),
    )?;
    println!();
    cmd::run(
        Command::new("node")
            .arg("tests/e2e/bench/restart.mjs")
            .env("EM_SERVER_BIN", root.join("target/release/em-server")),
    )?;
    println!();
    crate::bench_abuse::run()?;
    persisted_throughput()
}

/// The demo config with Demo_Deployment's `[deployment.limits]` lifted: the load generator's
/// visitors all come from 127.0.0.1 and each sends far faster than a person, and the figure is
/// the server's throughput, not one address's quota (the abuse bench measures the limits).
fn lifted_demo_config() -> Result<String, String> {
    let lifted = "name = \"Demo_Deployment\"\nlimits = { connections_per_address = 100000, \
        new_visitors_per_minute = 100000, frames_per_second = 1000000, \
        messages_per_second = 1000000, open_conversations = 100000, conversations_per_hour = 100000 }\n";
    Ok(demo_config()?.replacen("name = \"Demo_Deployment\"\n", lifted, 1))
}

/// The demo's deployments file, to be written to a temporary folder: its key files, named
/// relative to the config's folder, point at the demo's.
pub(crate) fn demo_config() -> Result<String, String> {
    let demo = cmd::root().join("server/demo");
    let text = std::fs::read_to_string(demo.join("deployments.toml"))
        .map_err(|e| format!("server/demo/deployments.toml: {e}"))?;
    Ok(text.replace("\"keys/", &format!("\"{}/keys/", demo.display())))
}

/// Persisted messages per second and ack latency with the server's durability setting
/// (SQLite WAL, `synchronous=FULL`, group commit): `server/examples/load.rs` against a fresh
/// release server on a temporary database.
fn persisted_throughput() -> Result<(), String> {
    let root = cmd::root();
    let dir = std::env::temp_dir().join(format!("em-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("deployments.toml");
    std::fs::write(&config, lifted_demo_config()?)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let (mut server, url) = crate::bench_abuse::start(&config, &dir.join("bench.sqlite"))?;
    println!(
        "persisted messages (SQLite WAL, synchronous=FULL, group commit; budget ≥ 20,000/s, p99 ≤ 50 ms):"
    );
    let result = [(20, 200), (100, 100)]
        .iter()
        .try_for_each(|(visitors, messages)| {
            print!("  ");
            std::io::stdout().flush().ok();
            cmd::run(
                Command::new(root.join("target/release/examples/load")).args([
                    url.as_str(),
                    &visitors.to_string(),
                    &messages.to_string(),
                ]),
            )
        });
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
