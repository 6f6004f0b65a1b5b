//! Builds the widget into `pkg/`: wasm-pack output plus the two loader shapes.
//!
//! `bootstrap.js` = glue + link (`src/link.js`) + loader in one IIFE, streaming the wasm from
//! beside the script;
//! `bootstrap.min.js` is the same minified by terser (the file pages load).
//! `bootstrap.inline.js` = minified, with the wasm inlined as base64 and compiled synchronously;
//! built only so `cargo xtask bench` can compare the two shapes (see docs/loader.md).

use crate::cmd::{self, run};
use crate::setup::WASM_OPT;
use crate::shorten;
use base64::Engine;
use std::fs;
use std::process::Command;

pub const WASM: &str = "embedded_messaging_bg.wasm";
const GLUE: &str = "embedded_messaging.js";

pub fn build() -> Result<(), String> {
    let root = cmd::root();
    let pkg = root.join("pkg");
    // wasm-opt runs separately: wasm-pack would silently skip it if it could not find one.
    run(Command::new("wasm-pack").args([
        "build",
        "--target",
        "no-modules",
        "--profile",
        "widget",
        "--no-opt",
        "--mode",
        "no-install",
        "--out-dir",
        "pkg",
        "--out-name",
        "embedded_messaging",
    ]))?;
    let wasm_path = pkg.join(WASM);
    run(Command::new(WASM_OPT)
        .args([
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ])
        .arg(&wasm_path)
        .arg("-o")
        .arg(&wasm_path))?;

    let read =
        |p: std::path::PathBuf| fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
    let (wasm, glue) = shorten::shorten(
        &fs::read(&wasm_path).map_err(|e| format!("{}: {e}", wasm_path.display()))?,
        &read(pkg.join(GLUE))?,
    )?;
    fs::write(&wasm_path, &wasm).map_err(|e| format!("{}: {e}", wasm_path.display()))?;
    fs::write(pkg.join(GLUE), &glue).map_err(|e| format!("pkg/{GLUE}: {e}"))?;
    // The shared connection (`emLink`, called by the wasm) goes in the same IIFE as the glue.
    let loader = read(root.join("src/link.js"))? + &read(root.join("src/loader.js"))?;
    let inline = format!(
        "var EM_WASM_BASE64 = \"{}\";\n",
        base64::engine::general_purpose::STANDARD.encode(&wasm)
    );
    let write = |name: &str, body: String| {
        fs::write(pkg.join(name), body).map_err(|e| format!("pkg/{name}: {e}"))
    };
    write("bootstrap.js", wrap(&glue, "", &loader))?;
    minify("bootstrap.js", "bootstrap.min.js")?;
    write("bootstrap.inline.js", wrap(&glue, &inline, &loader))?;
    minify("bootstrap.inline.js", "bootstrap.inline.js")?;
    // Types of the page-facing global and its events, served next to the script.
    fs::copy(root.join("src/bootstrap.d.ts"), pkg.join("bootstrap.d.ts"))
        .map_err(|e| format!("src/bootstrap.d.ts: {e}"))?;
    println!("xtask: widget built into pkg/ (bootstrap.min.js + {WASM})");
    Ok(())
}

/// Minifies with terser from `xtask/js` (installed by setup). Everything is inside one IIFE, so
/// mangling renames only local names; the page-facing global keeps its name.
fn minify(input: &str, output: &str) -> Result<(), String> {
    let root = cmd::root();
    run(Command::new("node")
        .arg(root.join("xtask/js/node_modules/terser/bin/terser"))
        .arg(root.join("pkg").join(input))
        .args(["--compress", "--mangle", "--ecma", "2017", "--output"])
        .arg(root.join("pkg").join(output)))
}

/// One IIFE so that neither the glue's `wasm_bindgen` nor the loader's helpers become globals.
fn wrap(glue: &str, prelude: &str, loader: &str) -> String {
    format!("(function () {{\n{glue}\n{prelude}{loader}\n}})();\n")
}
