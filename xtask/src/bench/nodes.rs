//! `cargo xtask bench`, persisted messages and delivery: `server/examples/load.rs` against 1
//! SQLite node, then 1, 2 and 3 PostgreSQL nodes forming one service, and an agent's delivery
//! latency from a visitor on its own node and on another one.
//!
//! Every step starts fresh release servers on a fresh database. PostgreSQL is a throwaway
//! cluster with its default durability (`server/examples/pg_cluster.rs`), removed at the end.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::bench_abuse::{Storage, start};
use crate::cmd;

/// (visitors, messages each) of the throughput runs: the same total load on every set of nodes.
const LOADS: [(usize, usize); 2] = [(20, 200), (100, 100)];

/// Messages of a delivery run, in all: the visitors take turns.
const DELIVERED: usize = 1000;

/// Release servers and their base URLs, killed when dropped (also when a step fails).
struct Nodes {
    children: Vec<Child>,
    urls: Vec<String>,
}

impl Nodes {
    fn start(config: &Path, storage: Storage, n: usize) -> Result<Nodes, String> {
        let mut nodes = Nodes {
            children: Vec::new(),
            urls: Vec::new(),
        };
        for _ in 0..n {
            let (child, url) = start(config, storage)?;
            nodes.children.push(child);
            nodes.urls.push(url);
        }
        Ok(nodes)
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The throwaway PostgreSQL: one fresh database per request. Dropping it closes the example's
/// stdin, and the example's exit has the cluster stopped and its directory removed (as does
/// this process's death, however it dies: the kernel closes the pipe).
struct Postgres {
    child: Child,
    requests: Option<ChildStdin>,
    urls: BufReader<ChildStdout>,
}

impl Postgres {
    fn start() -> Result<Postgres, String> {
        let mut child = Command::new(cmd::root().join("target/release/examples/pg_cluster"))
            .current_dir(cmd::root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the pg_cluster example: {e}"))?;
        let requests = child.stdin.take();
        let urls = child.stdout.take().map(BufReader::new);
        match urls {
            Some(urls) => Ok(Postgres {
                child,
                requests,
                urls,
            }),
            None => Err("pg_cluster: no stdout".into()),
        }
    }

    /// A new, empty database's URL.
    fn database(&mut self) -> Result<String, String> {
        let asked = match &mut self.requests {
            Some(requests) => writeln!(requests).and_then(|()| requests.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        let mut url = String::new();
        let read = asked.and_then(|()| self.urls.read_line(&mut url));
        match read {
            Ok(n) if n > 0 => Ok(url.trim().to_string()),
            // The example printed why on stderr.
            _ => Err("the throwaway PostgreSQL (pg_cluster example) failed".into()),
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop(self.requests.take());
        let _ = self.child.wait();
    }
}

/// The demo config with Demo_Deployment's `[deployment.limits]` lifted: the load generator's
/// visitors all come from 127.0.0.1 and each sends far faster than a person, and the figure is
/// the server's throughput, not one address's quota (the abuse bench measures the limits).
fn lifted_demo_config() -> Result<String, String> {
    let lifted = "name = \"Demo_Deployment\"\nlimits = { connections_per_address = 100000, \
        new_visitors_per_minute = 100000, frames_per_second = 1000000, \
        messages_per_second = 1000000, open_conversations = 100000, conversations_per_hour = 100000 }\n";
    Ok(crate::bench::demo_config()?.replacen("name = \"Demo_Deployment\"\n", lifted, 1))
}

/// `load` with `args`, then one `--addr` per node; prints its lines indented as they come.
fn load(nodes: &Nodes, args: &[String]) -> Result<(), String> {
    let mut load = Command::new(cmd::root().join("target/release/examples/load"));
    load.args(args).current_dir(cmd::root());
    for url in &nodes.urls {
        load.args(["--addr", url]);
    }
    let mut child = load
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd::describe(&load)))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("    {line}");
        }
    }
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{} failed ({status})", cmd::describe(&load))),
        Err(e) => Err(format!("{}: {e}", cmd::describe(&load))),
    }
}

fn throughput(nodes: &Nodes) -> Result<(), String> {
    LOADS.iter().try_for_each(|(visitors, messages)| {
        let args = [
            "--visitors".into(),
            visitors.to_string(),
            "--messages".into(),
            messages.to_string(),
        ];
        load(nodes, &args)
    })
}

/// The agent signs in on the last node; one visitor per node.
fn delivery(nodes: &Nodes) -> Result<(), String> {
    let agent = nodes.urls.last().ok_or("no node")?;
    let args = [
        "--agent-addr".into(),
        agent.clone(),
        "--messages".into(),
        DELIVERED.to_string(),
    ];
    load(nodes, &args)
}

/// Persisted messages per second and ack latency with each store's durability (SQLite WAL,
/// `synchronous=FULL`, group commit; PostgreSQL's defaults, `fsync` and `synchronous_commit`
/// on), then delivery latency to an agent: on PostgreSQL from a visitor on the agent's node
/// and from one on another node in the same run, and on SQLite as a reference.
pub fn run() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("em-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path) -> Result<(), String> {
    let config = dir.join("deployments.toml");
    std::fs::write(&config, lifted_demo_config()?)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    println!(
        "persisted messages (load generator and nodes on this machine; budget on 1 SQLite node: \
         ≥ 20,000/s, p99 ≤ 50 ms):"
    );
    println!("  1 SQLite node (WAL, synchronous=FULL, group commit):");
    let sqlite = dir.join("throughput.sqlite");
    throughput(&Nodes::start(&config, Storage::Sqlite(&sqlite), 1)?)?;
    let mut postgres = Postgres::start()?;
    for n in 1..=3 {
        let s = if n == 1 { "" } else { "s" };
        println!("  {n} PostgreSQL node{s} (fsync=on, synchronous_commit=on), visitors spread:");
        let url = postgres.database()?;
        throughput(&Nodes::start(&config, Storage::Postgres(&url), n)?)?;
    }
    println!(
        "delivery to an agent, from a visitor's send to the agent's receipt of the entry \
         ({DELIVERED} messages one at a time, the visitors taking turns):"
    );
    println!("  2 PostgreSQL nodes, the agent on the second:");
    let url = postgres.database()?;
    delivery(&Nodes::start(&config, Storage::Postgres(&url), 2)?)?;
    println!("  1 SQLite node (reference):");
    let sqlite = dir.join("delivery.sqlite");
    delivery(&Nodes::start(&config, Storage::Sqlite(&sqlite), 1)?)
}
