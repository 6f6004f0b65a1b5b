// Proves the agent socket with routing: assignment, replies both ways, ending, capacity, reconnect.
mod common;

use common::*;
use serde_json::{Value, json};

fn text_of(frame: &Value) -> Option<&str> {
    payload(frame)["abstractMessage"]["staticContent"]["text"].as_str()
}

#[tokio::test]
// A wrong credential is unauthorized and the socket stays open for a retry; frames before hello are refused.
async fn agent_sign_in() {
    let s = Server::start(&config(1)).await;
    let mut a = s.agent().await;
    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    assert_eq!(a.recv().await["code"], "handshake_required");
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "nope"}))
        .await;
    assert_eq!(a.recv().await["code"], "unauthorized");
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    let mut welcome = a.recv().await;
    // A random session token (tests/signin.rs covers it).
    assert!(
        welcome
            .as_object_mut()
            .unwrap()
            .remove("sessionToken")
            .is_some()
    );
    assert_eq!(
        welcome,
        json!({"type": "welcome", "protocolVersion": 1, "username": "ada", "displayName": "Ada", "capacity": 1, "queues": ["support"]})
    );
}

#[tokio::test]
// Visitor writes, the Online agent is assigned with history, replies, and the visitor receives the reply.
async fn agent_is_assigned_and_replies_reach_the_visitor() {
    let s = Server::start(&config(3)).await;
    let mut a = s.agent_online().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(send_message(&id, &uuid(), "hello")).await;

    let assigned = a.recv().await;
    assert_eq!(assigned["type"], "assigned");
    assert_eq!(assigned["conversation"]["conversationId"], id);
    assert_eq!(assigned["conversation"]["status"], "Active");
    let history: Vec<&str> = assigned["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entryPayload"]["entryType"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "Message",
            "RoutingResult",
            "SessionStatusChanged",
            "ParticipantChanged",
            "SessionStatusChanged"
        ]
    );

    // The visitor sees routing, the agent joining, then Active.
    let joined = v
        .recv_until(|f| is_entry_type(f, "ParticipantChanged"))
        .await;
    let change = &payload(&joined)["entries"][0];
    assert_eq!(change["operation"], "add");
    assert_eq!(
        change["participant"],
        json!({"role": "Agent", "subject": "ada"})
    );
    assert_eq!(change["displayName"], "Ada");
    assert_eq!(payload(&v.recv().await)["sessionStatus"], "Active");

    // Visitor → agent, live.
    v.send(send_message(&id, &uuid(), "are you there?")).await;
    let live = a.recv().await;
    assert_eq!(
        (live["type"].as_str(), text_of(&live)),
        (Some("entry"), Some("are you there?"))
    );

    // Agent → visitor, deduped by entryId.
    let entry = uuid();
    let reply = json!({"type": "sendMessage", "conversationId": id, "entryId": entry, "text": "Yes, Ada here."});
    a.send(reply.clone()).await;
    let ack = a.recv_until(|f| f["type"] == "ack").await;
    assert_eq!(ack["entryId"], entry);
    let got = v
        .recv_until(|f| f["type"] == "entry" && f["entry"]["sender"]["role"] == "Agent")
        .await;
    assert_eq!(text_of(&got), Some("Yes, Ada here."));
    assert_eq!(got["entry"]["senderDisplayName"], "Ada");
    a.send(reply).await;
    assert_eq!(a.recv_until(|f| f["type"] == "ack").await, ack);
    v.assert_quiet().await;

    // Another conversation is not the agent's to write in.
    let (_, other) = s.visitor_with_conversation().await;
    a.send(
        json!({"type": "sendMessage", "conversationId": other, "entryId": uuid(), "text": "hi"}),
    )
    .await;
    assert_eq!(
        a.recv_until(|f| f["type"] == "error").await["code"],
        "unauthorized"
    );
    a.send(json!({"type": "endSession", "conversationId": other}))
        .await;
    assert_eq!(a.recv().await["code"], "unauthorized");

    // Validation is the same as the visitor's, with the entry id echoed.
    let bad = uuid();
    a.send(json!({"type": "sendMessage", "conversationId": id, "entryId": bad, "text": " "}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "error", "code": "invalid_message", "message": "text is empty", "entryId": bad})
    );
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    assert_eq!(
        a.recv().await["code"],
        "bad_frame",
        "a second hello is refused"
    );
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));
}

#[tokio::test]
// endSession: the visitor sees the agent leave and Ended, then sendMessage gets conversation_ended.
async fn end_session_ends_the_conversation_for_the_visitor() {
    let s = Server::start(&config(1)).await;
    let mut a = s.agent_online().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    let first = uuid();
    v.send(send_message(&id, &first, "hello")).await;
    a.recv_until(|f| f["type"] == "assigned").await;
    v.recv_until(|f| {
        is_entry_type(f, "SessionStatusChanged") && payload(f)["sessionStatus"] == "Active"
    })
    .await;

    a.send(json!({"type": "endSession", "conversationId": id}))
        .await;
    let left = v.recv().await;
    assert_eq!(payload(&left)["entries"][0]["operation"], "remove");
    assert_eq!(payload(&v.recv().await)["sessionStatus"], "Ended");
    a.recv_until(|f| f["type"] == "released" && f["conversationId"] == id)
        .await;

    let late = uuid();
    v.send(send_message(&id, &late, "still there?")).await;
    assert_eq!(
        v.recv().await,
        json!({"type": "error", "code": "conversation_ended",
        "message": format!("conversation {id} has ended; start a new one"), "entryId": late})
    );
    v.send(send_message(&id, &first, "hello")).await;
    assert_eq!(
        v.recv().await["seq"],
        1,
        "a resent message stored before the end is still acked"
    );
    v.send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    assert_eq!(v.recv().await["status"], "Ended");
}

#[tokio::test]
// A capacity-1 agent gets the second conversation only once the first ends.
async fn capacity_is_respected() {
    let s = Server::start(&config(1)).await;
    let mut a = s.agent_online().await;
    let (mut v1, c1) = s.visitor_with_conversation().await;
    let (mut v2, c2) = s.visitor_with_conversation().await;
    v1.send(send_message(&c1, &uuid(), "first")).await;
    assert_eq!(
        a.recv_until(|f| f["type"] == "assigned").await["conversation"]["conversationId"],
        c1
    );
    v2.send(send_message(&c2, &uuid(), "second")).await;
    let waiting = v2
        .recv_until(|f| is_entry_type(f, "SessionStatusChanged"))
        .await;
    assert_eq!(payload(&waiting)["sessionStatus"], "Waiting");
    v2.assert_quiet().await;
    a.assert_quiet().await;

    a.send(json!({"type": "endSession", "conversationId": c1}))
        .await;
    let next = a.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(next["conversation"]["conversationId"], c2);
    let active = v2
        .recv_until(|f| is_entry_type(f, "SessionStatusChanged"))
        .await;
    assert_eq!(payload(&active)["sessionStatus"], "Active");
}

#[tokio::test]
// An agent who reconnects gets `assigned` again for open conversations; Offline agents get no new work.
async fn reconnect_restores_assignments_and_offline_gets_nothing() {
    let s = Server::start(&config(2)).await;
    let mut a = s.agent_online().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    a.recv_until(|f| f["type"] == "assigned").await;
    drop(a);
    // Let the server notice the disconnect before the next conversation is routed.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Disconnected: the agent is offline, so a new conversation waits.
    let (mut v2, c2) = s.visitor_with_conversation().await;
    v2.send(send_message(&c2, &uuid(), "anyone?")).await;
    v2.recv_until(|f| is_entry_type(f, "SessionStatusChanged"))
        .await;
    // Nobody Online can take it: the visitor is told so (the routing fallback message).
    let fallback = v2.recv().await;
    assert_eq!(fallback["entry"]["sender"]["role"], "System");
    assert!(
        text_of(&fallback)
            .unwrap()
            .starts_with("Nobody is available")
    );
    v2.assert_quiet().await;

    let mut a = s.agent().await;
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    a.recv().await;
    a.send(json!({"type": "setPresence", "presence": "Offline"}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "presence", "presence": "Offline"})
    );
    let again = a.recv().await;
    assert_eq!(
        (
            again["type"].as_str(),
            again["conversation"]["conversationId"].as_str()
        ),
        (Some("assigned"), Some(id.as_str()))
    );
    a.assert_quiet().await;

    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    assert_eq!(a.recv().await["presence"], "Online");
    assert_eq!(a.recv().await["conversation"]["conversationId"], c2);
}

#[tokio::test]
// Typing indicators are relayed both ways between the visitor and the assigned agent, and never stored.
async fn typing_is_relayed_both_ways_and_not_stored() {
    let s = Server::start(&config(1)).await;
    let mut a = s.agent_online().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    a.recv_until(|f| f["type"] == "assigned").await;
    v.recv_until(|f| {
        is_entry_type(f, "SessionStatusChanged") && payload(f)["sessionStatus"] == "Active"
    })
    .await;

    v.send(json!({"type": "typing", "conversationId": id, "typing": true}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "typing", "conversationId": id, "typing": true})
    );
    a.send(json!({"type": "typing", "conversationId": id, "typing": true}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"type": "typing", "conversationId": id, "typing": true,
               "sender": {"role": "Agent", "subject": "ada"}, "senderDisplayName": "Ada"})
    );
    // Not stored: the conversation's last seq is unchanged (message, routing, agent joined, Active).
    v.send(json!({"type": "resume", "conversationId": id, "afterSeq": 5}))
        .await;
    assert_eq!(v.recv().await["lastSeq"], 5);
    v.assert_quiet().await;
    // Someone else's conversation: refused.
    let (mut other, _) = s.visitor_with_conversation().await;
    other
        .send(json!({"type": "typing", "conversationId": id, "typing": true}))
        .await;
    assert_eq!(other.recv().await["code"], "not_found");
}
