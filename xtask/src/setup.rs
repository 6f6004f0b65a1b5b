//! Installs what a fresh machine lacks, each step skipped when already satisfied.
//!
//! Only package registries are reachable here (crates.io, npm, Debian), so every tool comes
//! from one of them: nothing downloads a browser or a prebuilt binary from elsewhere.

use crate::cmd::{self, output, run};
use std::path::Path;
use std::process::Command;

/// wasm-opt from npm's binaryen: Debian's binaryen (108) cannot parse current wasm-bindgen output.
const BINARYEN: &str = "binaryen@132.0.0";
const MIN_WASM_OPT: u32 = 116;
pub const WASM_OPT: &str = "/usr/local/bin/wasm-opt";

/// Everything needed to build the widget.
pub fn toolchain() -> Result<(), String> {
    wasm_target()?;
    wasm_bindgen_cli()?;
    wasm_pack()?;
    wasm_opt()?;
    js_tools()
}

/// terser, pinned in `xtask/js/package-lock.json`.
fn js_tools() -> Result<(), String> {
    let dir = cmd::root().join("xtask/js");
    if dir.join("node_modules/terser").exists() {
        return Ok(());
    }
    require(
        "npm",
        "Node.js and npm (Debian: apt-get install nodejs npm)",
    )?;
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir))
}

fn wasm_target() -> Result<(), String> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// The CLI must match the `wasm-bindgen` crate in Cargo.lock exactly, or the generated glue and
/// the test runner refuse the binary (and wasm-pack would silently build another one).
fn wasm_bindgen_cli() -> Result<(), String> {
    let wanted = locked_version("wasm-bindgen")?;
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(wanted.as_str()) {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-bindgen-cli {wanted} (a few minutes, once)");
    // Not `--locked`: its lockfile pins a webpki-roots release the reachable registry lacks.
    run(cmd::cargo().args(["install", "wasm-bindgen-cli", "--version", &wanted]))
}

fn wasm_pack() -> Result<(), String> {
    if output("wasm-pack", &["--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-pack (a few minutes, once)");
    run(cmd::cargo().args(["install", "wasm-pack", "--locked"]))
}

fn wasm_opt() -> Result<(), String> {
    let version = output(WASM_OPT, &["--version"]).and_then(|v| {
        v.split_whitespace()
            .nth(2)
            .and_then(|n| n.parse::<u32>().ok())
    });
    if version.is_some_and(|v| v >= MIN_WASM_OPT) {
        return Ok(());
    }
    require(
        "npm",
        "Node.js and npm (Debian: apt-get install nodejs npm)",
    )?;
    run(Command::new("npm").args(["install", "-g", "--prefix", "/usr/local", BINARYEN]))
}

/// rustfmt and clippy, which `cargo xtask test` runs before the tests.
pub fn lint_tools() -> Result<(), String> {
    let have = |tool: &str| output("cargo", &[tool, "--version"]).is_some();
    if have("fmt") && have("clippy") {
        return Ok(());
    }
    run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))
}

/// Debian's Chromium and its driver, plus the end-to-end node modules.
pub fn browser() -> Result<(), String> {
    if !Path::new("/usr/bin/chromium").exists() || !Path::new("/usr/bin/chromedriver").exists() {
        if output("id", &["-u"]).as_deref() != Some("0") {
            return Err(
                "Chromium is missing: run `apt-get install chromium chromium-driver` as root"
                    .into(),
            );
        }
        eprintln!("xtask: installing Debian's chromium and chromium-driver");
        // `update` first: without it apt may pick an older Chromium from the main suite.
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "install",
                "-y",
                "-q",
                "-o",
                "DPkg::Lock::Timeout=300",
                "chromium",
                "chromium-driver",
            ]))?;
    }
    require(
        "node",
        "Node.js 18 or newer (Debian: apt-get install nodejs npm)",
    )?;
    let e2e = cmd::root().join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e))?;
    }
    Ok(())
}

/// Debian's PostgreSQL, whose `initdb` and `pg_ctl` the server tests and the bench run to start
/// throwaway clusters (`server/tests/support/postgres.rs`); not needed when
/// `EM_TEST_DATABASE_URL` names a server to use instead.
pub fn postgres() -> Result<(), String> {
    if postgres_installed()
        || std::env::var_os("EM_TEST_DATABASE_URL").is_some_and(|u| !u.is_empty())
    {
        return Ok(());
    }
    if output("id", &["-u"]).as_deref() != Some("0") {
        return Err("PostgreSQL is missing: run `apt-get install postgresql` as root".into());
    }
    eprintln!("xtask: installing Debian's postgresql");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args([
            "install",
            "-y",
            "-q",
            "-o",
            "DPkg::Lock::Timeout=300",
            "postgresql",
        ]))
}

/// An `initdb` where the tests look for one: Debian's versioned directories, then the PATH.
fn postgres_installed() -> bool {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("bin/initdb").is_file());
    debian
        || std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("initdb").is_file()))
}

fn require(program: &str, what: &str) -> Result<(), String> {
    output(program, &["--version"])
        .map(|_| ())
        .ok_or_else(|| format!("{what} is required"))
}

/// The version of `name` recorded in Cargo.lock.
pub fn locked_version(name: &str) -> Result<String, String> {
    let lock = std::fs::read_to_string(cmd::root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{name} is not in Cargo.lock"))?
        + needle.len();
    let end = lock[start..].find('"').ok_or("Cargo.lock is malformed")?;
    Ok(lock[start..start + end].to_string())
}
