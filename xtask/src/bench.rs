//! `cargo xtask bench`: payload sizes (raw, gzip, brotli), the bytes the server really sends
//! Chromium, time to Ready in Chromium, abuse figures, and persisted messages and delivery
//! latency on SQLite and on 1 to 3 PostgreSQL nodes (`bench/nodes.rs`).
//!
//! Figures to watch against the budgets in DESIGN.md; never asserted (machines are noisy).

use crate::cmd;
use crate::{bundle, setup};
use std::process::Command;

mod nodes;

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
    println!();
    nodes::run()
}

/// The demo's deployments file, to be written to a temporary folder: its key files, named
/// relative to the config's folder, point at the demo's.
pub(crate) fn demo_config() -> Result<String, String> {
    let demo = cmd::root().join("server/demo");
    let text = std::fs::read_to_string(demo.join("deployments.toml"))
        .map_err(|e| format!("server/demo/deployments.toml: {e}"))?;
    Ok(text.replace("\"keys/", &format!("\"{}/keys/", demo.display())))
}
