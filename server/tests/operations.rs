// Proves operations on the real binary: health and readiness, config reload by admin endpoint
// and SIGHUP (an invalid file changes nothing), graceful shutdown with sockets open, the schema
// migrating forward from version 1, and `hash-password`.
mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

fn with_title(title: &str) -> String {
    config(1).replace("title = \"Test chat\"", &format!("title = \"{title}\""))
        + &format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"\n")
}

async fn spawn(config: &std::path::Path, db: &std::path::Path) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = listening_addr(&mut child, Duration::from_secs(10)).await;
    (child, url)
}

async fn post(addr: std::net::SocketAddr, path: &str, token: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

async fn title(addr: std::net::SocketAddr) -> String {
    let path = format!(
        "/embeddedservice/v1/embedded-service-config?orgId={ORG}&esConfigName={DEPLOYMENT}"
    );
    http_get(addr, &path, None).await.json()["branding"]["title"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
// Branding changes apply without a restart: by POST /admin/reload (token checked) and by SIGHUP; a broken file keeps the old config.
async fn reload_by_endpoint_and_signal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, with_title("One")).unwrap();
    let (child, addr) = spawn(&file, &dir.path().join("em.sqlite")).await;
    assert_eq!(http_get(addr, "/healthz", None).await.text(), "ok");
    assert_eq!(http_get(addr, "/readyz", None).await.text(), "ready");
    assert_eq!(title(addr).await, "One");

    std::fs::write(&file, with_title("Two")).unwrap();
    assert_eq!(post(addr, "/admin/reload", "wrong").await, 401);
    assert_eq!(title(addr).await, "One");
    assert_eq!(post(addr, "/admin/reload", ADMIN_TOKEN).await, 200);
    assert_eq!(title(addr).await, "Two");

    std::fs::write(&file, "this is [not toml").unwrap();
    assert_eq!(post(addr, "/admin/reload", ADMIN_TOKEN).await, 422);
    assert_eq!(title(addr).await, "Two");

    std::fs::write(&file, with_title("Three")).unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while title(addr).await != "Three" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
// SIGTERM with an open visitor socket: the socket is closed by the server and the process exits 0 promptly.
async fn graceful_shutdown_closes_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let (mut child, addr) = spawn(&file, &dir.path().join("em.sqlite")).await;
    let mut v = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    v.hello(None).await;
    let id = uuid();
    v.send(serde_json::json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    let pid = child.id().unwrap().to_string();
    let started = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(v.recv().await.is_null(), "the server closes the socket");
    let status = tokio::time::timeout(Duration::from_secs(6), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
// A version-1 database is migrated forward on start: data kept, user_version raised, new columns usable.
async fn schema_migrates_forward() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(em_server::store::sqlite::SCHEMA_V1)
            .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1;
             INSERT INTO messaging_end_user VALUES ('{u}', x'01', 0);
             INSERT INTO messaging_session VALUES ('{c}', '{u}', '{ORG}', '{DEPLOYMENT}', 'Waiting', NULL, 0, 0, 0);",
            u = uuid(),
            c = uuid()
        ))
        .unwrap();
    }
    let (_child, addr) = spawn(&file, &db).await;
    assert_eq!(http_get(addr, "/readyz", None).await.status, 200);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, em_server::store::sqlite::SCHEMA_VERSION);
    let (status, queue): (String, String) = conn
        .query_row("SELECT status, queue FROM messaging_session", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), queue.as_str()), ("Waiting", ""));
    // The waiting conversation was queued again: an agent coming online gets it.
    let mut a = Ws::connect(addr, "/agent/ws", None).await.unwrap();
    a.send(serde_json::json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"})).await;
    a.recv().await;
    a.send(serde_json::json!({"type": "setPresence", "presence": "Online"}))
        .await;
    assert_eq!(
        a.recv_until(|f| f["type"] == "assigned").await["conversation"]["queue"],
        "support"
    );
}

#[test]
// `em-server hash-password` prints a PHC string that the config accepts and that verifies the password.
fn hash_password_subcommand() {
    let mut child = std::process::Command::new(BIN)
        .args(["hash-password", "--iterations", "100000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let hash = em_server::config::PasswordHash::parse(line.trim()).unwrap();
    assert!(hash.verify("correct horse") && !hash.verify("correct horse\n"));
    assert!(line.starts_with("$pbkdf2-sha256$i=100000$"));
}
