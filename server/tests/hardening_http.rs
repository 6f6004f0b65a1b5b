// Proves the HTTP surface holds against hostile traffic: weak admin tokens and password hashes
// are refused at start, every response carries nosniff and a Referrer-Policy, the config
// endpoint's refusals are opaque to foreign pages, /metrics needs the token (or its own
// listener), and the listener closes slow-header clients and caps connections per address.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

fn config_path(org: &str, name: &str) -> String {
    format!("/embeddedservice/v1/embedded-service-config?orgId={org}&esConfigName={name}")
}

/// Runs the binary with `config` as its deployments file; returns (exit code, stderr).
fn start_with(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config).unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--db", dir.path().join("x.sqlite").to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts the binary with `config` (plus `args`); returns it, its address and the tempdir.
async fn spawn(config: &str, args: &[&str]) -> (Child, std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config).unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--db", dir.path().join("x.sqlite").to_str().unwrap()])
        .args(["--widget-dir", dir.path().join("pkg").to_str().unwrap()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, Duration::from_secs(20)).await;
    (child, addr, dir)
}

/// Reads until the server closes the connection (EOF or reset); returns what came first.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        // A safety net against a hang, not a measurement.
        match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
            .await
            .expect("the server never closed the connection")
        {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Asks `/healthz` until it is answered 200: a closed connection's place is given back when
/// the server notices the close, a moment after the client's.
async fn until_healthy(addr: std::net::SocketAddr) {
    let healthy = async {
        loop {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if tcp.write_all(req.as_bytes()).await.is_ok() {
                let got = String::from_utf8_lossy(&read_until_closed(&mut tcp).await).into_owned();
                if got.starts_with("HTTP/1.1 200 ") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // A safety net against a hang, not a measurement.
    tokio::time::timeout(Duration::from_secs(30), healthy)
        .await
        .expect("a place was never freed");
}

#[test]
// An empty or short [admin] token is refused at start: exit 2, one line naming the key.
fn weak_admin_token_is_refused_at_start() {
    for (token, says) in [
        ("", "[admin] token: is empty"),
        ("short-token", "[admin] token: is 11 characters"),
        (
            "has spaces in it but is long enough, really",
            "[admin] token: must be printable ASCII",
        ),
    ] {
        let (code, stderr) = start_with(&format!("{}\n[admin]\ntoken = \"{token}\"\n", config(1)));
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    let (code, stderr) = start_with(&format!(
        "{}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n[http]\nmax_connections = 0\n",
        config(1)
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("[http] max_connections: must be at least 1"),
        "{stderr}"
    );
}

#[test]
// A PBKDF2 hash under 100,000 iterations is refused at start, naming the agent; and
// `hash-password` refuses to make one.
fn weak_password_hash_is_refused() {
    let weak =
        "$pbkdf2-sha256$i=1$74OP4JrMcnGxskQeyCtIMQ$PPb3oKWp0TJi6i5+EDHhIlRrDgKN64Eq8RUAGzchgVw";
    let (code, stderr) = start_with(&config(1).replace(PW_HASH, weak));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("[[agent]] ada password_hash: 1 PBKDF2 iterations are too few"),
        "{stderr}"
    );

    let out = std::process::Command::new(BIN)
        .args(["hash-password", "--iterations", "99999"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("--iterations 99999 is below the minimum of 100000"));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
// nosniff and Referrer-Policy on a config answer, a widget file, the console, a 404 and
// /healthz.
async fn security_headers_on_every_response() {
    let s = Server::start(&config(1)).await;
    std::fs::write(s.widget_dir().join("bootstrap.min.js"), "/* widget */").unwrap();
    for path in [
        config_path(ORG, DEPLOYMENT),
        "/assets/js/bootstrap.min.js".into(),
        "/console".into(),
        "/console/console.js".into(),
        "/nothing/here".into(),
        "/healthz".into(),
    ] {
        let r = s.get(&path, Some(ORIGIN)).await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.header("referrer-policy"),
            Some("strict-origin-when-cross-origin"),
            "{path}"
        );
    }
    let r = s.get("/nothing/here", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
// The config endpoint: CORS for the deployment's own origins; a refusal (403, 404) carries no
// CORS header to a foreign page, but does to a page another deployment of the org allows.
async fn config_endpoint_cors_only_for_the_orgs_pages() {
    let s = Server::start(&config(1)).await;
    let cors = |r: &Response| r.header("access-control-allow-origin").map(str::to_string);

    let ok = s.get(&config_path(ORG, DEPLOYMENT), Some(ORIGIN)).await;
    assert_eq!((ok.status, cors(&ok)), (200, Some(ORIGIN.to_string())));

    let forbidden = s.get(&config_path(ORG, DEPLOYMENT), Some(EVIL)).await;
    assert_eq!((forbidden.status, cors(&forbidden)), (403, None));
    let unknown = s.get(&config_path(ORG, "Nope"), Some(EVIL)).await;
    assert_eq!((unknown.status, cors(&unknown)), (404, None));
    let other_org = s
        .get(&config_path("00D000000000002", DEPLOYMENT), Some(EVIL))
        .await;
    assert_eq!((other_org.status, cors(&other_org)), (404, None));
    for r in [&forbidden, &unknown, &other_org] {
        assert_eq!(r.header("vary"), Some("Origin"));
    }

    // The org's own page, with a misspelt deployment name, can read why.
    let typo = s.get(&config_path(ORG, "Nope"), Some(ORIGIN)).await;
    assert_eq!((typo.status, cors(&typo)), (404, Some(ORIGIN.to_string())));
    assert_eq!(typo.json()["error"]["code"], "unknown_deployment");
}

#[tokio::test]
// /metrics needs the admin token (401 without, 200 with, agents' names included); the
// metrics listener serves it without the token and without agents' names.
async fn metrics_need_the_token_or_their_own_listener() {
    let s = Server::start(&format!(
        "{}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n",
        config(1)
    ))
    .await;
    let _ada = s.agent_online().await;

    let r = s.get("/metrics", None).await;
    assert_eq!(r.status, 401);
    assert!(!r.text().contains("ada"));
    let wrong = http_get_with(s.addr, "/metrics", &[("Authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let r = http_get_with(s.addr, "/metrics", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("em_agent_assignments_total{agent=\"ada\"} 0")
    );
    assert!(r.text().lines().any(|l| l == "em_agents_online 1"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    tokio::spawn(em_server::serve(
        listener,
        em_server::metrics_app(s.state.clone()),
    ));
    let open = http_get(metrics_addr, "/metrics", None).await;
    assert_eq!(open.status, 200);
    assert!(open.text().contains("em_conversations_total 0"));
    assert!(
        open.text()
            .contains("em_queue_assignments_total{queue=\"support\"} 0")
    );
    assert!(!open.text().contains("ada"), "{}", open.text());
    assert_eq!(open.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        http_get(metrics_addr, "/admin/report", None).await.status,
        404
    );
}

#[tokio::test]
// A client that sends half a request line and then nothing, one that sends nothing, and a
// kept-alive one gone quiet are closed after the header-read timeout; a complete request on
// the same server is answered.
async fn slow_header_connection_is_closed() {
    let config = format!("{}\n[http]\nheader_read_timeout_seconds = 1\n", config(1));
    let (_child, addr, _dir) = spawn(&config, &[]).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /heal").await.unwrap();
    let got = read_until_closed(&mut slow).await;
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{got:?}");
    // One that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, b"");
    // And a kept-alive connection that goes quiet after its response.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    kept.write_all(req.as_bytes()).await.unwrap();
    let got = String::from_utf8_lossy(&read_until_closed(&mut kept).await).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 200 ") && got.ends_with("ok"),
        "{got}"
    );
    assert_eq!(http_get(addr, "/healthz", None).await.status, 200);
}

#[tokio::test]
// With max_connections_per_address = 3, two WebSockets and an idle connection fill the
// address's share: the next connection is answered 503 and closed, and closing a WebSocket
// frees a place (a WebSocket counts for its whole life, not only its upgrade request).
async fn per_address_cap_counts_websockets_and_frees_on_close() {
    let config = format!(
        "{}\n[http]\nmax_connections_per_address = 3\nheader_read_timeout_seconds = 600\n",
        config(1)
    );
    let (_child, addr, _dir) = spawn(&config, &[]).await;
    let first = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    let _second = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    let _idle = TcpStream::connect(addr).await.unwrap();

    let mut refused = TcpStream::connect(addr).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut refused).await).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );

    drop(first);
    until_healthy(addr).await;
}

#[tokio::test]
// With max_connections = 2 (no per-address cap), a third connection is answered 503 and
// closed while two are open, and accepted once one of them closes.
async fn global_cap_refuses_then_frees() {
    let config = format!(
        "{}\n[http]\nmax_connections = 2\nmax_connections_per_address = 0\nheader_read_timeout_seconds = 600\n",
        config(1)
    );
    let (_child, addr, _dir) = spawn(&config, &[]).await;
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    let mut third = TcpStream::connect(addr).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut third).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    drop(first);
    until_healthy(addr).await;
}
