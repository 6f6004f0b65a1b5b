// Proves the conversation lifecycle end to end: the visitor ends a conversation, idle
// conversations go Inactive and wake up, waiting visitors follow their queue position, and
// ended conversations past retention are deleted.
mod common;

use common::*;
use em_server::clock::ManualClock;
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400;

/// `config(capacity)` with extra `[routing]` keys.
fn config_with_routing(capacity: u32, routing: &str) -> String {
    format!("{}\n[routing]\n{routing}\n", config(capacity))
}

/// `config(capacity)` with `retention_days` on the deployment.
fn config_with_retention(capacity: u32, days: u32) -> String {
    let c = config(capacity);
    let at = "queue = \"support\"\n[deployment.branding]";
    assert!(c.contains(at));
    c.replacen(
        at,
        &format!("queue = \"support\"\nretention_days = {days}\n[deployment.branding]"),
        1,
    )
}

/// A visitor with a conversation; returns (socket, conversation id, end user id, credential).
async fn visitor(s: &Server) -> (Ws, String, String, String) {
    let mut v = s.visitor().await;
    let (end_user, credential) = v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    assert_eq!(v.recv().await["created"], true);
    (v, id, end_user, credential)
}

/// Sends the first message; returns the visitor's `RoutingResult` entry frame, having read up
/// to the `Waiting` status that follows it.
async fn write_first(v: &mut Ws, id: &str) -> Value {
    v.send(send_message(id, &uuid(), "hello")).await;
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    let waiting = v.recv().await;
    assert!(is_status(&waiting, "Waiting"), "{waiting}");
    routed
}

fn assigned_id(f: &Value) -> &str {
    assert_eq!(f["type"], "assigned", "{f}");
    f["conversation"]["conversationId"].as_str().unwrap()
}

fn is_status(f: &Value, status: &str) -> bool {
    is_entry_type(f, "SessionStatusChanged") && payload(f)["sessionStatus"] == status
}

fn wait_of(f: &Value) -> (Value, Value) {
    let p = payload(f);
    (p["routingType"].clone(), p["estimatedWaitTime"].clone())
}

fn position(position: u32, seconds: u64) -> Value {
    json!({"position": position, "estimatedWaitTimeInSeconds": seconds})
}

#[tokio::test]
// The visitor ends the conversation: the agent leaves and is released, the `Ended` entry's
// sender is the end user, the freed seat goes to the waiting conversation, a second end
// stores nothing, writing afterwards is refused, a new conversation works, and the metrics
// count the handle time as for an agent's end.
async fn visitor_ends_the_conversation() {
    let s = Server::start(&config(1)).await;
    let mut ada = s.agent_online().await;
    let (mut va, a, end_user, _) = visitor(&s).await;
    write_first(&mut va, &a).await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        a
    );
    va.recv_until(|f| is_status(f, "Active")).await;
    let (mut vb, b, _, _) = visitor(&s).await;
    write_first(&mut vb, &b).await;

    va.send(json!({"type": "endConversation", "conversationId": a}))
        .await;
    let left = va.recv().await;
    assert!(is_entry_type(&left, "ParticipantChanged"), "{left}");
    assert_eq!(
        payload(&left)["entries"],
        json!([{"operation": "remove", "participant": {"role": "Agent", "subject": "ada"},
                "displayName": "Ada"}])
    );
    let ended = va.recv().await;
    assert!(is_status(&ended, "Ended"), "{ended}");
    assert_eq!(
        ended["entry"]["sender"],
        json!({"role": "EndUser", "subject": end_user})
    );
    assert_eq!(ended["entry"]["senderDisplayName"], "Guest");
    // The agent is told as for its own endSession: both entries, then `released`; then the
    // freed seat takes the waiting conversation.
    let told = ada.recv_until(|f| is_status(f, "Ended")).await;
    assert_eq!(told["entry"]["sender"]["role"], "EndUser");
    assert_eq!(
        ada.recv().await,
        json!({"type": "released", "conversationId": a})
    );
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        b
    );

    // Ending again is a no-op: no entry, no answer.
    let last_seq = ended["entry"]["seq"].as_u64().unwrap();
    va.send(json!({"type": "endConversation", "conversationId": a}))
        .await;
    va.assert_quiet().await;
    ada.assert_quiet().await;
    va.send(json!({"type": "resume", "conversationId": a, "afterSeq": last_seq}))
        .await;
    let state = va.recv().await;
    assert_eq!(
        (state["status"].clone(), state["lastSeq"].clone()),
        (json!("Ended"), json!(last_seq))
    );
    va.assert_quiet().await;

    let entry = uuid();
    va.send(send_message(&a, &entry, "one more thing")).await;
    let refused = va.recv().await;
    assert_eq!(
        (refused["code"].as_str(), refused["entryId"].as_str()),
        (Some("conversation_ended"), Some(entry.as_str()))
    );

    // Someone else's conversation cannot be ended (and is not revealed).
    vb.send(json!({"type": "endConversation", "conversationId": a}))
        .await;
    assert_eq!(
        vb.recv_until(|f| f["type"] == "error").await["code"],
        "not_found"
    );

    // A new conversation starts afresh and reaches ada, whose seat is taken by b: it waits.
    let fresh = uuid();
    va.send(json!({"type": "createConversation", "conversationId": fresh}))
        .await;
    let created = va.recv().await;
    assert_eq!(
        (created["created"].clone(), created["status"].clone()),
        (json!(true), json!("New"))
    );
    let routed = write_first(&mut va, &fresh).await;
    assert_eq!(wait_of(&routed), (json!("Initial"), position(1, 300)));

    let report = s.state.engine.report().await.unwrap();
    let session = report
        .sessions
        .iter()
        .find(|r| r.conversation_id == a)
        .unwrap();
    assert_eq!(session.status, "Ended");
    assert!(session.handle_seconds.is_some_and(|h| h >= 0.0));
    assert_eq!(report.totals.ended, 1);
    let ada_figures = report.agents.iter().find(|g| g.name == "ada").unwrap();
    assert_eq!((ada_figures.volume, ada_figures.handled), (2, 1));
}

#[tokio::test]
// A waiting or brand-new conversation can be ended too: no agent leaves, the queue moves up.
async fn visitor_ends_a_waiting_conversation() {
    let s = Server::start(&config(1)).await;
    let mut ada = s.agent_online().await;
    let (mut va, a, _, _) = visitor(&s).await;
    write_first(&mut va, &a).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    let (mut vb, b, _, _) = visitor(&s).await;
    assert_eq!(wait_of(&write_first(&mut vb, &b).await).1, position(1, 300));
    let (mut vc, c, _, _) = visitor(&s).await;
    assert_eq!(wait_of(&write_first(&mut vc, &c).await).1, position(2, 600));

    vb.send(json!({"type": "endConversation", "conversationId": b}))
        .await;
    let ended = vb.recv().await;
    assert!(is_status(&ended, "Ended"), "{ended}");
    let moved = vc.recv_until(|f| f["type"] == "entry").await;
    assert_eq!(wait_of(&moved), (json!("QueueUpdate"), position(1, 300)));
    ada.assert_quiet().await;

    let (mut vd, d, _, _) = visitor(&s).await;
    vd.send(json!({"type": "endConversation", "conversationId": d}))
        .await;
    let ended = vd.recv().await;
    assert!(is_status(&ended, "Ended"), "{ended}");
    assert_eq!(ended["entry"]["seq"], 1);
}

#[tokio::test]
// An idle Active conversation goes Inactive after `inactive_after_seconds` on the clock (by
// the periodic sweep), still holds the agent's seat, and a visitor's or an agent's message
// makes it Active again (the message first, then the status).
async fn idle_conversation_goes_inactive_and_wakes_up() {
    let clock = ManualClock::new(T0);
    let s = Server::start_with_clock(
        &config_with_routing(1, "inactive_after_seconds = 120"),
        clock.clone(),
    )
    .await;
    let mut ada = s.agent_online().await;
    let (mut va, a, _, _) = visitor(&s).await;
    write_first(&mut va, &a).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    va.recv_until(|f| is_status(f, "Active")).await;
    let (mut vb, b, _, _) = visitor(&s).await;
    write_first(&mut vb, &b).await;

    // Not yet: a sweep now changes nothing.
    clock.advance_secs(119);
    s.state.engine.sweep().await.unwrap();
    va.assert_quiet().await;

    // The store thread's own sweep notices the clock moved past the limit.
    clock.advance_secs(1);
    let idle = va.recv().await;
    assert!(is_status(&idle, "Inactive"), "{idle}");
    assert_eq!(idle["entry"]["sender"]["role"], "System");
    assert!(is_status(&ada.recv().await, "Inactive"));
    // Still ada's (capacity 1): the waiting conversation is not given to her.
    let report = s.state.engine.report().await.unwrap();
    assert_eq!(report.totals.waiting_now, 1);
    ada.assert_quiet().await;
    vb.assert_quiet().await;
    // Going Inactive is not activity: later sweeps add nothing.
    clock.advance_secs(600);
    s.state.engine.sweep().await.unwrap();
    va.assert_quiet().await;

    // The visitor writes: the message, then Active, to both sides.
    va.send(send_message(&a, &uuid(), "still there?")).await;
    assert_eq!(va.recv().await["type"], "ack");
    let message = va.recv().await;
    assert!(is_entry_type(&message, "Message"), "{message}");
    let active = va.recv().await;
    assert!(is_status(&active, "Active"), "{active}");
    assert_eq!(
        active["entry"]["seq"].as_u64(),
        message["entry"]["seq"].as_u64().map(|s| s + 1)
    );
    assert!(is_entry_type(&ada.recv().await, "Message"));
    assert!(is_status(&ada.recv().await, "Active"));

    // Idle again, then the agent writes: the same order.
    clock.advance_secs(120);
    s.state.engine.sweep().await.unwrap();
    assert!(is_status(&va.recv().await, "Inactive"));
    assert!(is_status(&ada.recv().await, "Inactive"));
    ada.send(json!({"type": "sendMessage", "conversationId": a, "entryId": uuid(), "text": "yes"}))
        .await;
    assert_eq!(ada.recv().await["type"], "ack");
    assert!(is_entry_type(&ada.recv().await, "Message"));
    assert!(is_status(&ada.recv().await, "Active"));
    let message = va.recv().await;
    assert_eq!(message["entry"]["sender"]["role"], "Agent");
    assert!(is_status(&va.recv().await, "Active"));
    vb.assert_quiet().await;

    // Idle again: routing rebuilt from the database (as at a restart) counts it as ada's;
    // when she ends it, the waiting one takes her seat.
    clock.advance_secs(120);
    s.state.engine.sweep().await.unwrap();
    assert!(is_status(&va.recv().await, "Inactive"));
    let config = std::sync::Arc::new(em_server::Config::parse(&config(1)).unwrap());
    let rebuilt = em_server::engine::Engine::open(
        config,
        &em_server::Database::Sqlite(s.db_path()),
        clock.clone(),
    )
    .unwrap();
    let (held, waiting) = rebuilt
        .run(|inner, _| Ok((inner.routing.assigned("ada"), inner.routing.waiting_count())))
        .await
        .unwrap();
    assert_eq!(
        (
            held.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            waiting
        ),
        (vec![a.clone()], 1)
    );
    drop(rebuilt);
    ada.send(json!({"type": "endSession", "conversationId": a}))
        .await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        b
    );
}

#[tokio::test]
// An Inactive conversation whose agent went away reopens like an Active one when the visitor
// writes after `reopen_after_seconds`: it wakes up, the agent leaves, and it waits again.
async fn inactive_conversation_reopens_when_its_agent_is_gone() {
    let clock = ManualClock::new(T0);
    let routing = "inactive_after_seconds = 60\nreopen_after_seconds = 600";
    let s = Server::start_with_clock(&config_with_routing(1, routing), clock.clone()).await;
    let ada = s.agent_online().await;
    let (mut va, a, _, _) = visitor(&s).await;
    write_first(&mut va, &a).await;
    va.recv_until(|f| is_status(f, "Active")).await;
    drop(ada);
    // Wait until the server noticed: ada is Offline.
    while s.state.engine.report().await.unwrap().totals.agents_online > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    clock.advance_secs(601);
    s.state.engine.sweep().await.unwrap();
    assert!(is_status(&va.recv().await, "Inactive"));
    va.send(send_message(&a, &uuid(), "anyone?")).await;
    assert_eq!(va.recv().await["type"], "ack");
    let mut kinds = Vec::new();
    while kinds.len() < 6 {
        let f = va.recv_until(|f| f["type"] == "entry").await;
        let p = payload(&f);
        kinds.push(match p["entryType"].as_str().unwrap() {
            "SessionStatusChanged" => format!("status {}", p["sessionStatus"].as_str().unwrap()),
            "ParticipantChanged" => {
                format!("{} ada", p["entries"][0]["operation"].as_str().unwrap())
            }
            "RoutingResult" => format!("routed {}", p["routingType"].as_str().unwrap()),
            other => other.to_string(),
        });
    }
    assert_eq!(
        kinds,
        [
            "Message",
            "status Active",
            "remove ada",
            "routed Reopened",
            "status Waiting",
            "Message"
        ]
    );
    let mut ada = s.agent_online().await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        a
    );
}

#[tokio::test]
// Queue positions 1, 2, 3; the first is assigned and the others are told 1 and 2 with the new
// wait; nobody is told anything when their position did not change.
async fn queue_positions_follow_the_queue() {
    let s = Server::start(&config(1)).await;
    let mut ada = s.agent_online().await;
    let (mut va, a, _, _) = visitor(&s).await;
    write_first(&mut va, &a).await;
    ada.recv_until(|f| f["type"] == "assigned").await;

    let mut waiting = Vec::new();
    for expected in 1..=3 {
        let (mut v, id, _, _) = visitor(&s).await;
        let routed = write_first(&mut v, &id).await;
        assert_eq!(
            wait_of(&routed),
            (
                json!("Initial"),
                position(expected, 300 * u64::from(expected))
            )
        );
        waiting.push((v, id));
    }
    for (v, _) in &mut waiting {
        v.assert_quiet().await;
    }

    ada.send(json!({"type": "endSession", "conversationId": a}))
        .await;
    let first = waiting[0].1.clone();
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        first
    );
    for (i, (v, _)) in waiting.iter_mut().enumerate().skip(1) {
        let moved = v.recv().await;
        assert_eq!(
            wait_of(&moved),
            (json!("QueueUpdate"), position(i as u32, 300 * i as u64)),
            "{moved}"
        );
        assert_eq!(moved["entry"]["sender"]["role"], "System");
        v.assert_quiet().await;
    }
    // The assigned one gets the agent, not a position.
    let joined = waiting[0]
        .0
        .recv_until(|f| f["type"] == "entry" && !is_entry_type(f, "Message"))
        .await;
    assert!(is_entry_type(&joined, "ParticipantChanged"), "{joined}");

    // Someone joining behind them moves nobody.
    let (mut late, late_id, _, _) = visitor(&s).await;
    assert_eq!(
        wait_of(&write_first(&mut late, &late_id).await).1,
        position(3, 900)
    );
    for (v, _) in waiting.iter_mut().skip(1) {
        v.assert_quiet().await;
    }
}

#[tokio::test]
// Retention deletes ended conversations older than `retention_days` (entries, assignments,
// session) and their end users left with nothing; recent ended and open conversations stay,
// and so does an end user who has not written yet.
async fn retention_deletes_only_old_ended_conversations() {
    let clock = ManualClock::new(T0);
    let s = Server::start_with_clock(&config_with_retention(3, 30), clock.clone()).await;
    let mut ada = s.agent_online().await;

    let (mut v_old, old, _, old_credential) = visitor(&s).await;
    write_first(&mut v_old, &old).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    ada.send(json!({"type": "endSession", "conversationId": old}))
        .await;
    ada.recv_until(|f| f["type"] == "released").await;

    let (mut v_open, open, _, open_credential) = visitor(&s).await;
    write_first(&mut v_open, &open).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    let mut silent = s.visitor().await;
    let (_, silent_credential) = silent.hello(None).await;

    clock.advance_secs(2 * DAY);
    let (mut v_recent, recent, _, recent_credential) = visitor(&s).await;
    write_first(&mut v_recent, &recent).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    v_recent
        .send(json!({"type": "endConversation", "conversationId": recent}))
        .await;
    v_recent.recv_until(|f| is_status(f, "Ended")).await;

    // 30 days after the first ended, 28 after the second: only the first goes.
    clock.advance_secs(28 * DAY);
    s.state.engine.sweep().await.unwrap();
    clock.advance_secs(1);
    s.state.engine.sweep().await.unwrap();

    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    let count = |sql: &str, id: &str| -> i64 { db.query_row(sql, [id], |r| r.get(0)).unwrap() };
    for (id, kept) in [(&old, 0), (&open, 1), (&recent, 1)] {
        assert_eq!(
            count(
                "SELECT count(*) FROM messaging_session WHERE conversation_id = ?1",
                id
            ),
            kept
        );
        let entries = count(
            "SELECT count(*) FROM conversation_entry WHERE conversation_id = ?1",
            id,
        );
        assert_eq!(entries > 0, kept == 1, "entries of {id}");
        let assignments = count(
            "SELECT count(*) FROM routing_assignment WHERE conversation_id = ?1",
            id,
        );
        assert_eq!(assignments, kept, "assignments of {id}");
    }

    // The deleted conversation's end user is gone: its credential no longer works.
    let mut again = s.visitor().await;
    again
        .send(json!({"type": "hello", "protocolVersion": 1, "credential": old_credential}))
        .await;
    assert_eq!(again.recv().await["code"], "unauthorized");
    // The others keep their identity and their conversations.
    for (credential, id, status) in [
        (open_credential, Some(&open), "Inactive"),
        (recent_credential, Some(&recent), "Ended"),
        (silent_credential, None, ""),
    ] {
        let mut v = s.visitor().await;
        v.hello(Some(&credential)).await;
        if let Some(id) = id {
            v.send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
                .await;
            assert_eq!(v.recv().await["status"], status);
        }
    }
}

#[test]
// The new keys are validated, each error naming its field.
fn config_validation_of_the_new_keys() {
    let err = |text: &str| em_server::Config::parse(text).unwrap_err();
    assert_eq!(
        err(&config_with_routing(1, "inactive_after_seconds = 0")).0,
        "routing.inactive_after_seconds"
    );
    assert_eq!(
        err(&config_with_retention(1, 0)).0,
        "deployment[0].retention_days"
    );
    let parsed = em_server::Config::parse(&config_with_retention(1, 7)).unwrap();
    assert_eq!(parsed.deployment[0].retention_days, Some(7));
    assert_eq!(parsed.routing.inactive_after_seconds, 300, "the default");
    assert_eq!(
        em_server::Config::parse(&config(1)).unwrap().deployment[0].retention_days,
        None
    );
    for bad in [0, 41] {
        let text = format!("{}\n[server]\nidle_close_seconds = {bad}\n", config(1));
        assert_eq!(err(&text).0, "server.idle_close_seconds", "{bad}");
    }
    let text = format!("{}\n[server]\nidle_close_seconds = 40\n", config(1));
    assert_eq!(
        em_server::Config::parse(&text)
            .unwrap()
            .server
            .idle_close_seconds,
        40
    );
    assert_eq!(parsed.server.idle_close_seconds, 30, "the default");
}

#[tokio::test]
// `[server] idle_close_seconds` shortens the heartbeat: a peer that never answers the pings
// (a raw TCP client that completed the WebSocket handshake and went silent) is disconnected.
async fn short_idle_limit_closes_a_silent_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(&format!(
        "{}\n[server]\nidle_close_seconds = 1\n",
        config(1)
    ))
    .await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let upgrade = format!(
        "GET /agent/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    // Read (never answering) until the server closes the connection; with the default 30 s
    // limit this would time out.
    let mut seen = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut seen),
    )
    .await
    .expect("the server did not close the silent socket")
    .unwrap();
    assert!(seen.starts_with(b"HTTP/1.1 101"), "upgraded first");
}
