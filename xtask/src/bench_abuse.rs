//! `cargo xtask bench`, abuse figures: honest visitors' messages/s alone and under abuse, and
//! the server's memory with non-reading visitors (`server/examples/abuse.rs`), each against a
//! fresh release server on a temporary database.
//!
//! The config is the demo's (so the abusers meet the default `[deployment.limits]`), plus
//! `[proxy]` trusting `X-Forwarded-For` from 127.0.0.1 (every client comes from there and
//! names its own address) and `Bench_Honest`, a deployment for the honest visitors whose
//! per-socket rates are lifted: each honest socket stands for many people, and the figure is
//! to measure the server, not one socket's quota.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::cmd;

const EXTRA: &str = r#"
[proxy]
client_address_header = "X-Forwarded-For"
trusted = ["127.0.0.1"]

[[deployment]]
org_id = "00D000000000001"
name = "Bench_Honest"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[deployment.limits]
frames_per_second = 1000000
messages_per_second = 1000000
"#;

/// Where a server keeps its data.
#[derive(Clone, Copy)]
pub(crate) enum Storage<'a> {
    /// The embedded default: this SQLite file.
    Sqlite(&'a Path),
    /// A PostgreSQL database (`postgres://…`), which several nodes may share.
    Postgres(&'a str),
}

/// Starts the release server on a free port with `config`; returns it and its base URL.
pub(crate) fn start(config: &Path, storage: Storage) -> Result<(Child, String), String> {
    let root = cmd::root();
    let mut server = Command::new(root.join("target/release/em-server"));
    match storage {
        Storage::Sqlite(db) => server.arg("--db").arg(db),
        Storage::Postgres(url) => server.args(["--database-url", url]),
    };
    let mut server = server
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--widget-dir", "pkg"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start em-server: {e}"))?;
    let stdout = server.stdout.take().expect("piped");
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on ").map(str::to_string));
    match url {
        Some(url) => Ok((server, url)),
        None => {
            let _ = server.kill();
            let _ = server.wait();
            Err("em-server did not print its address".into())
        }
    }
}

pub fn run() -> Result<(), String> {
    let root = cmd::root();
    let dir = std::env::temp_dir().join(format!("em-bench-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("abuse.toml");
    std::fs::write(&config, crate::bench::demo_config()? + EXTRA)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let result = ["throughput", "memory"].iter().try_for_each(|mode| {
        let db = dir.join(format!("{mode}.sqlite"));
        let (mut server, url) = start(&config, Storage::Sqlite(&db))?;
        let args = [mode.to_string(), url, server.id().to_string()];
        println!();
        let r = cmd::run(Command::new(root.join("target/release/examples/abuse")).args(&args));
        let _ = server.kill();
        let _ = server.wait();
        r
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
