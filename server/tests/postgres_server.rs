// Proves the built binary on PostgreSQL (`--database-url`): a visitor's message survives kill -9
// and is replayed after a restart, the queue and the metrics come from the database, and a
// database that cannot be reached is one line at start.
mod common;
mod support;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

/// Starts the binary on a random port against `url`; returns the child and its address.
async fn spawn(config: &std::path::Path, url: &str) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--database-url", url])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, Duration::from_secs(30)).await;
    (child, addr)
}

#[tokio::test]
async fn a_message_on_postgres_survives_kill_and_is_replayed() {
    // An acknowledged message is in PostgreSQL: after kill -9 and a restart on the same
    // database the same credential resumes the conversation and gets it replayed, routing's
    // queue is rebuilt from it (an agent coming online is assigned it), and `/metrics` counts it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(
        &file,
        format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"\n{}", config(1)),
    )
    .unwrap();
    let url = support::postgres::fresh_database();

    let (mut child, addr) = spawn(&file, &url).await;
    let mut v = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    let (user, credential) = v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    let entry = uuid();
    v.send(send_message(&id, &entry, "remember me")).await;
    let ack = v.recv().await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ack"), Some(1)),
        "{ack}"
    );
    // The same entry again (a resend after a lost ack) is acknowledged with its seq, not stored.
    v.send(send_message(&id, &entry, "remember me")).await;
    let again = v.recv_until(|f| f["type"] == "ack").await;
    assert_eq!(again["seq"].as_u64(), Some(1), "{again}");
    child.kill().await.unwrap(); // SIGKILL: no shutdown code runs

    let (_child, addr) = spawn(&file, &url).await;
    let mut v = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    assert_eq!(v.hello(Some(&credential)).await.0, user);
    let history = v.stored_history(&id).await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4],
        "message, RoutingResult, Waiting, nobody is available"
    );
    assert_eq!(history[0].identifier.to_string(), entry);
    assert_eq!(history[0].entry_payload.as_text(), Some("remember me"));

    let mut a = Ws::connect(addr, "/agent/ws", None).await.unwrap();
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    a.recv().await;
    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    let assigned = a.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned["conversation"]["conversationId"], id);

    let metrics = http_get_with(
        addr,
        "/metrics",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await
    .text();
    assert!(
        metrics.lines().any(|l| l == "em_conversations_total 1"),
        "{metrics}"
    );
}

#[test]
fn an_unreachable_database_url_is_one_line_without_the_password() {
    // Nothing listens at the URL: the server exits 1 at start with one line naming the
    // database (never its password) and why.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(BIN)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--database-url")
        .arg(format!("postgres://em:s3cret@127.0.0.1:{port}/em"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "error: cannot open database postgres://em@127.0.0.1:{port}/em: error connecting to server"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // `--db` and `--database-url` are one choice.
    let out = std::process::Command::new(BIN)
        .args(["--config", file.to_str().unwrap(), "--db", "x.sqlite"])
        .args(["--database-url", "postgres://em@127.0.0.1/em"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
