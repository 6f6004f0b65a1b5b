// Proves the built binary: config errors exit 2 with one line, data survives kill -9, the site listener.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

/// Runs the binary to completion; returns (exit code, stderr).
fn run_to_exit(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts the binary on random ports; returns the child and the `listening on` / `site on` URLs.
async fn spawn(args: &[&str]) -> (Child, String, Option<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--site-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut site) = (None, None);
    let wants_site = args.contains(&"--site-dir");
    while url.is_none() || (wants_site && site.is_none()) {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_string());
        } else if let Some(u) = line.strip_prefix("site on ") {
            site = Some(u.to_string());
        }
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url.unwrap(), site)
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[test]
// A bad config file exits with code 2 and one stderr line naming the file, the field and the problem.
fn bad_config_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployments.toml");
    let file_str = file.to_str().unwrap();
    let cases = [
        (
            config(1).replace(r#""https://shop.example.com""#, r#""foo""#),
            "deployment[0].allowed_origins[1]: \"foo\" is not an origin (expected scheme://host[:port] or scheme://host:*)",
        ),
        (
            config(1).replace("capacity = 1", "capacity = 1\ncolour = \"red\""),
            "agent[0].colour: unknown field `colour`",
        ),
        (
            config(1).replace(r#"queues = ["support"]"#, r#"queues = ["sales"]"#),
            "agent[0].queues[0]: no [[queue]] named \"sales\"",
        ),
        (
            config(1).replace("capacity = 1", "capacity = 0"),
            "agent[0].capacity: must be at least 1",
        ),
        (
            config(1).replace(ORG, "12345"),
            "deployment[0].org_id: \"12345\" is not an org id",
        ),
        (
            config(1).replace(
                "[deployment.branding]",
                "[deployment.branding]\nbutton_color = \"\"",
            ),
            "deployment[0].branding.button_color: must not be empty",
        ),
        (
            format!("{}\n[[queue]]\nname = \"support\"\n", config(1)),
            "queue[1].name: duplicate queue \"support\"",
        ),
        (
            config(1).replace(
                r#"["http://127.0.0.1:*", "https://shop.example.com"]"#,
                "[]",
            ),
            "deployment[0].allowed_origins: list at least one origin",
        ),
        ("[[deployment]\n".to_string(), "line 1: "),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let (code, stderr) = run_to_exit(&[
            "--config",
            file_str,
            "--db",
            dir.path().join("x.sqlite").to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr}");
        let want = format!("error: {file_str}: {expected}");
        assert!(stderr.starts_with(&want), "\n got: {stderr}\nwant: {want}");
    }
    let (code, stderr) = run_to_exit(&["--config", "/nonexistent/deployments.toml"]);
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
}

#[tokio::test]
// An unusable database path or a port in use is one clear line and a non-zero exit.
async fn unusable_db_or_port_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let (code, stderr) = run_to_exit(&[
        "--config",
        file.to_str().unwrap(),
        "--db",
        "/nonexistent/dir/em.sqlite",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr
            .trim_end()
            .lines()
            .last()
            .map(|l| l.starts_with("error: cannot open database /nonexistent/dir/em.sqlite")),
        Some(true),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("em.sqlite");
    let (code, stderr) = run_to_exit(&[
        "--config",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--listen",
        &port,
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("error: cannot listen on {port}")),
        "{stderr}"
    );
}

#[tokio::test]
// An acknowledged message survives kill -9; after restart the same credential resumes the same
// thread and the waiting conversation is still queued for routing.
async fn data_survives_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let db = dir.path().join("em.sqlite");
    let args = [
        "--config",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];

    let (mut child, url, _) = spawn(&args).await;
    let mut v = Ws::connect(addr_of(&url), &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    let (user, credential) = v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    let entry = uuid();
    v.send(send_message(&id, &entry, "remember me")).await;
    assert_eq!(v.recv().await["type"], "ack");
    child.kill().await.unwrap(); // SIGKILL: no shutdown code runs

    let (_child, url, _) = spawn(&args).await;
    let mut v = Ws::connect(addr_of(&url), &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    assert_eq!(v.hello(Some(&credential)).await.0, user);
    v.send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    let state = v.recv().await;
    assert_eq!(
        (state["status"].as_str(), state["lastSeq"].as_u64()),
        (Some("Waiting"), Some(4)) // message, RoutingResult, Waiting, "nobody is available"
    );
    let first = v.recv().await;
    assert_eq!(first["entry"]["identifier"], entry);
    assert_eq!(
        payload(&first)["abstractMessage"]["staticContent"]["text"],
        "remember me"
    );

    // The queue was rebuilt from the database: an agent coming online gets the conversation.
    let mut a = Ws::connect(addr_of(&url), "/agent/ws", None).await.unwrap();
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    a.recv().await;
    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    let assigned = a.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned["conversation"]["conversationId"], id);
}

#[tokio::test]
// The site listener serves the directory and points HTML at the server's real address.
async fn site_listener_rewrites_the_server_url_in_html() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let site_dir = dir.path().join("www");
    std::fs::create_dir(&site_dir).unwrap();
    std::fs::write(
        site_dir.join("index.html"),
        "<script src='http://127.0.0.1:8080/assets/js/bootstrap.min.js'></script>",
    )
    .unwrap();
    std::fs::write(site_dir.join("app.js"), "fetch('http://127.0.0.1:8080')").unwrap();
    let db = dir.path().join("em.sqlite");
    let (_child, url, site) = spawn(&[
        "--config",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--site-dir",
        site_dir.to_str().unwrap(),
    ])
    .await;
    let site = addr_of(&site.unwrap());
    let page = http_get(site, "/", None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.text(),
        format!("<script src='{url}/assets/js/bootstrap.min.js'></script>")
    );
    assert_eq!(
        http_get(site, "/app.js", None).await.text(),
        "fetch('http://127.0.0.1:8080')",
        "only HTML is rewritten"
    );
    assert_eq!(http_get(site, "/../d.toml", None).await.status, 404);
    assert_eq!(http_get(addr_of(&url), "/healthz", None).await.text(), "ok");
}
