//! Builds the widget into `pkg/`: wasm-pack output plus the two loader shapes, compressed.
//!
//! `bootstrap.js` = glue + link (`src/link.js`) + loader in one IIFE, streaming the wasm from
//! beside the script under its content-hashed name (`embedded_messaging_bg.<hash16>.wasm`);
//! `bootstrap.min.js` is the same minified by terser (the file pages load).
//! `bootstrap.inline.js` = minified, with the wasm inlined as base64 and compiled synchronously;
//! built only so `cargo xtask bench` can compare the two shapes (see docs/loader.md).
//! Every served file gets a `.br` (quality 11) and a `.gz` (level 9) beside it, which the
//! server picks by `Accept-Encoding`.

use crate::cmd::{self, run};
use crate::setup::WASM_OPT;
use crate::shorten;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// wasm-pack's name for the wasm; kept in `pkg/` (its `package.json` lists it).
pub const WASM: &str = "embedded_messaging_bg.wasm";
const GLUE: &str = "embedded_messaging.js";
/// The line of `src/loader.js` naming the wasm; the bundle puts the hashed name in its place.
const WASM_NAME_LINE: &str = "var EM_WASM_FILE = \"embedded_messaging_bg.wasm\";";

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
    // Its URL changes with its bytes, so the server can let browsers keep it for a year.
    let hashed = hashed_wasm_name(&wasm);
    remove_stale_wasm(&pkg, &hashed)?;
    fs::write(pkg.join(&hashed), &wasm).map_err(|e| format!("pkg/{hashed}: {e}"))?;
    // The shared connection (`emLink`, called by the wasm) goes in the same IIFE as the glue.
    let loader = read(root.join("src/link.js"))?
        + &with_wasm_name(&read(root.join("src/loader.js"))?, &hashed)?;
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
    // bootstrap.inline.js too: the bench serves it to its pages and compares shapes as sent.
    for name in [
        "bootstrap.min.js",
        "bootstrap.js",
        "bootstrap.inline.js",
        "bootstrap.d.ts",
        hashed.as_str(),
        WASM,
    ] {
        compress_beside(&pkg.join(name))?;
    }
    println!("xtask: widget built into pkg/ (bootstrap.min.js + {hashed}, each with .br and .gz)");
    Ok(())
}

/// `embedded_messaging_bg.<first 16 hex digits of the SHA-256 of the wasm>.wasm`.
pub fn hashed_wasm_name(wasm: &[u8]) -> String {
    let hex: String = Sha256::digest(wasm)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("embedded_messaging_bg.{hex}.wasm")
}

/// The loader text with the wasm's file name replaced by `name`; an error if the line that
/// names it is missing or repeated (the bundle would fetch the wrong file).
fn with_wasm_name(loader: &str, name: &str) -> Result<String, String> {
    match loader.matches(WASM_NAME_LINE).count() {
        1 => Ok(loader.replacen(
            WASM_NAME_LINE,
            &format!("var EM_WASM_FILE = \"{name}\";"),
            1,
        )),
        n => Err(format!(
            "src/loader.js must hold `{WASM_NAME_LINE}` once (found {n}): the bundle puts the hashed wasm name there"
        )),
    }
}

/// Removes hashed wasm files (and their compressed copies) of earlier builds.
fn remove_stale_wasm(pkg: &Path, keep: &str) -> Result<(), String> {
    let entries = fs::read_dir(pkg).map_err(|e| format!("{}: {e}", pkg.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let hashed = name
            .strip_prefix("embedded_messaging_bg.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(hash, ext)| {
                hash.len() == 16
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
                    && ext.starts_with("wasm")
            });
        if hashed && !name.starts_with(keep) {
            fs::remove_file(entry.path()).map_err(|e| format!("pkg/{name}: {e}"))?;
        }
    }
    Ok(())
}

/// Writes `<file>.br` and `<file>.gz`, each only if smaller than the file (otherwise removes
/// a stale one, and the server sends the file as it is).
fn compress_beside(file: &Path) -> Result<(), String> {
    let bytes = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    for (ext, packed) in [("br", brotli(&bytes)?), ("gz", gzip(&bytes)?)] {
        let mut out = file.as_os_str().to_owned();
        out.push(".");
        out.push(ext);
        let out = Path::new(&out);
        let written = if packed.len() < bytes.len() {
            fs::write(out, &packed)
        } else {
            fs::remove_file(out).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
        };
        written.map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

/// gzip at level 9 (what the server sends to clients without brotli).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes)
        .and_then(|()| e.finish())
        .map_err(|e| format!("gzip: {e}"))
}

/// brotli at quality 11 with a 4 MiB window (what the server sends to browsers).
pub fn brotli(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)
        .map_err(|e| format!("brotli: {e}"))?;
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The wasm's URL changes whenever its bytes change, and only then (browsers keep it a year).
    fn hashed_name_follows_the_bytes() {
        let a = hashed_wasm_name(b"\0asm\x01\0\0\0");
        assert_eq!(a, hashed_wasm_name(b"\0asm\x01\0\0\0"));
        assert_ne!(a, hashed_wasm_name(b"\0asm\x01\0\0\0\0"));
        let hash = a
            .strip_prefix("embedded_messaging_bg.")
            .and_then(|r| r.strip_suffix(".wasm"))
            .unwrap_or_default();
        assert!(
            hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{a}"
        );
    }

    #[test]
    // The loader fetches the hashed name; a loader without the naming line fails the build.
    fn loader_gets_the_hashed_name() {
        let loader = format!("var a = 1;\n{WASM_NAME_LINE}\nfetch(EM_WASM_FILE);\n");
        let out = with_wasm_name(&loader, "embedded_messaging_bg.0123456789abcdef.wasm");
        assert_eq!(
            out.as_deref(),
            Ok(
                "var a = 1;\nvar EM_WASM_FILE = \"embedded_messaging_bg.0123456789abcdef.wasm\";\nfetch(EM_WASM_FILE);\n"
            )
        );
        assert!(with_wasm_name("fetch(x);", "y").is_err());
        assert!(with_wasm_name(&format!("{WASM_NAME_LINE}{WASM_NAME_LINE}"), "y").is_err());
    }

    #[test]
    // The real src/loader.js holds the naming line exactly once.
    fn real_loader_names_the_wasm_once() {
        let loader =
            std::fs::read_to_string(crate::cmd::root().join("src/loader.js")).unwrap_or_default();
        assert!(with_wasm_name(&loader, "x.wasm").is_ok());
    }
}
