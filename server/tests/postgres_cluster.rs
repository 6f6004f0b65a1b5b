// Proves the tests' throwaway PostgreSQL (support/postgres.rs): each fresh database is distinct
// and usable, and the cluster is gone (directory removed, no process left) once its test
// process exits, whether it returns or is killed with SIGKILL.
//
// How the removal is shown: the test re-runs this binary as a child (`child_starts_a_cluster`,
// ignored in normal runs), which starts its own cluster and prints its directory; the child
// then returns, or is killed with SIGKILL by the parent; the parent waits until the directory
// is gone and no process mentions it (postmaster, watchdog, pg_ctl), with a deadline only as a
// safety net. The same holds for this test process itself: after `cargo test` returns, `ps`
// shows no `postgres` from it and `/tmp/em-pg-*` is gone within a second or two.
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::postgres::{URL_VAR, cluster, connect, fresh_database};

/// Safety net against a hang; never a measure of speed.
const DEADLINE: Duration = Duration::from_secs(120);
/// The child's line naming its cluster's directory.
const MARK: &str = "child cluster dir:";
/// How the child ends: `kill` (waits to be killed with SIGKILL) or `return`.
const EXIT_VAR: &str = "EM_PG_CHILD_EXIT";

#[test]
fn two_fresh_databases_are_distinct_and_each_takes_a_round_trip() {
    // Proves two fresh_database() calls give two distinct databases, each accepting a
    // connection and a CREATE TABLE/INSERT/SELECT round trip, on PostgreSQL 13 or newer.
    let first = fresh_database();
    let second = fresh_database();
    assert_ne!(first, second);
    for (url, body) in [(&first, "first"), (&second, "second")] {
        let mut db = connect(url).unwrap();
        let name: String = db
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        let config: postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_dbname(), Some(name.as_str()), "{url}");
        // The same table name in both: each sees only its own row.
        db.batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)")
            .unwrap();
        db.execute(
            "INSERT INTO notes (id, body) VALUES ($1, $2)",
            &[&7i64, &body],
        )
        .unwrap();
        let rows: Vec<(i64, String)> = db
            .query("SELECT id, body FROM notes", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(rows, [(7, body.to_string())]);
        let version: String = db.query_one("SHOW server_version_num", &[]).unwrap().get(0);
        let version: u32 = version.parse().unwrap();
        assert!(version >= 130_000, "PostgreSQL {version} is older than 13");
    }
    if let Some(took) = cluster().started_in() {
        println!("test cluster started in {took:.2?}");
    }
}

#[tokio::test]
async fn fresh_database_serves_an_async_test() {
    // Proves fresh_database() works from inside a tokio runtime (the sync client's own runtime
    // would panic there if it ran on the test's thread).
    let url = fresh_database();
    let one: i32 = tokio::task::spawn_blocking(move || {
        connect(&url)
            .unwrap()
            .query_one("SELECT 1", &[])
            .unwrap()
            .get(0)
    })
    .await
    .unwrap();
    assert_eq!(one, 1);
}

#[test]
fn cluster_is_removed_when_its_test_process_returns() {
    // Proves a test process that ends normally leaves neither its cluster's directory nor
    // any of its processes behind.
    let (mut child, dir) = child_with_cluster("return");
    assert!(child.wait().unwrap().success());
    wait_until_gone(&dir);
}

#[test]
fn cluster_is_removed_when_its_test_process_is_killed() {
    // Proves a test process killed with SIGKILL (no destructor, no handler runs) leaves
    // neither its cluster's directory nor any of its processes behind.
    let (mut child, dir) = child_with_cluster("kill");
    assert!(
        dir.join("data/postmaster.pid").exists(),
        "the child's cluster runs"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until_gone(&dir);
}

#[test]
#[ignore = "run as a child process by the cluster_is_removed_* tests"]
fn child_starts_a_cluster() {
    // Proves nothing alone: the child side of the cluster_is_removed_* tests.
    let cluster = cluster();
    let dir = cluster.dir().expect("the child starts its own cluster");
    connect(cluster.admin_url()).unwrap();
    println!("{MARK} {}", dir.display());
    if std::env::var(EXIT_VAR).as_deref() == Ok("kill") {
        // Held until the parent kills this process (or dies, closing the pipe).
        std::io::stdin().lines().for_each(drop);
    }
}

/// Runs `child_starts_a_cluster` in a new process of this test binary; returns it and the
/// directory of the cluster it started.
fn child_with_cluster(exit: &str) -> (Child, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_starts_a_cluster",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(EXIT_VAR, exit)
        .env_remove(URL_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(dir) = line.strip_prefix(MARK) {
                let _ = tx.send(PathBuf::from(dir.trim()));
            }
        }
    });
    let dir = rx
        .recv_timeout(DEADLINE)
        .expect("the child prints its cluster's directory");
    (child, dir)
}

/// Waits until `dir` is gone and no process has it on its command line.
fn wait_until_gone(dir: &Path) {
    let start = Instant::now();
    loop {
        let users = processes_mentioning(dir);
        if !dir.exists() && users.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} still there (exists: {}), used by {users:?}",
            dir.display(),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Command lines of the running processes that name `dir` (zombies have none).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect()
}
