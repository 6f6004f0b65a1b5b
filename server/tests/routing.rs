// Proves Omni-Channel-style routing end to end: capacity under concurrency, skills and rules,
// priority order, presence changes mid-flight, reopened conversations, and transfers.
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use common::*;
use em_server::clock::ManualClock;
use serde_json::{Value, json};

/// Agents ada (capacity 2, support + billing, skill billing), grace and bob (capacity 1,
/// support); billing needs the skill; rules send Topic=billing to billing at priority 10.
fn team() -> String {
    format!(
        r#"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[[deployment.routing_rule]]
when = {{ "prechat.Topic" = "billing" }}
queue = "billing"
priority = 10
[[deployment.routing_rule]]
when = {{ "hidden.Tier" = "gold" }}
priority = 5
[[queue]]
name = "support"
average_handle_seconds = 120
[[queue]]
name = "billing"
skills = ["billing"]
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = 2
queues = ["support", "billing"]
skills = ["billing"]
[[agent]]
username = "grace"
display_name = "Grace"
password_hash = "{PW_HASH}"
capacity = 1
queues = ["support"]
[[agent]]
username = "bob"
display_name = "Bob"
password_hash = "{PW_HASH}"
capacity = 1
queues = ["support"]
"#
    )
}

/// A visitor who sent a first message (after `context`, if any); returns (socket, id).
async fn waiting_visitor(s: &Server, context: Option<Value>) -> (Ws, String) {
    let (v, id, _) = first_message(s, context).await;
    (v, id)
}

/// Like `waiting_visitor`, also returning the `RoutingResult` frame.
async fn first_message(s: &Server, context: Option<Value>) -> (Ws, String, Value) {
    let (mut v, id) = s.visitor_with_conversation().await;
    if let Some(mut c) = context {
        c["type"] = json!("setContext");
        c["conversationId"] = json!(id);
        v.send(c).await;
    }
    v.send(send_message(&id, &uuid(), "hello")).await;
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    (v, id, routed)
}

fn assigned_id(f: &Value) -> String {
    assert_eq!(f["type"], "assigned", "{f}");
    f["conversation"]["conversationId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn presence(a: &mut Ws, p: &str) {
    a.send(json!({"type": "setPresence", "presence": p})).await;
    assert_eq!(
        a.recv_until(|f| f["type"] == "presence").await["presence"],
        p
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
// 40 visitors at once, three agents with total capacity 4: nobody exceeds capacity, every
// conversation is assigned exactly once, none is lost.
async fn capacity_holds_under_concurrency() {
    let s = Arc::new(Server::start(&generous(&team())).await);
    let capacity: HashMap<&str, usize> = [("ada", 2), ("grace", 1), ("bob", 1)].into();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    const N: usize = 40;

    let mut agents = Vec::new();
    for (name, cap) in capacity.clone() {
        let (s, seen) = (s.clone(), seen.clone());
        agents.push(tokio::spawn(async move {
            let mut a = s.agent_named(name).await;
            let mut open = HashSet::new();
            loop {
                let f = a
                    .recv_until(|f| matches!(f["type"].as_str(), Some("assigned" | "released")))
                    .await;
                let id = f["conversation"]["conversationId"]
                    .as_str()
                    .or(f["conversationId"].as_str())
                    .unwrap()
                    .to_string();
                if f["type"] == "released" {
                    open.remove(&id);
                    continue;
                }
                assert!(open.insert(id.clone()), "{name} got {id} twice");
                assert!(open.len() <= cap, "{name} over capacity: {}", open.len());
                seen.lock().unwrap().push((id.clone(), name.to_string()));
                // Hold it a moment so conversations pile up, then end it.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                a.send(json!({"type": "endSession", "conversationId": id}))
                    .await;
            }
        }));
    }
    let mut visitors = Vec::new();
    for _ in 0..N {
        let s = s.clone();
        visitors.push(tokio::spawn(async move {
            let (mut v, id) = s.visitor_with_conversation().await;
            v.send(send_message(&id, &uuid(), "help")).await;
            v.recv_until(|f| {
                is_entry_type(f, "SessionStatusChanged") && payload(f)["sessionStatus"] == "Ended"
            })
            .await;
            id
        }));
    }
    let mut ids = HashSet::new();
    for v in visitors {
        ids.insert(v.await.unwrap());
    }
    // Every conversation ended; an agent's failed check is its task's panic.
    for a in agents {
        a.abort();
        if let Err(e) = a.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let seen = seen.lock().unwrap();
    let assigned: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(seen.len(), N, "each conversation assigned once");
    assert_eq!(assigned.len(), N);
    assert!(ids.iter().all(|id| assigned.contains(id)), "none lost");
}

#[tokio::test]
// Skills and rules: a billing conversation waits for the agent with the skill, even with
// another agent free; the visitor sees its queue position and estimated wait.
async fn skills_and_rules_pick_the_agent() {
    let s = Server::start(&team()).await;
    let mut grace = s.agent_named("grace").await;
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(
        json!({"type": "setContext", "conversationId": id, "prechatFields": {"Topic": "Billing"},
                  "page": {"url": "https://shop.example.com/cart", "title": "Cart"}}),
    )
    .await;
    v.send(send_message(&id, &uuid(), "my invoice")).await;
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    // ada (who has the skill) is offline: nobody can take it now.
    assert_eq!(payload(&routed)["failureType"], "NoAgentAvailable");
    grace.assert_quiet().await;

    let mut ada = s.agent_named("ada").await;
    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned_id(&f), id);
    assert_eq!(f["conversation"]["queue"], "billing");
    assert_eq!(
        f["conversation"]["context"]["prechatFields"],
        json!({"Topic": "Billing"})
    );
    assert_eq!(
        f["conversation"]["context"]["page"]["url"],
        "https://shop.example.com/cart"
    );
    v.recv_until(|f| is_entry_type(f, "ParticipantChanged"))
        .await;

    // Equal free capacity (1 each): the agent with fewer conversations, grace, goes first.
    let (_v2, c2) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&grace.recv_until(|f| f["type"] == "assigned").await),
        c2
    );
    let (_v3, c3) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        c3
    );
    // Everyone Online is full: the next two wait and are told where they stand. Seats that
    // serve support: ada 2 + grace 1 + bob 1 (offline, but he could) → 4 per 120 s round.
    let (_v4, _, r4) = first_message(&s, None).await;
    assert_eq!(
        payload(&r4)["estimatedWaitTime"],
        json!({"position": 1, "estimatedWaitTimeInSeconds": 120})
    );
    assert!(payload(&r4)["failureType"].is_null());
    for _ in 0..3 {
        first_message(&s, None).await;
    }
    let (_v8, _, r8) = first_message(&s, None).await;
    assert_eq!(
        payload(&r8)["estimatedWaitTime"],
        json!({"position": 5, "estimatedWaitTimeInSeconds": 240})
    );
}

#[tokio::test]
// Higher priority is served first when capacity frees; equal priorities stay first come, first served.
async fn priority_then_arrival() {
    let s = Server::start(&team()).await;
    let mut grace = s.agent_named("grace").await;
    let (_v0, c0) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&grace.recv_until(|f| f["type"] == "assigned").await),
        c0
    );
    let (_v1, c1) = waiting_visitor(&s, None).await;
    let (_v2, c2) = waiting_visitor(&s, Some(json!({"hiddenFields": {"Tier": "Gold"}}))).await;
    let (_v3, c3) = waiting_visitor(&s, None).await;
    let mut order = Vec::new();
    let mut open = c0;
    for _ in 0..3 {
        grace
            .send(json!({"type": "endSession", "conversationId": open}))
            .await;
        open = assigned_id(&grace.recv_until(|f| f["type"] == "assigned").await);
        order.push(open.clone());
    }
    assert_eq!(order, [c2, c1, c3]);
}

#[tokio::test]
// Busy and Away keep their conversations (replies still work) but get nothing new; Online again takes the waiting one.
async fn presence_changes_mid_flight() {
    let s = Server::start(&config(2)).await;
    let mut ada = s.agent_online().await;
    let (mut v1, c1) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        c1
    );
    presence(&mut ada, "Busy").await;
    let (_v2, c2) = waiting_visitor(&s, None).await;
    ada.send(json!({"type": "sendMessage", "conversationId": c1, "entryId": uuid(), "text": "still here"}))
        .await;
    assert_eq!(
        ada.recv_until(|f| f["type"] != "entry").await["type"],
        "ack"
    );
    v1.recv_until(|f| f["entry"]["sender"]["role"] == "Agent")
        .await;
    presence(&mut ada, "Away").await;
    ada.assert_quiet().await;
    presence(&mut ada, "Online").await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        c2
    );
}

#[tokio::test]
// A conversation whose agent went offline and that reopens hours later goes to whoever is
// Online, with its history; while the agent is Online it stays with them.
async fn reopened_conversation_goes_to_whoever_is_available() {
    let clock = ManualClock::new(1_800_000_000_000);
    let s = Server::start_with_clock(&team(), clock.clone()).await;
    let mut ada = s.agent_named("ada").await;
    let (mut v, id) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        id
    );
    // Within the hour nothing moves, even with ada gone.
    clock.advance_secs(600);
    drop(ada);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut grace = s.agent_named("grace").await;
    v.send(send_message(&id, &uuid(), "quick follow-up")).await;
    grace.assert_quiet().await;

    clock.advance_secs(5 * 3600);
    v.send(send_message(&id, &uuid(), "back the next morning"))
        .await;
    let f = grace.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned_id(&f), id);
    let texts: Vec<&str> = f["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["entryPayload"]["abstractMessage"]["staticContent"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["hello", "quick follow-up", "back the next morning"]);
    let left = v
        .recv_until(|f| {
            is_entry_type(f, "ParticipantChanged")
                && payload(f)["entries"][0]["operation"] == "remove"
        })
        .await;
    assert_eq!(
        payload(&left)["entries"][0]["participant"]["subject"],
        "ada"
    );
    let again = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    assert_eq!(payload(&again)["routingType"], "Reopened");
    let joined = v
        .recv_until(|f| is_entry_type(f, "ParticipantChanged"))
        .await;
    assert_eq!(
        payload(&joined)["entries"][0]["participant"]["subject"],
        "grace"
    );
}

#[tokio::test]
// Transfer to an agent moves the conversation at once with its history; to a queue it waits
// for an agent with that queue's skill; a target without room is refused and nothing moves.
async fn transfer_to_agent_and_to_queue() {
    let s = Server::start(&team()).await;
    let mut grace = s.agent_named("grace").await;
    let (mut v, id) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&grace.recv_until(|f| f["type"] == "assigned").await),
        id
    );

    grace
        .send(json!({"type": "transfer", "conversationId": id, "toAgent": "bob"}))
        .await;
    let refused = grace.recv_until(|f| f["type"] == "error").await;
    assert_eq!(refused["code"], "conflict");

    let mut bob = s.agent_named("bob").await;
    grace
        .send(json!({"type": "transfer", "conversationId": id, "toAgent": "bob"}))
        .await;
    assert_eq!(
        grace.recv_until(|f| f["type"] == "released").await["conversationId"],
        id
    );
    let f = bob.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned_id(&f), id);
    let change = v
        .recv_until(|f| {
            is_entry_type(f, "ParticipantChanged")
                && payload(f)["entries"].as_array().unwrap().len() == 2
        })
        .await;
    let ops: Vec<(&str, &str)> = payload(&change)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["participant"]["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ops, [("remove", "grace"), ("add", "bob")]);
    // grace's capacity is free again: a new conversation reaches her.
    let (_v2, c2) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&grace.recv_until(|f| f["type"] == "assigned").await),
        c2
    );

    bob.send(json!({"type": "transfer", "conversationId": id, "toQueue": "billing"}))
        .await;
    assert_eq!(
        bob.recv_until(|f| f["type"] == "released").await["conversationId"],
        id
    );
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    assert_eq!(payload(&routed)["routingType"], "Transfer");
    let mut ada = s.agent_named("ada").await;
    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(
        (assigned_id(&f), f["conversation"]["queue"].as_str()),
        (id.clone(), Some("billing"))
    );
    // bob may no longer write there.
    bob.send(json!({"type": "sendMessage", "conversationId": id, "entryId": uuid(), "text": "x"}))
        .await;
    assert_eq!(
        bob.recv_until(|f| f["type"] == "error").await["code"],
        "unauthorized"
    );
}

#[tokio::test]
// A reload that raises an agent's capacity routes waiting work at once; presence and open conversations survive it.
async fn reload_applies_capacity_and_keeps_presence() {
    let s = Server::start(&config(1)).await;
    let mut ada = s.agent_online().await;
    let (_v1, c1) = waiting_visitor(&s, None).await;
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        c1
    );
    let (_v2, c2) = waiting_visitor(&s, None).await;
    ada.assert_quiet().await;
    let bigger = em_server::Config::parse(&config(2)).unwrap();
    s.state.engine.reload(bigger).await.unwrap();
    assert_eq!(
        assigned_id(&ada.recv_until(|f| f["type"] == "assigned").await),
        c2
    );
    // c1 is still ada's: she can still answer it.
    ada.send(json!({"type": "sendMessage", "conversationId": c1, "entryId": uuid(), "text": "still mine"}))
        .await;
    assert_eq!(
        ada.recv_until(|f| f["type"] != "entry").await["type"],
        "ack"
    );
}
