//! Load generator: many visitors each sending messages one at a time (wait for the ack), to
//! measure persisted messages per second and ack latency against a running server.
//!
//! `cargo run --release -p em-server --example load -- http://127.0.0.1:8080 [visitors] [messages]`
//! (the demo deployment `00D000000000001` / `Demo_Deployment` must be configured).
//! With `messages` = 0, the visitors only open a conversation and then stay idle until
//! Enter is pressed (or stdin closes): for measuring the server's memory per idle conversation.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                if v["type"] == ty {
                    return v;
                }
                if v["type"] == "error" {
                    panic!("error frame: {v}");
                }
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// Opens `visitors` conversations and keeps their sockets open until stdin ends a line.
async fn idle(base: String, visitors: usize) {
    let mut sockets = Vec::with_capacity(visitors);
    for chunk in (0..visitors).collect::<Vec<_>>().chunks(200) {
        let opened: Vec<_> = chunk
            .iter()
            .map(|_| tokio::spawn(open(base.clone())))
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
    let url = format!(
        "{}/embeddedservice/v1/ws?orgId=00D000000000001&esConfigName=Demo_Deployment",
        base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().expect("valid URL");
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static("http://127.0.0.1:1"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({"type": "hello", "protocolVersion": 1})))
        .await
        .expect("send");
    recv_type(&mut ws, "welcome").await;
    let id = uuid::Uuid::new_v4().to_string();
    ws.send(send(
        json!({"type": "createConversation", "conversationId": id}),
    ))
    .await
    .expect("send");
    recv_type(&mut ws, "conversation").await;
    (ws, id)
}

async fn visitor(base: String, messages: usize) -> Vec<Duration> {
    let (mut ws, id) = open(base).await;
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let entry = uuid::Uuid::new_v4().to_string();
        let t = Instant::now();
        let frame = json!({"type": "sendMessage", "conversationId": id, "entryId": entry,
                           "text": format!("message {i}"), "clientTimestamp": 0});
        ws.send(Message::text(frame.to_string()))
            .await
            .expect("send");
        recv_type(&mut ws, "ack").await;
        latencies.push(t.elapsed());
    }
    latencies
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let visitors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    if messages == 0 {
        return idle(base, visitors).await;
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..visitors)
        .map(|_| tokio::spawn(visitor(base.clone(), messages)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("visitor task"));
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{} messages from {visitors} visitors in {:.2} s: {:.0} persisted messages/s; ack latency p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        all[all.len() - 1]
    );
}
