//! A throwaway PostgreSQL for `cargo xtask bench`, with PostgreSQL's default durability.
//!
//! Starts the tests' throwaway cluster (`tests/support/postgres.rs`: a temporary directory, a
//! free loopback port, as the `postgres` user when root), then turns its durability back on
//! (the tests' cluster runs with `fsync = off`; a benchmark measures what a deployment gets).
//! Each line read from stdin asks for a new, empty database, whose URL is printed on its own
//! line. At the end of stdin the process exits, and the cluster's watchdog stops it and
//! removes its directory: the bench holds the write end, so that happens also when the bench
//! fails or is killed.
//!
//! `cargo run --release -p em-server --example pg_cluster`

use std::io::{BufRead, Write};

#[allow(dead_code)] // The tests' module, included whole: not every helper serves here.
#[path = "../tests/support/postgres.rs"]
mod cluster;

/// What the tests' cluster turns off, set back to PostgreSQL's defaults. `ALTER SYSTEM`
/// writes `postgresql.auto.conf`, which overrides the lines the tests append to
/// `postgresql.conf`; all three take effect on a reload. One statement at a time: `ALTER
/// SYSTEM` refuses to run in a transaction, which a batch of statements is.
const DURABLE: [&str; 4] = [
    "ALTER SYSTEM SET fsync = on",
    "ALTER SYSTEM SET synchronous_commit = on",
    "ALTER SYSTEM SET full_page_writes = on",
    "SELECT pg_reload_conf()",
];

/// The durability settings a new session sees, once the reload reached it (the postmaster
/// applies it asynchronously): `name=value` each.
fn durability(url: &str) -> Vec<String> {
    let mut settings = Vec::new();
    for _ in 0..50 {
        let mut session = cluster::connect(url).unwrap_or_else(|e| fail("cannot connect", sql(e)));
        settings = ["fsync", "synchronous_commit", "full_page_writes"]
            .iter()
            .map(|name| {
                let row = session
                    .query_one(&format!("SHOW {name}"), &[])
                    .unwrap_or_else(|e| fail(&format!("SHOW {name}"), sql(e)));
                format!("{name}={}", row.get::<_, String>(0))
            })
            .collect();
        if settings.iter().all(|s| s.ends_with("=on")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    settings
}

/// Fails the bench with one line, the cluster being removed as the process exits.
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("pg_cluster: {what}: {e}");
    std::process::exit(1)
}

/// The server's message: the client's own text of a server's error is only "db error".
fn sql(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

fn main() {
    // Panics with the one-line reason (PostgreSQL missing, initdb failed, ...).
    let cluster = cluster::cluster();
    let mut admin = cluster::connect(cluster.admin_url()).unwrap_or_else(|e| {
        fail(
            &format!("cannot connect to {}", cluster.admin_url()),
            sql(e),
        )
    });
    if cluster.dir().is_some() {
        for statement in DURABLE {
            admin
                .batch_execute(statement)
                .unwrap_or_else(|e| fail(statement, sql(e)));
        }
    }
    let settings = durability(cluster.admin_url());
    match (cluster.dir(), cluster.started_in()) {
        (Some(dir), Some(took)) => eprintln!(
            "pg_cluster: {} in {}, started in {took:.2?}; {}",
            cluster.admin_url(),
            dir.display(),
            settings.join(", ")
        ),
        _ => eprintln!(
            "pg_cluster: the server named by {} ({})",
            cluster::URL_VAR,
            settings.join(", ")
        ),
    }
    drop(admin);
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        let url = cluster
            .fresh_database()
            .unwrap_or_else(|e| fail("cannot create a database", e));
        if writeln!(out, "{url}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}
