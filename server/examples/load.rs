//! Load generator: persisted messages per second and ack latency, or delivery latency to an agent.
//!
//! `cargo run --release -p em-server --example load -- [--addr URL]... [--visitors N] [--messages N]`
//! (the demo deployment `00D000000000001` / `Demo_Deployment` must be configured): many
//! visitors, spread round-robin over the `--addr` nodes, each sending messages one at a time
//! (waiting for the ack).
//! With `--messages 0`, the visitors only open a conversation and then stay idle until
//! Enter is pressed (or stdin closes): for measuring the server's memory per idle conversation.
//!
//! With `--agent-addr URL`: delivery latency, the time from a visitor's send to its agent's
//! receipt of the entry. The agent (`--agent`, `--password`) signs in Online on that node, one
//! visitor per `--addr` opens a conversation, which routing gives to the agent, and the visitors
//! take turns sending one message at a time: so a visitor on the agent's node and one on another
//! node are measured in the same run, under the same conditions.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Parser)]
struct Args {
    /// A node's base URL; visitors are spread round-robin over all of them.
    #[arg(long = "addr", default_value = "http://127.0.0.1:8080")]
    addrs: Vec<String>,
    /// Visitors (ignored with --agent-addr: one per --addr).
    #[arg(long, default_value_t = 200)]
    visitors: usize,
    /// Messages per visitor (0: open conversations and stay idle); with --agent-addr, in all.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Measures delivery latency to an agent signed in on this node instead.
    #[arg(long)]
    agent_addr: Option<String>,
    /// The agent's username (with --agent-addr).
    #[arg(long, default_value = "ada")]
    agent: String,
    /// The agent's password (with --agent-addr).
    #[arg(long, default_value = "demo-password")]
    password: String,
}

/// How long a frame may be awaited before the run fails, as a safety net against a hang (a
/// stalled server, a frame that never comes).
const PATIENCE: Duration = Duration::from_secs(60);

/// The next frame of type `ty`, skipping others; panics on an error frame or a closed socket.
async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    recv_until(ws, ty, |v| v["type"] == ty).await
}

/// The next frame that is `wanted` (described by `what`), skipping others; panics on an error
/// frame, a closed socket, or when none comes within [`PATIENCE`], naming the frames skipped.
async fn recv_until(ws: &mut Ws, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut skipped = Vec::new();
    loop {
        let next = tokio::time::timeout(PATIENCE, ws.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                if wanted(&v) {
                    return v;
                }
                if v["type"] == "error" {
                    panic!("error frame while awaiting {what}: {v}");
                }
                skipped.push(v["type"].to_string());
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("socket ended while awaiting {what}: {other:?}"),
            Err(_) => panic!("no {what} within {PATIENCE:?}; frames skipped: {skipped:?}"),
        }
    }
}

/// A socket to `path` on the node at `base` (`http://host:port`), with an `Origin` if given.
async fn connect(base: &str, path: &str, origin: Option<&'static str>) -> Ws {
    let url = format!("{}{path}", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("valid URL");
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_static(origin));
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

/// Opens `visitors` conversations and keeps their sockets open until stdin ends a line.
async fn idle(addrs: &[String], visitors: usize) {
    let mut sockets = Vec::with_capacity(visitors);
    for chunk in (0..visitors).collect::<Vec<_>>().chunks(200) {
        let opened: Vec<_> = chunk
            .iter()
            .map(|&i| tokio::spawn(open(addrs[i % addrs.len()].clone())))
            .collect();
        for t in opened {
            sockets.push(t.await.expect("visitor task"));
        }
    }
    println!(
        "{} idle conversations open; press Enter to close them",
        sockets.len()
    );
    let mut line = String::new();
    let _ = tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut line,
    )
    .await;
}

/// A visitor that said hello and created a conversation: (socket, conversation id).
async fn open(base: String) -> (Ws, String) {
    let path = "/embeddedservice/v1/ws?orgId=00D000000000001&esConfigName=Demo_Deployment";
    // A page's origin that the demo config allows.
    let mut ws = connect(&base, path, Some("http://127.0.0.1:1")).await;
    send(&mut ws, json!({"type": "hello", "protocolVersion": 1})).await;
    recv_type(&mut ws, "welcome").await;
    let id = uuid::Uuid::new_v4().to_string();
    send(
        &mut ws,
        json!({"type": "createConversation", "conversationId": id}),
    )
    .await;
    recv_type(&mut ws, "conversation").await;
    (ws, id)
}

/// Sends message `i` as a new entry and returns the entry's id.
async fn send_message(ws: &mut Ws, conversation: &str, i: usize) -> String {
    let entry = uuid::Uuid::new_v4().to_string();
    let frame = json!({"type": "sendMessage", "conversationId": conversation, "entryId": entry,
                       "text": format!("message {i}"), "clientTimestamp": 0});
    send(ws, frame).await;
    entry
}

async fn visitor(base: String, messages: usize) -> Vec<Duration> {
    let (mut ws, id) = open(base).await;
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let t = Instant::now();
        send_message(&mut ws, &id, i).await;
        recv_type(&mut ws, "ack").await;
        latencies.push(t.elapsed());
    }
    latencies
}

/// `(p50, p99, max)` of `all`, which it sorts.
fn percentiles(all: &mut [Duration]) -> (Duration, Duration, Duration) {
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.5), pct(0.99), all[all.len() - 1])
}

async fn throughput(addrs: &[String], visitors: usize, messages: usize) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..visitors)
        .map(|i| tokio::spawn(visitor(addrs[i % addrs.len()].clone(), messages)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("visitor task"));
    }
    let elapsed = start.elapsed();
    let count = all.len();
    let (p50, p99, max) = percentiles(&mut all);
    println!(
        "{count} messages from {visitors} visitors on {} node(s) in {:.2} s: {:.0} persisted messages/s; ack latency p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}",
        addrs.len(),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
    );
}

/// The agent signed in and Online on `base`.
async fn agent(base: &str, username: &str, password: &str) -> Ws {
    // No Origin: a program, not a page (the demo config names no console origin).
    let mut ws = connect(base, "/agent/ws", None).await;
    send(
        &mut ws,
        json!({"type": "hello", "protocolVersion": 1, "username": username, "credential": password}),
    )
    .await;
    recv_type(&mut ws, "welcome").await;
    send(
        &mut ws,
        json!({"type": "setPresence", "presence": "Online"}),
    )
    .await;
    recv_type(&mut ws, "presence").await;
    ws
}

async fn delivery(args: &Args, agent_addr: &str) {
    let mut agent = agent(agent_addr, &args.agent, &args.password).await;
    let mut visitors = Vec::new();
    for addr in &args.addrs {
        let (mut ws, id) = open(addr.clone()).await;
        // The first message sends the conversation to routing, which gives it to the agent.
        send_message(&mut ws, &id, 0).await;
        recv_type(&mut ws, "ack").await;
        recv_until(&mut agent, "assigned", |f| {
            f["type"] == "assigned" && f["conversation"]["conversationId"] == id.as_str()
        })
        .await;
        visitors.push((ws, id, Vec::with_capacity(args.messages)));
    }
    // Turns, so that every node's visitor meets the same conditions over the run.
    for i in 1..=args.messages {
        let (ws, id, latencies) = &mut visitors[i % args.addrs.len()];
        let t = Instant::now();
        let entry = send_message(ws, id, i).await;
        recv_until(&mut agent, "the entry", |f| {
            f["type"] == "entry" && f["entry"]["identifier"] == entry.as_str()
        })
        .await;
        latencies.push(t.elapsed());
        recv_type(ws, "ack").await;
    }
    for (addr, (_, _, latencies)) in args.addrs.iter().zip(&mut visitors) {
        let count = latencies.len();
        if count == 0 {
            continue;
        }
        let (p50, p99, max) = percentiles(latencies);
        let place = if addr == agent_addr {
            "same node "
        } else {
            "other node"
        };
        println!(
            "visitor on the agent's {place}: {count} messages delivered to the agent, latency p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}"
        );
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(agent_addr) = &args.agent_addr {
        return delivery(&args, agent_addr).await;
    }
    if args.messages == 0 {
        return idle(&args.addrs, args.visitors).await;
    }
    throughput(&args.addrs, args.visitors, args.messages).await;
}
