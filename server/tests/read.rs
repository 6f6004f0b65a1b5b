//! Proves read receipts: the holding agent's `markRead` reaches the visitor as `read`, once, clamped, and again on resume.
mod common;

use common::*;
use serde_json::{Value, json};

/// A visitor whose first message got agent `ada` assigned; returns (visitor, agent, id,
/// the visitor's credential). The last seq is then `LAST`.
async fn assigned_conversation(s: &Server) -> (Ws, Ws, String, String) {
    let mut a = s.agent_online().await;
    let (mut v, id, credential) = s.visitor_with_credential().await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    let assigned = a.recv_until(|f| f["type"] == "assigned").await;
    let last = assigned["history"].as_array().and_then(|h| h.last());
    assert_eq!(last.map(|e| e["seq"].clone()), Some(json!(LAST)));
    // Everything up to the assignment has reached the visitor.
    v.recv_until(|f| f["entry"]["seq"] == LAST).await;
    (v, a, id, credential)
}

/// The message, routing result, Waiting, the agent joining, Active.
const LAST: u64 = 5;

/// Waits until both sockets have handled everything sent so far: a `read` queued for the
/// visitor before its `pong` would arrive first.
async fn next_visitor_frame_after_agent_ping(v: &mut Ws, a: &mut Ws) -> Value {
    a.send(json!({"type": "ping"})).await;
    a.recv_until(|f| f["type"] == "pong").await;
    v.send(json!({"type": "ping"})).await;
    v.recv().await
}

#[tokio::test]
// The agent's markRead is relayed as read; a seq past the last entry is clamped; a repeat or a lower seq is not relayed.
async fn mark_read_reaches_the_visitor_once_and_clamped() {
    let s = Server::start(&config(1)).await;
    let (mut v, mut a, id, _) = assigned_conversation(&s).await;

    a.send(json!({"type": "markRead", "conversationId": id, "seq": 1}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"type": "read", "conversationId": id, "seq": 1})
    );

    a.send(json!({"type": "markRead", "conversationId": id, "seq": LAST + 100}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"type": "read", "conversationId": id, "seq": LAST})
    );

    a.send(json!({"type": "markRead", "conversationId": id, "seq": LAST}))
        .await;
    a.send(json!({"type": "markRead", "conversationId": id, "seq": 1}))
        .await;
    assert_eq!(
        next_visitor_frame_after_agent_ping(&mut v, &mut a).await,
        json!({"type": "pong"})
    );
}

#[tokio::test]
// markRead on a conversation the agent does not hold is unauthorized and the visitor hears nothing.
async fn mark_read_needs_the_conversation() {
    let s = Server::start(&config(1)).await;
    let (mut v, mut a, _id, _) = assigned_conversation(&s).await;

    let other = uuid();
    a.send(json!({"type": "markRead", "conversationId": other, "seq": 1}))
        .await;
    assert_eq!(a.recv().await["code"], "unauthorized");
    assert_eq!(
        next_visitor_frame_after_agent_ping(&mut v, &mut a).await,
        json!({"type": "pong"})
    );
}

#[tokio::test]
// A resuming visitor gets read right after conversation, before the replay; with nothing read, no read at all.
async fn resume_tells_what_was_read() {
    let s = Server::start(&config(1)).await;
    let (_v, mut a, id, credential) = assigned_conversation(&s).await;
    let resume = json!({"type": "resume", "conversationId": id, "afterSeq": 0});

    let mut before = s.visitor().await;
    before.hello(Some(&credential)).await;
    before.send(resume.clone()).await;
    assert_eq!(before.recv().await["type"], "conversation");
    assert_eq!(before.recv().await["entry"]["seq"], 1);

    a.send(json!({"type": "markRead", "conversationId": id, "seq": 1}))
        .await;
    a.send(json!({"type": "ping"})).await;
    a.recv_until(|f| f["type"] == "pong").await;

    let mut after = s.visitor().await;
    after.hello(Some(&credential)).await;
    after.send(resume).await;
    assert_eq!(after.recv().await["type"], "conversation");
    assert_eq!(
        after.recv().await,
        json!({"type": "read", "conversationId": id, "seq": 1})
    );
    assert_eq!(after.recv().await["entry"]["seq"], 1);
}
