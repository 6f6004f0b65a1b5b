// Proves every socket has bounded memory: peers that stop reading are closed (slow consumer,
// idle), protocol violations and shutdown close with their codes, and memory comes back.
mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use em_protocol::close::CloseCode;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

/// Safety net against hangs only; nothing below asserts a duration.
const PATIENCE: Duration = Duration::from_secs(60);

type Raw = WebSocketStream<TcpStream>;

/// `config(capacity)` with `[server]` keys and limits loose enough for one test address.
fn config_with(capacity: u32, server: &str) -> String {
    let limits = "[deployment.limits]\nconnections_per_address = 1000\n\
        new_visitors_per_minute = 1000\nframes_per_second = 10000\nmessages_per_second = 10000\n";
    let base = config(capacity).replace(
        "[deployment.branding]",
        &format!("{limits}[deployment.branding]"),
    );
    format!("{base}\n[server]\n{server}\n")
}

/// A WebSocket over a socket with a small receive buffer, so a client that stops reading
/// pushes back on the server after a few kilobytes.
async fn raw(addr: SocketAddr, path: &str, origin: Option<&str>) -> Raw {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_str(o).unwrap());
    }
    let (ws, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    ws
}

async fn raw_visitor(addr: SocketAddr) -> Raw {
    raw(addr, &visitor_path(), Some(ORIGIN)).await
}

async fn send(ws: &mut Raw, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text frame (pings are answered by reading).
async fn recv(ws: &mut Raw) -> Value {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(c))) => panic!("closed: {c:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// Reads to the end of the stream; the close code the server sent, or `None` if the
/// connection ended without a close frame.
async fn close_code(ws: &mut Raw) -> Option<u16> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return None,
        }
    }
}

/// Polls `cond` until it holds (safety net: [`PATIENCE`]).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the hub decided to close some connection with `code`.
fn hub_closing(s: &Server, code: CloseCode) -> bool {
    s.state
        .engine
        .hub
        .closing()
        .iter()
        .any(|(_, r)| r.is_some_and(|r| r.code == code))
}

/// A visitor who wrote `n` messages of 4,000 characters; returns (socket, conversation,
/// credential).
async fn history(addr: SocketAddr, n: usize) -> (Raw, String, String) {
    let mut v = raw_visitor(addr).await;
    send(&mut v, json!({"type": "hello", "protocolVersion": 1})).await;
    let welcome = recv(&mut v).await;
    let credential = welcome["credential"].as_str().unwrap().to_string();
    let id = uuid();
    send(
        &mut v,
        json!({"type": "createConversation", "conversationId": id}),
    )
    .await;
    assert_eq!(recv(&mut v).await["type"], "conversation");
    let text = "x".repeat(em_protocol::MAX_TEXT_CHARS);
    for _ in 0..n {
        let entry = uuid();
        send(&mut v, send_message(&id, &entry, &text)).await;
        while recv(&mut v).await["entryId"] != entry.as_str() {}
    }
    (v, id, credential)
}

/// A visitor socket of the end user with `credential`, past `hello`.
async fn returning_visitor(addr: SocketAddr, credential: &str) -> Raw {
    let mut v = raw_visitor(addr).await;
    send(
        &mut v,
        json!({"type": "hello", "protocolVersion": 1, "credential": credential}),
    )
    .await;
    assert_eq!(recv(&mut v).await["type"], "welcome");
    v
}

fn resume(id: &str) -> Value {
    json!({"type": "resume", "conversationId": id, "afterSeq": 0})
}

#[tokio::test]
// A socket that asks for a long history again and again without reading is closed as a slow consumer.
async fn non_reading_socket_is_closed_as_slow_consumer() {
    // A long close timeout: the close frame waits until the test reads (after the decision).
    let s = Server::start(&config_with(
        1,
        "max_queued_bytes = 65536\nclose_timeout_seconds = 60\nwrite_timeout_seconds = 60",
    ))
    .await;
    let (_writer, id, credential) = history(s.addr, 50).await;
    let mut greedy = returning_visitor(s.addr, &credential).await;
    // 40 replays of 200 KB: far more than the socket buffers and the 64 KiB queue hold.
    for _ in 0..40 {
        send(&mut greedy, resume(&id)).await;
    }
    until("the hub marks a slow consumer", || {
        hub_closing(&s, CloseCode::SlowConsumer)
    })
    .await;
    assert_eq!(
        close_code(&mut greedy).await,
        Some(CloseCode::SlowConsumer.code())
    );
}

#[tokio::test]
// A socket that sends nothing and reads nothing (no pong) is closed as idle, before any hello too.
async fn silent_socket_is_closed_as_idle() {
    let s = Server::start(&config_with(1, "idle_close_seconds = 1")).await;
    let mut silent = raw_visitor(s.addr).await;
    // Reading would answer the server's pings: wait for the decision first.
    until("the hub marks an idle socket", || {
        hub_closing(&s, CloseCode::Idle)
    })
    .await;
    assert_eq!(close_code(&mut silent).await, Some(CloseCode::Idle.code()));
}

#[tokio::test]
// An agent whose socket stops reading while visitors write to it goes Offline, and a new conversation is not assigned to it.
async fn agent_that_stops_reading_goes_offline() {
    let s = Server::start(&config_with(
        5,
        "idle_close_seconds = 2\nmax_queued_bytes = 65536",
    ))
    .await;
    let mut ada = raw(s.addr, "/agent/ws", None).await;
    send(
        &mut ada,
        json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}),
    )
    .await;
    assert_eq!(recv(&mut ada).await["type"], "welcome");
    send(
        &mut ada,
        json!({"type": "setPresence", "presence": "Online"}),
    )
    .await;
    assert_eq!(recv(&mut ada).await["presence"], "Online");
    // Two visitors whose conversations go to ada; from here on ada reads nothing.
    let mut visitors = Vec::new();
    for _ in 0..2 {
        let (mut v, id) = s.visitor_with_conversation().await;
        v.send(send_message(&id, &uuid(), "hi")).await;
        v.recv_until(|f| f["type"] == "ack").await;
        visitors.push((v, id));
    }
    let text = "y".repeat(em_protocol::MAX_TEXT_CHARS);
    let hub = s.state.engine.hub.clone();
    let mut sent = 0;
    while !hub.agent_connections("ada").is_empty() {
        assert!(sent < 5000, "ada's socket was never closed");
        for (v, id) in &mut visitors {
            v.send(send_message(id, &uuid(), &text)).await;
            v.recv_until(|f| f["type"] == "ack").await;
            sent += 1;
        }
    }
    let presence = s
        .state
        .engine
        .run(|inner, _| Ok(inner.routing.presence("ada")))
        .await
        .unwrap();
    assert_eq!(presence, em_protocol::agent::Presence::Offline);
    // A new conversation finds nobody Online: it waits instead of going to ada.
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(send_message(&id, &uuid(), "anyone?")).await;
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    assert_eq!(payload(&routed)["failureType"], "NoAgentAvailable");
    let assigned = s
        .state
        .engine
        .run(|inner, _| Ok(inner.routing.assigned("ada")))
        .await
        .unwrap();
    assert!(
        !assigned.iter().any(|c| c.to_string() == id),
        "the new conversation went to ada"
    );
}

#[tokio::test]
// A frame over the size limit gets close code 1009, a text frame that is not UTF-8 gets 1007.
async fn protocol_violations_get_close_codes() {
    let s = Server::start(&config_with(1, "")).await;
    let mut big = raw_visitor(s.addr).await;
    let text = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "z".repeat(300 * 1024)
    );
    big.send(Message::text(text)).await.unwrap();
    assert_eq!(
        close_code(&mut big).await,
        Some(CloseCode::FrameTooLarge.code())
    );

    let mut bad = raw_visitor(s.addr).await;
    let invalid = Bytes::from_static(b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}");
    let frame = Frame::message(invalid, OpCode::Data(Data::Text), true);
    bad.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(
        close_code(&mut bad).await,
        Some(CloseCode::InvalidUtf8.code())
    );
}

/// Starts the binary with `config` on a random port; returns the child and its address.
async fn spawn(dir: &std::path::Path, config: &str) -> (Child, SocketAddr) {
    let file = dir.join("deployments.toml");
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", file.to_str().unwrap()])
        .args(["--db", dir.join("em.sqlite").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, PATIENCE).await;
    (child, addr)
}

/// The process's resident memory in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// How many file descriptors the process has open (its sockets among them).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
// 100 sockets replaying a long history without reading keep the server under a stated memory bound, are closed, memory comes back, and another visitor is still served.
async fn non_reading_sockets_keep_memory_bounded() {
    const SOCKETS: u64 = 100;
    const QUEUE_KIB: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = spawn(
        dir.path(),
        &config_with(
            1,
            &format!(
                "max_queued_bytes = {}\nwrite_timeout_seconds = 2\nclose_timeout_seconds = 1",
                QUEUE_KIB * 1024
            ),
        ),
    )
    .await;
    let pid = child.id().unwrap();
    // 200 entries of 4,000 characters: each replay is ~0.9 MB.
    let (_writer, id, credential) = history(addr, 200).await;
    let base = rss_kib(pid);
    // The writer's socket goes idle meanwhile (it reads nothing either) and may close.
    let fds = open_fds(pid) - 1;
    let mut greedy = Vec::new();
    for _ in 0..SOCKETS {
        greedy.push(returning_visitor(addr, &credential).await);
    }
    for ws in &mut greedy {
        for _ in 0..10 {
            send(ws, resume(&id)).await;
        }
    }
    // Until the server has closed them all (its descriptors say so; the clients read nothing).
    let mut peak = base;
    let start = tokio::time::Instant::now();
    while open_fds(pid) > fds {
        assert!(
            start.elapsed() < PATIENCE,
            "the greedy sockets stay open: {} fds, {fds} before",
            open_fds(pid)
        );
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another visitor is still served; the ack also means the store thread has run every
    // replay queued before it.
    let (_other, _, _) = history(addr, 1).await;
    peak = peak.max(rss_kib(pid));
    // Each socket may hold its queue limit plus the frame being written and its buffers
    // (another queue's worth), and a replay the store thread has serialized but not yet
    // handed over (a third); the allocator's slack comes on top, in the base allowance. A
    // clean clone's CI run on a loaded machine peaked at 2.9 queues a socket (311 MB), the
    // issue's unbounded server at 874 MB and growing.
    let bound = base + SOCKETS * 3 * QUEUE_KIB + 64 * 1024;
    println!("RSS: base {base} KiB, peak {peak} KiB, bound {bound} KiB");
    assert!(peak <= bound, "peak {peak} KiB over the bound {bound} KiB");
    // Memory comes back: at most a quarter of what the abuse added stays (the server trims
    // once the frees have settled; waited for, not timed).
    let back = base + (peak - base) / 4;
    let start = tokio::time::Instant::now();
    let mut after = rss_kib(pid);
    while after > back {
        assert!(
            start.elapsed() < PATIENCE,
            "RSS stays at {after} KiB (base {base} KiB, peak {peak} KiB)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = rss_kib(pid);
    }
    println!("RSS after the sockets closed: {after} KiB");
    // Every greedy socket was closed by the server; count those that got the close frame.
    let mut slow = 0;
    for ws in &mut greedy {
        if close_code(ws).await == Some(CloseCode::SlowConsumer.code()) {
            slow += 1;
        }
    }
    println!("{slow} of {SOCKETS} greedy sockets saw close code 4001 before the close timeout");
}

#[tokio::test]
// SIGTERM: every open socket, one that never said hello too, gets close code 1001 before the binary exits.
async fn sigterm_sends_the_shutdown_code_to_every_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path(), &config_with(1, "")).await;
    let mut greeted = returning_visitor_new(addr).await;
    let mut silent = raw_visitor(addr).await;
    let mut agent = raw(addr, "/agent/ws", None).await;
    // The server knows a socket once it answers a frame on it; these two never say hello.
    for ws in [&mut silent, &mut agent] {
        send(ws, json!({"type": "ping"})).await;
        assert_eq!(recv(ws).await["code"], "handshake_required");
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    for ws in [&mut greeted, &mut silent, &mut agent] {
        assert_eq!(close_code(ws).await, Some(CloseCode::Shutdown.code()));
    }
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A new visitor past `hello`.
async fn returning_visitor_new(addr: SocketAddr) -> Raw {
    let mut v = raw_visitor(addr).await;
    send(&mut v, json!({"type": "hello", "protocolVersion": 1})).await;
    assert_eq!(recv(&mut v).await["type"], "welcome");
    v
}
