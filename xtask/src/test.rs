//! `cargo xtask test`: every layer of tests, then one closing line with the totals.

use crate::cmd::{self, describe};
use crate::{bundle, setup};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Test counts read from the runners' own summary lines.
#[derive(Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
}

pub fn run() -> Result<(), String> {
    setup::toolchain()?;
    setup::lint_tools()?;
    setup::browser()?;
    setup::postgres()?;
    bundle::build()?;
    let mut total = Counts::default();
    let mut failures = Vec::new();

    // Lints first: they are the cheapest signal and share the build with the native tests.
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    let steps: Vec<(&str, Command)> = vec![
        ("protocol, server and widget core (native)", {
            let mut c = cmd::cargo();
            c.args(["test", "--workspace"]);
            c
        }),
        ("widget in headless Chromium (wasm-bindgen-test)", {
            let mut c = cmd::cargo();
            c.args([
                "test",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "embedded-messaging",
                "--test",
                "web",
            ]);
            c
        }),
        ("end to end: real page, real server, real Chromium", {
            cmd::run(cmd::cargo().args(["build", "-p", "em-server"]))?;
            let root = cmd::root();
            let mut c = Command::new("node");
            c.args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
                .arg("tests/e2e/")
                .env("EM_SERVER_BIN", root.join("target/debug/em-server"))
                .current_dir(&root);
            c
        }),
    ];
    for (name, mut command) in steps {
        println!("\n=== {name}: {}", describe(&command));
        match counted(&mut command) {
            Ok(counts) => {
                total.passed += counts.passed;
                total.failed += counts.failed;
            }
            Err((counts, why)) => {
                total.passed += counts.passed;
                total.failed += counts.failed.max(1);
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    println!();
    for f in &failures {
        println!("FAILED {f}");
    }
    println!("total: {} passed, {} failed", total.passed, total.failed);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} test step(s) failed", failures.len()))
    }
}

/// Runs with output passed through, summing the pass/fail counts the runners print.
fn counted(command: &mut Command) -> Result<Counts, (Counts, String)> {
    let mut child = command
        .current_dir(cmd::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (Counts::default(), format!("cannot start: {e}")))?;
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let pipes: [(bool, Box<dyn Read + Send>); 2] = [
        (false, Box::new(child.stdout.take().expect("piped"))),
        (true, Box::new(child.stderr.take().expect("piped"))),
    ];
    for (is_err, pipe) in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send((is_err, line));
            }
        });
    }
    drop(tx);
    let mut counts = Counts::default();
    for (is_err, line) in rx {
        if is_err {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
        parse_summary(&line, &mut counts);
    }
    let status = child.wait().map_err(|e| (counts, e.to_string()))?;
    if status.success() {
        Ok(counts)
    } else {
        Err((counts, format!("exited with {status}")))
    }
}

/// Reads cargo's `test result: ok. 3 passed; 0 failed; ...` and node's `ℹ pass 3` / `# fail 0`.
fn parse_summary(line: &str, counts: &mut Counts) {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("test result: ") {
        let number_before = |word: &str| {
            rest.split(';').find_map(|part| {
                part.trim()
                    .trim_start_matches(|c: char| !c.is_ascii_digit())
                    .strip_suffix(word)
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
        };
        counts.passed += number_before("passed").unwrap_or(0);
        counts.failed += number_before("failed").unwrap_or(0);
        return;
    }
    for prefix in ["ℹ ", "# "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            if let Some(n) = rest
                .strip_prefix("pass ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                counts.passed += n;
            } else if let Some(n) = rest
                .strip_prefix("fail ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                counts.failed += n;
            }
        }
    }
}
