// Proves agent sign-in against guessing and stale rights: backoff and socket close after
// failures, session tokens instead of the password, sign-out, reload revoking rights, expiry,
// the agent socket's Origin check, and a log line per failure without the password.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use em_server::clock::ManualClock;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// `[signin]` for these tests: two free failures, then a minute's wait; three refusals close
/// a socket. Time is a `ManualClock`, so waits pass when the test says.
const SIGNIN: &str = r#"
[signin]
free_failures = 2
backoff_initial_ms = 60000
backoff_max_ms = 600000
close_after_failures = 3
console_origins = ["https://console.example.com"]
"#;

/// Agents `ada`, `grace` and `bob` (password `pw`) plus [`SIGNIN`].
fn three_agents() -> String {
    let mut c = config(2);
    for name in ["grace", "bob"] {
        c.push_str(&format!(
            "[[agent]]\nusername = \"{name}\"\ndisplay_name = \"{name}\"\npassword_hash = \"{PW_HASH}\"\ncapacity = 1\nqueues = [\"support\"]\n"
        ));
    }
    c.push_str(SIGNIN);
    c
}

fn hello(user: &str, pw: &str) -> Value {
    json!({"type": "hello", "protocolVersion": 1, "username": user, "credential": pw})
}

fn hello_token(user: &str, token: &str) -> Value {
    json!({"type": "hello", "protocolVersion": 1, "username": user, "sessionToken": token})
}

/// Signs `user` in with the password; returns the socket and its session token.
async fn sign_in(s: &Server, user: &str) -> (Ws, String) {
    let mut a = s.agent().await;
    a.send(hello(user, "pw")).await;
    let w = a.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    (a, w["sessionToken"].as_str().unwrap().to_string())
}

/// A raw agent socket, for reading the close frame's code.
type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_agent(s: &Server) -> Raw {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/agent/ws", s.addr))
        .await
        .unwrap();
    ws
}

async fn raw_send(ws: &mut Raw, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Text frames until the server's close frame; returns them and the close code.
async fn until_close(ws: &mut Raw) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no close within 5 s");
        match msg {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(c))) => return (frames, c.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (frames, None),
        }
    }
}

#[tokio::test]
// Wrong passwords beyond the free ones close the socket; the right password right after is
// refused with rate_limited and the exact wait, on any socket, until the wait has passed.
async fn wrong_passwords_close_the_socket_and_back_off() {
    let clock = ManualClock::new(1_700_000_000_000);
    let s = Server::start_with_clock(&three_agents(), clock.clone()).await;
    let mut a = raw_agent(&s).await;
    for _ in 0..2 {
        raw_send(&mut a, hello("ada", "nope")).await;
        let Some(Ok(Message::Text(t))) = a.next().await else {
            panic!("no answer")
        };
        assert_eq!(
            serde_json::from_str::<Value>(&t).unwrap()["code"],
            "unauthorized"
        );
    }
    raw_send(&mut a, hello("ada", "nope")).await;
    let (frames, code) = until_close(&mut a).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["code"], "unauthorized");
    assert_eq!(code, Some(4002), "closed as rate limited");
    let signin = &s.state.engine.signin;
    assert_eq!(signin.passwords_checked(), 3);

    // The right password, on a new socket: refused without being checked, with the wait.
    let mut b = s.agent().await;
    b.send(hello("ada", "pw")).await;
    let refused = b.recv().await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["retryAfterMs"], 60_000);
    // Another agent from the same address waits too (per-address backoff).
    b.send(hello("grace", "pw")).await;
    assert_eq!(b.recv().await["retryAfterMs"], 60_000);

    clock.advance_secs(59);
    let mut c = s.agent().await;
    c.send(hello("ada", "pw")).await;
    assert_eq!(c.recv().await["retryAfterMs"], 1_000);
    assert_eq!(
        signin.passwords_checked(),
        3,
        "no refusal hashed the password"
    );
    clock.advance_secs(1);
    c.send(hello("ada", "pw")).await;
    let w = c.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert!(w["sessionToken"].as_str().is_some_and(|t| t.len() == 43));
    assert_eq!(signin.passwords_checked(), 4);
}

#[tokio::test]
// The session token from welcome signs in without the password (on any number of sockets);
// signOut revokes it and closes every socket signed in with it; the token is then refused.
// hello needs exactly one of credential and sessionToken.
async fn session_token_signs_in_and_sign_out_revokes_it() {
    let s = Server::start(&three_agents()).await;
    let (_first, token) = sign_in(&s, "ada").await;

    let mut again = raw_agent(&s).await;
    raw_send(&mut again, hello_token("ada", &token)).await;
    let Some(Ok(Message::Text(t))) = again.next().await else {
        panic!("no welcome")
    };
    let w: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (w["type"].as_str(), w["username"].as_str()),
        (Some("welcome"), Some("ada"))
    );
    assert!(
        w.get("sessionToken").is_none(),
        "no new token for a token sign-in"
    );
    let mut third = raw_agent(&s).await;
    raw_send(&mut third, hello_token("ada", &token)).await;
    third.next().await;

    // Not grace's token, and not a token at all.
    let mut other = s.agent().await;
    other.send(hello_token("grace", &token)).await;
    assert_eq!(other.recv().await["code"], "unauthorized");
    other
        .send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw", "sessionToken": token}))
        .await;
    assert_eq!(other.recv().await["code"], "bad_frame");
    other
        .send(json!({"type": "hello", "protocolVersion": 1, "username": "ada"}))
        .await;
    assert_eq!(other.recv().await["code"], "bad_frame");

    raw_send(&mut again, json!({"type": "signOut"})).await;
    for ws in [&mut again, &mut third] {
        let (frames, code) = until_close(ws).await;
        assert_eq!(frames.last().unwrap()["code"], "unauthorized");
        assert_eq!(code, Some(4005), "closed as access revoked");
    }
    let mut after = s.agent().await;
    after.send(hello_token("ada", &token)).await;
    assert_eq!(after.recv().await["code"], "unauthorized");
    assert_eq!(s.state.engine.signin.token_count(), 0);
}

#[tokio::test]
// A reload that removes an agent, or changes their password hash, closes their sockets at
// once (signed in only, or Online) and voids their tokens; an unchanged agent keeps working.
async fn reload_revokes_removed_and_changed_agents() {
    let s = Server::start(&three_agents()).await;
    let mut ada = raw_agent(&s).await; // removed by the reload; Online
    raw_send(&mut ada, hello("ada", "pw")).await;
    ada.next().await;
    raw_send(
        &mut ada,
        json!({"type": "setPresence", "presence": "Online"}),
    )
    .await;
    ada.next().await;
    let mut grace = raw_agent(&s).await; // new password; signed in, no presence yet
    raw_send(&mut grace, hello("grace", "pw")).await;
    let Some(Ok(Message::Text(t))) = grace.next().await else {
        panic!("no welcome")
    };
    let grace_token = serde_json::from_str::<Value>(&t).unwrap()["sessionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut bob, bob_token) = sign_in(&s, "bob").await; // unchanged

    let new_hash =
        em_server::config::PasswordHash::create("pw2", em_server::config::MIN_ITERATIONS);
    let ada_table = format!(
        "[[agent]]\nusername = \"ada\"\ndisplay_name = \"Ada\"\npassword_hash = \"{PW_HASH}\"\ncapacity = 2\nqueues = [\"support\"]\n"
    );
    let text = three_agents().replacen(&ada_table, "", 1).replacen(
        &format!("username = \"grace\"\ndisplay_name = \"grace\"\npassword_hash = \"{PW_HASH}\""),
        &format!("username = \"grace\"\ndisplay_name = \"grace\"\npassword_hash = \"{new_hash}\""),
        1,
    );
    let config = em_server::Config::parse(&text).unwrap();
    assert!(config.agent("ada").is_none() && config.agent("grace").is_some());
    s.state.engine.reload(config).await.unwrap();

    for ws in [&mut ada, &mut grace] {
        let (frames, code) = until_close(ws).await;
        assert_eq!(frames.last().unwrap()["code"], "unauthorized", "{frames:?}");
        assert_eq!(code, Some(4005));
    }
    bob.send(json!({"type": "ping"})).await;
    assert_eq!(bob.recv().await["type"], "pong");
    let mut back = s.agent().await;
    back.send(hello_token("bob", &bob_token)).await;
    assert_eq!(back.recv().await["type"], "welcome");
    back.send(hello_token("grace", &grace_token)).await;
    assert_eq!(
        back.recv().await["code"],
        "bad_frame",
        "already signed in as bob"
    );
    let mut g = s.agent().await;
    g.send(hello_token("grace", &grace_token)).await;
    assert_eq!(g.recv().await["code"], "unauthorized");
    g.send(hello("grace", "pw2")).await;
    assert_eq!(g.recv().await["type"], "welcome");
}

#[tokio::test]
// While every password-hashing slot is taken, a password sign-in is refused with rate_limited
// (not counted as a failure) and a token sign-in, which hashes nothing, still gets in.
async fn hash_cap_refuses_password_sign_ins_beyond_it() {
    let text = three_agents() + "max_concurrent_hashes = 1\nhash_queue_wait_ms = 50\n";
    let s = Server::start(&text).await;
    let (_a, token) = sign_in(&s, "ada").await;
    let signin = &s.state.engine.signin;
    let held = signin.hash_permit(Duration::from_secs(5)).await.unwrap();
    let mut b = s.agent().await;
    b.send(hello("grace", "pw")).await;
    let refused = b.recv().await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["retryAfterMs"], 1_000);
    b.send(hello_token("ada", &token)).await;
    assert_eq!(b.recv().await["type"], "welcome");
    drop(held);
    let (_g, _) = sign_in(&s, "grace").await;
}

#[tokio::test]
// A token is refused once its lifetime (session_hours) is over, and a socket signed in with
// it is closed at its next frame.
async fn expired_token_is_refused() {
    let clock = ManualClock::new(1_700_000_000_000);
    let text = three_agents() + "session_hours = 1\n";
    let s = Server::start_with_clock(&text, clock.clone()).await;
    let (mut a, token) = sign_in(&s, "ada").await;
    clock.advance_secs(3599);
    let mut b = s.agent().await;
    b.send(hello_token("ada", &token)).await;
    assert_eq!(b.recv().await["type"], "welcome");
    clock.advance_secs(1);
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.recv().await["code"], "unauthorized");
    assert!(a.recv().await.is_null(), "closed");
    let mut c = s.agent().await;
    c.send(hello_token("ada", &token)).await;
    assert_eq!(c.recv().await["code"], "unauthorized");
}

#[tokio::test]
// /agent/ws refuses a foreign page's Origin with 403 before upgrading; the console's own
// origin, a configured console origin and no Origin (not a browser) are accepted.
async fn agent_socket_checks_origin() {
    let s = Server::start(&three_agents()).await;
    assert_eq!(
        Ws::connect(s.addr, "/agent/ws", Some(EVIL)).await.err(),
        Some(403)
    );
    assert_eq!(
        Ws::connect(s.addr, "/agent/ws", Some(ORIGIN)).await.err(),
        Some(403),
        "a deployment's page origin is not the console's"
    );
    let own = format!("http://{}", s.addr);
    for origin in [
        Some(own.as_str()),
        Some("https://console.example.com"),
        None,
    ] {
        let mut a = Ws::connect(s.addr, "/agent/ws", origin)
            .await
            .unwrap_or_else(|code| panic!("{origin:?} refused with {code}"));
        a.send(hello("ada", "pw")).await;
        assert_eq!(a.recv().await["type"], "welcome");
    }
}

#[tokio::test]
// The real binary logs one warning per failed sign-in naming the user and the address, never
// the password.
async fn failed_sign_in_is_logged_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.toml");
    std::fs::write(&file, config(1)).unwrap();
    let db = dir.path().join("em.sqlite");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_em-server"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "em_server=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, Duration::from_secs(10)).await;
    let mut a = Ws::connect(addr, "/agent/ws", None).await.unwrap();
    a.send(hello("ada", "hunter2-secret")).await;
    assert_eq!(a.recv().await["code"], "unauthorized");

    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), err.next_line())
            .await
            .expect("no sign-in warning within 10 s")
            .unwrap()
            .unwrap();
        assert!(!line.contains("hunter2"), "password logged: {line}");
        if line.contains("agent sign-in failed") {
            break line;
        }
    };
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("\"ada\""), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
}
