//! `cargo xtask <command>`: the project's build, demo, test and bench automation.
//!
//! Every command first installs what it is missing (see `setup.rs`), so the README's two
//! commands work on a fresh machine and CI catches a forgotten install step.

mod bench;
mod bench_abuse;
mod bundle;
mod cmd;
mod setup;
mod shorten;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  demo [server args]   build the widget, start the server with the demo site and agent console
  test                 run every test: protocol, server, widget (native + Chromium), end to end
  bench                print payload sizes and time to onEmbeddedMessagingReady
  build                build the widget bundle into pkg/
  setup [--browser]    install the toolchain pieces (wasm target, wasm-bindgen-cli, wasm-pack,
                       wasm-opt, e2e node modules; --browser adds Debian's chromium + driver)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        "demo" => demo(rest),
        "test" => test::run(),
        "bench" => bench::run(),
        "build" => setup::toolchain().and_then(|()| bundle::build()),
        "setup" => setup::toolchain().and_then(|()| {
            if rest.iter().any(|a| a == "--browser") {
                setup::browser()
            } else {
                Ok(())
            }
        }),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Builds everything and runs the server in the foreground with the demo deployment and site.
fn demo(server_args: &[String]) -> Result<(), String> {
    setup::toolchain()?;
    bundle::build()?;
    cmd::run(cmd::cargo().args(["build", "-p", "em-server"]))?;
    let root = cmd::root();
    let mut args: Vec<String> = [
        "--config",
        "server/demo/deployments.toml",
        "--db",
        "target/demo.sqlite",
        "--widget-dir",
        "pkg",
        "--site-dir",
        "www",
        "--listen",
        "127.0.0.1:8080",
        "--site-listen",
        "127.0.0.1:8081",
    ]
    .map(String::from)
    .to_vec();
    // Later flags win in clap, so `cargo xtask demo --listen 0.0.0.0:9000` overrides the default.
    args.extend(server_args.iter().cloned());
    cmd::run(std::process::Command::new(root.join("target/debug/em-server")).args(&args))
}
