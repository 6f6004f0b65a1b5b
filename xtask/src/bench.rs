//! `cargo xtask bench`: payload sizes (raw, gzip, brotli) and time to Ready in Chromium.
//!
//! Figures to watch against the budgets in DESIGN.md; never asserted (machines are noisy).

use crate::cmd;
use crate::{bundle, setup};
use std::io::Write;
use std::process::Command;

fn run_sizes() -> Result<(), String> {
    let pkg = cmd::root().join("pkg");
    println!("payload (bytes)                 raw     gzip -9   brotli -q 11");
    let row = |name: &str, bytes: &[u8]| {
        let sizes = [bytes.len(), gzip(bytes), brotli(bytes)];
        println!("  {name:<26} {:>9} {:>9} {:>9}", sizes[0], sizes[1], sizes[2]);
        sizes
    };
    let read = |name: &str| std::fs::read(pkg.join(name)).map_err(|e| format!("pkg/{name}: {e}"));
    let bootstrap = read("bootstrap.min.js")?;
    let glue = read("embedded_messaging.js")?;
    let loader = std::fs::read(cmd::root().join("src/loader.js")).map_err(|e| e.to_string())?;
    row("loader (src/loader.js)", &loader);
    row("glue (wasm-bindgen)", &glue);
    row("bootstrap.js (unminified)", &read("bootstrap.js")?);
    let script = row("bootstrap.min.js (minified)", &bootstrap);
    let wasm = row(bundle::WASM, &read(bundle::WASM)?);
    let total: Vec<usize> = script.iter().zip(wasm).map(|(a, b)| a + b).collect();
    println!("  {:<26} {:>9} {:>9} {:>9}   (budget: 60 KB brotli)", "total streamed", total[0], total[1], total[2]);
    row("bootstrap.inline.js", &read("bootstrap.inline.js")?);
    Ok(())
}

pub fn run() -> Result<(), String> {
    setup::toolchain()?;
    setup::browser()?;
    bundle::build()?;
    println!();
    run_sizes()?;
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "em-server"]))?;
    println!();
    let root = cmd::root();
    cmd::run(Command::new("node")
        .arg("tests/e2e/bench/ready.mjs")
        .env("EM_SERVER_BIN", root.join("target/release/em-server")))
}

fn gzip(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("in-memory write");
    e.finish().expect("in-memory write").len()
}

fn brotli(bytes: &[u8]) -> usize {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("in-memory write");
    out.len()
}
