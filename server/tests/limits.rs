//! Quotas and rate limits of the public visitor endpoint (`[deployment.limits]`): each is
//! answered with `rate_limited` and `retryAfterMs` (sockets: HTTP 429), refuses only the
//! abuser, and loses nothing that was acknowledged. Also the oracles the limits sit beside.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The test deployment with these `[deployment.limits]` keys (TOML inline-table body).
fn with_limits(limits: &str) -> String {
    config(1).replace(
        "queue = \"support\"\n",
        &format!("queue = \"support\"\nlimits = {{ {limits} }}\n"),
    )
}

/// Sends `frames`, then reads exactly one answer per frame.
async fn answers(ws: &mut Ws, frames: Vec<Value>) -> Vec<Value> {
    let n = frames.len();
    for f in frames {
        ws.send(f).await;
    }
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let v = ws.recv().await;
        assert!(!v.is_null(), "socket closed after {} answers", got.len());
        got.push(v);
    }
    got
}

fn is_limited(v: &Value) -> bool {
    v["type"] == "error" && v["code"] == "rate_limited"
}

fn wait_of(v: &Value) -> Duration {
    let ms = v["retryAfterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("rate_limited without retryAfterMs: {v}"));
    assert!(ms > 0, "{v}");
    Duration::from_millis(ms)
}

#[tokio::test]
// 1,000 createConversation from one socket: the hourly quota creates 20 and refuses the rest
// with rate_limited, while another visitor's conversation and message are served as usual.
async fn a_thousand_creations_are_cut_off_while_others_chat() {
    let s = Server::start(&with_limits(
        "frames_per_second = 100000, open_conversations = 100000, conversations_per_hour = 20",
    ))
    .await;
    let mut abuser = s.visitor().await;
    abuser.hello(None).await;
    let frames = (0..1000)
        .map(|_| json!({"type": "createConversation", "conversationId": uuid()}))
        .collect();
    let got = answers(&mut abuser, frames).await;
    let created = got.iter().filter(|v| v["type"] == "conversation").count();
    let limited: Vec<&Value> = got.iter().filter(|v| is_limited(v)).collect();
    assert_eq!(created, 20, "the hourly quota");
    assert_eq!(limited.len(), 980);
    // The next conversation is ~3 minutes away (20 per hour).
    assert!(wait_of(limited[0]) > Duration::from_secs(60));

    let (mut honest, id) = s.visitor_with_conversation().await;
    let entry = uuid();
    honest.send(send_message(&id, &entry, "hello")).await;
    let ack = honest.recv_until(|f| f["type"] == "ack").await;
    assert_eq!(ack["entryId"], entry.as_str());
}

#[tokio::test]
// At most `open_conversations` open at once per end user; ending one frees a place.
async fn open_conversations_are_capped_until_one_ends() {
    let s = Server::start(&with_limits("open_conversations = 2")).await;
    let mut v = s.visitor().await;
    v.hello(None).await;
    let ids: Vec<String> = (0..3).map(|_| uuid()).collect();
    let got = answers(
        &mut v,
        ids.iter()
            .map(|id| json!({"type": "createConversation", "conversationId": id}))
            .collect(),
    )
    .await;
    assert_eq!(got[0]["type"], "conversation");
    assert_eq!(got[1]["type"], "conversation");
    assert!(is_limited(&got[2]), "{}", got[2]);
    wait_of(&got[2]);
    // Creating an existing one again is not a new conversation: no quota.
    let again = answers(
        &mut v,
        vec![json!({"type": "createConversation", "conversationId": ids[0]})],
    )
    .await;
    assert_eq!(again[0]["created"], false);

    v.send(json!({"type": "endConversation", "conversationId": ids[0]}))
        .await;
    v.send(json!({"type": "createConversation", "conversationId": ids[2]}))
        .await;
    let created = v.recv_until(|f| f["type"] == "conversation").await;
    assert_eq!(created["conversationId"], ids[2].as_str());
    assert_eq!(created["created"], true);
}

#[tokio::test]
// Frames beyond the socket's rate are refused, not acted on; after the wait they work again.
async fn frames_beyond_the_rate_are_refused_then_allowed_again() {
    let s = Server::start(&with_limits("frames_per_second = 10")).await;
    let mut v = s.visitor().await;
    v.hello(None).await; // one frame of the burst of 20
    let got = answers(&mut v, vec![json!({"type": "ping"}); 60]).await;
    let pongs = got.iter().filter(|f| f["type"] == "pong").count();
    let limited: Vec<&Value> = got.iter().filter(|f| is_limited(f)).collect();
    assert_eq!(pongs + limited.len(), 60, "each frame answered once");
    assert!((19..30).contains(&pongs), "the burst passes: {pongs} pongs");
    tokio::time::sleep(wait_of(limited.last().unwrap())).await;
    assert_eq!(
        answers(&mut v, vec![json!({"type": "ping"})]).await[0]["type"],
        "pong"
    );
}

#[tokio::test]
// Messages beyond the rate are refused with their entryId; sent again after the wait they
// are stored once each, in the order the visitor wrote them.
async fn refused_messages_resent_after_the_wait_are_stored_once_in_order() {
    let s = Server::start(&with_limits("messages_per_second = 2")).await;
    let (mut v, id, credential) = s.visitor_with_credential().await;
    let entries: Vec<String> = (0..12).map(|_| uuid()).collect();
    for (i, e) in entries.iter().enumerate() {
        v.send(send_message(&id, e, &format!("m{i}"))).await;
    }
    let mut acked = HashSet::new();
    let mut refused = Vec::new();
    while acked.len() + refused.len() < entries.len() {
        let f = v
            .recv_until(|f| f["type"] == "ack" || f["type"] == "error")
            .await;
        if f["type"] == "ack" {
            acked.insert(f["entryId"].as_str().unwrap().to_string());
        } else {
            assert!(is_limited(&f), "{f}");
            refused.push(f);
        }
    }
    assert!(
        !refused.is_empty() && acked.len() >= 4,
        "{} acked",
        acked.len()
    );
    // Send every message again in order, as the widget does, waiting as told.
    while acked.len() < entries.len() {
        tokio::time::sleep(wait_of(refused.last().unwrap())).await;
        refused.clear();
        for (i, e) in entries.iter().enumerate() {
            if acked.contains(e) {
                continue;
            }
            v.send(send_message(&id, e, &format!("m{i}"))).await;
            let f = v
                .recv_until(|f| f["type"] == "ack" || f["type"] == "error")
                .await;
            if f["type"] == "ack" {
                acked.insert(e.clone());
            } else {
                assert!(is_limited(&f), "{f}");
                assert_eq!(f["entryId"], e.as_str());
                refused.push(f);
                break;
            }
        }
    }
    let mut fresh = s.visitor().await;
    fresh.hello(Some(&credential)).await;
    let texts: Vec<String> = fresh
        .stored_history(&id)
        .await
        .into_iter()
        .filter(|e| e.sender.role == em_protocol::Role::EndUser)
        .filter_map(|e| e.entry_payload.as_text().map(str::to_string))
        .collect();
    let expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
}

/// Opens a visitor socket with extra request headers; the error is the refusal's status.
async fn visitor_with_headers(s: &Server, headers: &[(&str, &str)]) -> Result<impl Sized, u16> {
    let mut req = format!("ws://{}{}", s.addr, visitor_path())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static(ORIGIN));
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::try_from(*k).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 429);
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            Err(429)
        }
        Err(e) => panic!("connect failed: {e}"),
    }
}

#[tokio::test]
// Sockets per client address are capped (429 with Retry-After); a closed one frees its place.
// Behind a trusted proxy, each forwarded address has its own count.
async fn sockets_per_address_are_capped() {
    let s = Server::start(&with_limits("connections_per_address = 3")).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(visitor_with_headers(&s, &[]).await.unwrap());
    }
    assert_eq!(visitor_with_headers(&s, &[]).await.err(), Some(429));
    drop(open.pop());
    // The server notices the close on its side; retry until the place is free.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = visitor_with_headers(&s, &[]).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a closed socket gives its place back");
    // A forged header from an untrusted peer changes nothing.
    let forged = [("X-Forwarded-For", "203.0.113.9")];
    assert_eq!(visitor_with_headers(&s, &forged).await.err(), Some(429));

    let behind_proxy = format!(
        "{}\n[proxy]\nclient_address_header = \"X-Forwarded-For\"\ntrusted = [\"127.0.0.1\"]\n",
        with_limits("connections_per_address = 1")
    );
    let s = Server::start(&behind_proxy).await;
    let a = [("X-Forwarded-For", "198.51.100.1, 203.0.113.1")];
    let b = [("X-Forwarded-For", "203.0.113.2")];
    let _a = visitor_with_headers(&s, &a).await.unwrap();
    assert_eq!(visitor_with_headers(&s, &a).await.err(), Some(429));
    let _b = visitor_with_headers(&s, &b).await.unwrap();
}

#[tokio::test]
// New identities (hello without a credential) per address per minute are capped; a returning
// visitor with a credential is not.
async fn new_visitors_per_address_are_capped_but_returning_ones_are_not() {
    let s = Server::start(&with_limits("new_visitors_per_minute = 3")).await;
    let mut credentials = Vec::new();
    for _ in 0..3 {
        let mut v = s.visitor().await;
        credentials.push(v.hello(None).await.1);
    }
    let mut v = s.visitor().await;
    let got = answers(&mut v, vec![json!({"type": "hello", "protocolVersion": 1})]).await;
    assert!(is_limited(&got[0]), "{}", got[0]);
    assert!(wait_of(&got[0]) > Duration::from_secs(10), "one per 20 s");
    // The refused hello left the socket open and unidentified: a credential still works.
    v.hello(Some(&credentials[0])).await;
}

#[tokio::test]
// A conversation holds at most `entries_per_conversation` entries: the next visitor message
// is refused with its entryId, while a resent, already stored one is still acknowledged.
async fn a_full_conversation_refuses_new_messages() {
    let s = Server::start(&with_limits("entries_per_conversation = 6")).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    let mut stored = Vec::new();
    let refused = loop {
        let e = uuid();
        v.send(send_message(&id, &e, "again")).await;
        let f = v
            .recv_until(|f| f["type"] == "ack" || f["type"] == "error")
            .await;
        if f["type"] == "error" {
            break f;
        }
        stored.push(e);
        assert!(stored.len() < 10, "never refused");
    };
    assert!(is_limited(&refused), "{refused}");
    assert!(refused["entryId"].is_string());
    assert!(refused["message"].as_str().unwrap().contains("end it"));
    v.send(send_message(&id, &stored[0], "again")).await;
    let ack = v
        .recv_until(|f| f["type"] == "ack" || f["type"] == "error")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[tokio::test]
// Oracles: another visitor's conversation id is not_found (as a made-up one), a credential
// works only in the deployment that issued it, and an afterSeq beyond any seq is bad_frame.
async fn no_oracles_and_no_internal_errors() {
    let second = format!(
        "{}\n[[deployment]]\norg_id = \"{ORG}\"\nname = \"Second\"\nallowed_origins = [\"http://127.0.0.1:*\"]\nqueue = \"support\"\n",
        config(1)
    );
    let s = Server::start(&second).await;
    let (_owner, id, credential) = s.visitor_with_credential().await;
    let mut other = s.visitor().await;
    other.hello(None).await;
    let taken = answers(
        &mut other,
        vec![json!({"type": "createConversation", "conversationId": id})],
    )
    .await;
    let made_up = answers(
        &mut other,
        vec![json!({"type": "resume", "conversationId": uuid(), "afterSeq": 0})],
    )
    .await;
    assert_eq!(taken[0]["code"], "not_found");
    assert_eq!(made_up[0]["code"], "not_found");

    let path = format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName=Second");
    let mut elsewhere = Ws::connect(s.addr, &path, Some(ORIGIN)).await.unwrap();
    let refused = answers(
        &mut elsewhere,
        vec![json!({"type": "hello", "protocolVersion": 1, "credential": credential})],
    )
    .await;
    assert_eq!(refused[0]["code"], "unauthorized");

    let mut owner = s.visitor().await;
    owner.hello(Some(&credential)).await;
    let huge = answers(
        &mut owner,
        vec![json!({"type": "resume", "conversationId": id, "afterSeq": 9_223_372_036_854_775_813u64})],
    )
    .await;
    assert_eq!(huge[0]["code"], "bad_frame", "{}", huge[0]);
    // The socket is still fine.
    owner.stored_history(&id).await;
}

#[tokio::test]
// Amplification: 20 page changes (setContext) in a conversation with a long history send the
// agent 20 small `context` frames, never the history again (bytes counted).
async fn set_context_reaches_the_agent_as_small_frames() {
    let s = Server::start(&generous(&config(1))).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    let long = "x".repeat(4000);
    for _ in 0..30 {
        v.send(send_message(&id, &uuid(), &long)).await;
        v.recv_until(|f| f["type"] == "ack").await;
    }
    let mut ada = s.agent_online().await;
    let assigned = ada.recv_until(|f| f["type"] == "assigned").await;
    let history_bytes = assigned.to_string().len();
    assert!(history_bytes > 100_000, "{history_bytes}");

    for i in 0..20 {
        v.send(json!({"type": "setContext", "conversationId": id,
                      "page": {"url": format!("https://shop.example.com/p/{i}"), "title": "Shop"}}))
            .await;
    }
    let mut bytes = 0;
    for i in 0..20 {
        let f = ada.recv_until(|f| f["type"] == "context").await;
        assert_eq!(
            f["context"]["page"]["url"],
            format!("https://shop.example.com/p/{i}")
        );
        bytes += f.to_string().len();
    }
    ada.assert_quiet().await;
    println!("20 setContext: {bytes} bytes to the agent (the history is {history_bytes} bytes)");
    assert!(bytes < 20 * 300, "{bytes} bytes for 20 page changes");
}
