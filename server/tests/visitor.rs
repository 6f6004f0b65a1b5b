// Proves the visitor socket: identity, conversations, acks, dedupe, resume and error frames.
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
// hello without a credential issues one; presenting it again is the same end user; a bad one is refused.
async fn handshake_issues_and_recognizes_credentials() {
    let s = Server::start(&config(1)).await;
    let mut v = s.visitor().await;
    let (user, credential) = v.hello(None).await;
    assert_eq!(
        credential.len(),
        43,
        "32 random bytes, base64url without padding"
    );

    let mut again = s.visitor().await;
    let (same_user, same_credential) = again.hello(Some(&credential)).await;
    assert_eq!(
        (same_user, same_credential),
        (user.clone(), credential.clone())
    );

    let mut bad = s.visitor().await;
    bad.send(json!({"type": "hello", "protocolVersion": 1, "credential": "forged"}))
        .await;
    assert_eq!(bad.recv().await["code"], "unauthorized");
    // The connection stays: the widget drops its identity and says hello again.
    let (other, _) = bad.hello(None).await;
    assert_ne!(other, user);

    // Only the hash is stored.
    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM messaging_end_user WHERE credential_sha256 = ?1",
            [credential.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0, "the raw credential is not in the database");
}

#[tokio::test]
// Any frame before hello is handshake_required (connection kept); a wrong version is refused and closed.
async fn handshake_rules() {
    let s = Server::start(&config(1)).await;
    let mut v = s.visitor().await;
    v.send(json!({"type": "ping"})).await;
    let e = v.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("handshake_required"))
    );
    v.hello(None).await;

    let mut old = s.visitor().await;
    old.send(json!({"type": "hello", "protocolVersion": 99}))
        .await;
    assert_eq!(old.recv().await["code"], "unsupported_version");
    assert!(
        old.recv().await.is_null(),
        "server closes after unsupported_version"
    );
}

#[tokio::test]
// createConversation is idempotent for its owner and not_found for anyone else (no oracle).
async fn create_conversation_is_idempotent_and_owned() {
    let s = Server::start(&config(1)).await;
    let mut v = s.visitor().await;
    v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"type": "conversation", "conversationId": id, "status": "New", "lastSeq": 0, "created": true})
    );
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    assert_eq!(v.recv().await["created"], false);

    let mut other = s.visitor().await;
    other.hello(None).await;
    other
        .send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    assert_eq!(other.recv().await["code"], "not_found");
    other
        .send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    assert_eq!(
        other.recv().await["code"],
        "not_found",
        "another visitor's conversation is invisible"
    );
    other.send(send_message(&id, &uuid(), "hi")).await;
    assert_eq!(other.recv().await["code"], "not_found");
}

#[tokio::test]
// A message is on disk when its ack arrives, then fanned out; a resent entryId gets the same seq, stored once.
async fn send_acks_after_persist_and_dedupes() {
    let s = Server::start(&config(1)).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    let entry = uuid();
    v.send(send_message(&id, &entry, "hello")).await;
    let ack = v.recv().await;
    assert_eq!(
        ack,
        json!({"type": "ack", "conversationId": id, "entryId": entry, "seq": 1})
    );

    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    let text: String = db
        .query_row("SELECT payload_json FROM conversation_entry WHERE conversation_id = ?1 AND identifier = ?2", [&id, &entry], |r| r.get(0))
        .unwrap();
    assert!(text.contains("hello"));

    let echo = v.recv().await;
    assert_eq!(echo["entry"]["seq"], 1);
    assert_eq!(echo["entry"]["sender"]["role"], "EndUser");
    // The first message starts routing: RoutingResult and Waiting follow, then (nobody is
    // Online) the fallback message.
    let routed = v.recv().await;
    assert_eq!(payload(&routed)["failureType"], "NoAgentAvailable");
    let waiting = v.recv().await;
    assert_eq!(payload(&waiting)["sessionStatus"], "Waiting");
    assert_eq!(v.recv().await["entry"]["sender"]["role"], "System");

    v.send(send_message(&id, &entry, "hello")).await;
    assert_eq!(
        v.recv().await,
        ack,
        "a duplicate is acknowledged with the original seq"
    );
    v.assert_quiet().await;
    let count: i64 = db
        .query_row("SELECT count(*) FROM conversation_entry WHERE conversation_id = ?1 AND identifier = ?2", [&id, &entry], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
// Another tab of the same visitor receives live entries; resume after a seq replays exactly the gap.
async fn resume_replays_exactly_the_gap_and_tabs_share_entries() {
    let s = Server::start(&config(1)).await;
    let (mut v, id, credential) = s.visitor_with_credential().await;
    let mut texts = vec![];
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        v.send(send_message(&id, &uuid(), text)).await;
        let ack = v.recv_until(|f| f["type"] == "ack").await;
        // seq 1 "one", 2-4 routing entries (result, Waiting, "nobody is available"), 5 "two", 6 "three"
        assert_eq!(ack["seq"], [1, 5, 6][i]);
        texts.push(text);
    }

    let mut tab = s.visitor().await;
    tab.hello(Some(&credential)).await;
    tab.send(json!({"type": "resume", "conversationId": id, "afterSeq": 4}))
        .await;
    let state = tab.recv().await;
    assert_eq!(
        state,
        json!({"type": "conversation", "conversationId": id, "status": "Waiting", "lastSeq": 6, "created": false})
    );
    let replayed: Vec<u64> = [tab.recv().await, tab.recv().await]
        .iter()
        .map(|f| f["entry"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, [5, 6]);
    tab.assert_quiet().await;

    // Live: a message from the first tab reaches the second, after the replay.
    v.send(send_message(&id, &uuid(), "four")).await;
    let live = tab.recv().await;
    assert_eq!(
        (
            live["entry"]["seq"].as_u64(),
            payload(&live)["abstractMessage"]["staticContent"]["text"].as_str()
        ),
        (Some(7), Some("four"))
    );
}

#[tokio::test]
// Bad JSON, unknown types, bad shapes and invalid messages get error frames; the socket keeps working.
async fn bad_frames_are_answered_and_not_fatal() {
    let s = Server::start(&config(1)).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send_raw("{not json").await;
    let e = v.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );
    assert!(e["message"].as_str().unwrap().contains("not valid JSON"));
    v.send(json!({"type": "fromTheFuture"})).await;
    let e = v.recv().await;
    assert_eq!(e["code"], "bad_frame");
    assert!(e["message"].as_str().unwrap().contains("fromTheFuture"));
    v.send(json!({"type": "sendMessage", "conversationId": id}))
        .await;
    assert_eq!(v.recv().await["code"], "bad_frame");
    v.send(json!([1, 2])).await;
    assert_eq!(v.recv().await["code"], "bad_frame");

    let entry = uuid();
    v.send(send_message(&id, &entry, "   ")).await;
    assert_eq!(
        v.recv().await,
        json!({"type": "error", "code": "invalid_message", "message": "text is empty", "entryId": entry})
    );
    v.send(send_message(&id, &entry, &"x".repeat(4001))).await;
    assert_eq!(v.recv().await["code"], "invalid_message");
    v.send(send_message(&id, &entry, &"é".repeat(4000))).await;
    assert_eq!(
        v.recv().await["type"],
        "ack",
        "4000 characters (not bytes) are fine"
    );

    v.send(json!({"type": "ping"})).await;
    assert_eq!(
        v.recv_until(|f| f["type"] != "entry").await,
        json!({"type": "pong"})
    );
}
