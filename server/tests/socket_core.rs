//! The connection core both sockets share (`socket.rs`): the same answers, word for word, to
//! malformed, unknown and binary frames, the handshake gate, the version check and its close.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use em_protocol::close::CloseCode;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Safety net against hangs only; nothing below asserts a duration.
const PATIENCE: Duration = Duration::from_secs(30);

type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The two sockets: (name, path, origin) and a valid `hello` for each.
fn sockets() -> [(&'static str, String, Option<&'static str>, Value); 2] {
    [
        (
            "visitor",
            visitor_path(),
            Some(ORIGIN),
            json!({"type": "hello", "protocolVersion": 1}),
        ),
        (
            "agent",
            "/agent/ws".to_string(),
            None,
            json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}),
        ),
    ]
}

/// A client that sees close frames (the harness's `Ws` hides their codes).
async fn open(addr: SocketAddr, path: &str, origin: Option<&str>) -> Raw {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_str(o).unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn send(ws: &mut Raw, v: &Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text frame as JSON, or how the connection ended: the close code the server sent,
/// or `None` without a close frame.
async fn next(ws: &mut Raw) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Err(None),
        }
    }
}

async fn recv(ws: &mut Raw) -> Value {
    next(ws).await.expect("a text frame, not the end")
}

fn bad_frame(message: &str) -> Value {
    json!({"type": "error", "code": "bad_frame", "message": message})
}

#[tokio::test]
// Both sockets answer malformed, unknown and binary frames and frames before hello with the same
// error frames, keep the connection, and after hello refuse a second hello but serve ping.
async fn both_sockets_share_the_gate_and_its_answers() {
    let s = Server::start(&config(1)).await;
    for (name, path, origin, hello) in sockets() {
        let mut ws = open(s.addr, &path, origin).await;
        ws.send(Message::Binary(Bytes::from_static(&[1, 2])))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut ws).await,
            bad_frame("binary frames are not supported; send JSON text"),
            "{name}"
        );
        ws.send(Message::text("nope")).await.unwrap();
        let e = recv(&mut ws).await;
        assert_eq!(e["code"], "bad_frame", "{name}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("frame is not valid JSON: "),
            "{name}: {e}"
        );
        send(&mut ws, &json!({"type": "launchRocket"})).await;
        assert_eq!(
            recv(&mut ws).await,
            bad_frame("unknown frame type \"launchRocket\""),
            "{name}"
        );
        send(&mut ws, &json!({"type": "ping"})).await;
        assert_eq!(
            recv(&mut ws).await,
            json!({"type": "error", "code": "handshake_required", "message": "the first frame must be hello"}),
            "{name}"
        );
        send(&mut ws, &hello).await;
        assert_eq!(recv(&mut ws).await["type"], "welcome", "{name}");
        send(&mut ws, &hello).await;
        assert_eq!(
            recv(&mut ws).await,
            bad_frame("hello was already accepted on this connection"),
            "{name}"
        );
        send(&mut ws, &json!({"type": "ping"})).await;
        assert_eq!(recv(&mut ws).await, json!({"type": "pong"}), "{name}");
    }
}

#[tokio::test]
// A hello of another protocol version is answered unsupported_version and closed with 4004,
// on both sockets.
async fn another_version_is_refused_and_closed_on_both_sockets() {
    let s = Server::start(&config(1)).await;
    for (name, path, origin, mut hello) in sockets() {
        let mut ws = open(s.addr, &path, origin).await;
        hello["protocolVersion"] = json!(99);
        send(&mut ws, &hello).await;
        assert_eq!(
            recv(&mut ws).await,
            json!({
                "type": "error",
                "code": "unsupported_version",
                "message": "this server speaks protocol version 1, not 99",
            }),
            "{name}"
        );
        assert_eq!(
            next(&mut ws).await,
            Err(Some(CloseCode::UnsupportedVersion.code())),
            "{name}"
        );
        assert_eq!(CloseCode::UnsupportedVersion.code(), 4004);
    }
}

#[tokio::test]
// An agent hello with both a credential and a session token is a bad_frame before its version
// is looked at: the socket stays open and a good hello then signs in.
async fn a_malformed_agent_hello_is_refused_before_its_version() {
    let s = Server::start(&config(1)).await;
    let mut ws = open(s.addr, "/agent/ws", None).await;
    send(
        &mut ws,
        &json!({"type": "hello", "protocolVersion": 99, "username": "ada",
                "credential": "pw", "sessionToken": "t"}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        bad_frame("hello needs exactly one of credential and sessionToken")
    );
    send(&mut ws, &sockets()[1].3).await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
}

#[tokio::test]
// The visitor's rates are applied before the handshake gate: every answer to a burst of
// sendMessage before hello names its entryId, rate_limited or handshake_required; a refused
// frame that does not even parse still gets its entryId back.
async fn visitor_rates_come_before_the_gate_and_name_the_entry() {
    let config = config(1).replace(
        "queue = \"support\"\n",
        "queue = \"support\"\nlimits = { frames_per_second = 100000, messages_per_second = 1 }\n",
    );
    let s = Server::start(&config).await;
    let mut ws = open(s.addr, &visitor_path(), Some(ORIGIN)).await;
    let ids: Vec<String> = (0..40).map(|_| uuid()).collect();
    for id in &ids {
        let m = json!({"type": "sendMessage", "conversationId": uuid(), "entryId": id,
                       "text": "hi", "clientTimestamp": 1});
        send(&mut ws, &m).await;
    }
    let mut codes = std::collections::BTreeSet::new();
    for id in &ids {
        let e = recv(&mut ws).await;
        assert_eq!(e["entryId"], id.as_str(), "{e}");
        codes.insert(e["code"].as_str().unwrap().to_string());
    }
    assert_eq!(
        codes,
        ["handshake_required", "rate_limited"]
            .map(String::from)
            .into()
    );

    // Frames over their rate are refused before parsing; a sendMessage's entryId is still read.
    let config = config.replace("frames_per_second = 100000", "frames_per_second = 1");
    let s = Server::start(&config).await;
    let mut ws = open(s.addr, &visitor_path(), Some(ORIGIN)).await;
    for id in &ids {
        // No conversationId: this frame never parses.
        send(&mut ws, &json!({"type": "sendMessage", "entryId": id})).await;
    }
    let mut limited = 0;
    for id in &ids {
        let e = recv(&mut ws).await;
        if e["code"] == "rate_limited" {
            assert_eq!(e["entryId"], id.as_str(), "{e}");
            limited += 1;
        } else {
            assert_eq!(e["code"], "bad_frame", "{e}");
            assert!(e.get("entryId").is_none(), "{e}");
        }
    }
    assert!(limited > 0, "some frames were over the rate");
}
