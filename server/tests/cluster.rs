// Proves that several em-server processes on one PostgreSQL are one service: a visitor on one
// node and an agent on another see each other's entries live and in order (typing and read
// receipts too), a transfer crosses nodes, concurrent assignment from every node never exceeds
// an agent's capacity nor assigns a conversation twice, and kill -9 of the node holding a
// visitor or an agent loses no acknowledged entry once they resume through another node.
mod common;
mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use em_protocol::{ConversationEntry, EntryId, EntryPayload, Role};
use serde_json::{Value, json};
use support::peer::Peer;
use tokio::process::{Child, Command};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_em-server");

/// One server process and its address.
struct Node {
    child: Child,
    addr: SocketAddr,
}

/// Starts a node on a random port, on the database at `url`.
async fn node(config: &Path, url: &str) -> Node {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("EM_NODE_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, Duration::from_secs(30)).await;
    Node { child, addr }
}

/// A fresh database, a config file with `agents`, and `n` nodes on them.
async fn cluster(n: usize, config_text: &str) -> (tempfile::TempDir, String, Vec<Node>) {
    let url = support::postgres::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployments.toml");
    std::fs::write(&file, generous(config_text)).unwrap();
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(&file, &url).await);
    }
    (dir, url, nodes)
}

/// Agent `name` signed in and Online on the node at `addr`.
async fn agent_at(addr: SocketAddr, name: &str) -> Ws {
    let mut a = Ws::connect(addr, "/agent/ws", None).await.unwrap();
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": name, "credential": "pw"}))
        .await;
    assert_eq!(a.recv().await["type"], "welcome");
    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    a.recv_until(|f| f["type"] == "presence").await;
    a
}

/// A visitor on the node at `addr` with a new conversation and a first message, which sends it
/// to routing: (socket, conversation, credential).
async fn visitor_at(addr: SocketAddr) -> (Ws, String, String) {
    let mut v = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    let (_, credential) = v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv_until(|f| f["type"] == "conversation").await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    v.recv_until(|f| f["type"] == "ack").await;
    (v, id, credential)
}

/// The text of a message entry frame sent by `role`, if it is one.
fn message_from(frame: &Value, role: &str) -> Option<(u64, String)> {
    (is_entry_type(frame, "Message") && frame["entry"]["sender"]["role"] == role).then(|| {
        (
            frame["entry"]["seq"].as_u64().unwrap(),
            payload(frame)["abstractMessage"]["staticContent"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    })
}

/// The next `n` messages from `role` on `ws`, in the order they arrived.
async fn messages(ws: &mut Ws, role: &str, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let f = ws.recv_until(|f| message_from(f, role).is_some()).await;
        got.push(message_from(&f, role).unwrap());
    }
    got
}

fn two_agents(capacity_ada: u32, capacity_bob: u32) -> String {
    config(capacity_ada).replace(
        "queues = [\"support\"]\n",
        &format!(
            "queues = [\"support\"]\n[[agent]]\nusername = \"bob\"\ndisplay_name = \"Bob\"\n\
             password_hash = \"{PW_HASH}\"\ncapacity = {capacity_bob}\nqueues = [\"support\"]\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_and_an_agent_on_different_nodes_talk_live_and_in_order() {
    let (_dir, _url, nodes) = cluster(2, &config(2)).await;
    let (a, b) = (nodes[0].addr, nodes[1].addr);
    let mut agent = agent_at(b, "ada").await;
    let (mut v, id, credential) = visitor_at(a).await;
    let assigned = agent.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(assigned["conversation"]["conversationId"], id.as_str());

    for i in 0..20 {
        v.send(send_message(&id, &uuid(), &format!("visitor {i}")))
            .await;
    }
    let seen = messages(&mut agent, "EndUser", 20).await;
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(
        texts,
        (0..20).map(|i| format!("visitor {i}")).collect::<Vec<_>>()
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "in seq order: {seen:?}"
    );

    for i in 0..20 {
        agent
            .send(
                json!({"type": "sendMessage", "conversationId": id, "entryId": uuid(),
                         "text": format!("agent {i}")}),
            )
            .await;
    }
    let seen = messages(&mut v, "Agent", 20).await;
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(
        texts,
        (0..20).map(|i| format!("agent {i}")).collect::<Vec<_>>()
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "in seq order: {seen:?}"
    );
    let last = seen.last().unwrap().0;

    // Typing and read receipts cross nodes; the read mark is stored, so a visitor who comes
    // back through the agent's node learns it before the replay.
    agent
        .send(json!({"type": "typing", "conversationId": id, "typing": true}))
        .await;
    let typing = v.recv_until(|f| f["type"] == "typing").await;
    assert_eq!(typing["typing"], true);
    agent
        .send(json!({"type": "markRead", "conversationId": id, "seq": last}))
        .await;
    let read = v.recv_until(|f| f["type"] == "read").await;
    assert_eq!(read["seq"], last);
    let mut again = Ws::connect(b, &visitor_path(), Some(ORIGIN)).await.unwrap();
    again.hello(Some(&credential)).await;
    again
        .send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    let read = again.recv_until(|f| f["type"] == "read").await;
    assert_eq!(read["seq"], last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_between_agents_on_different_nodes_moves_the_conversation() {
    let (_dir, _url, nodes) = cluster(2, &two_agents(1, 1)).await;
    let mut ada = agent_at(nodes[0].addr, "ada").await;
    let (mut v, id, _) = visitor_at(nodes[0].addr).await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    let mut bob = agent_at(nodes[1].addr, "bob").await;
    ada.send(json!({"type": "transfer", "conversationId": id, "toAgent": "bob"}))
        .await;
    let got = bob.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(got["conversation"]["conversationId"], id.as_str());
    ada.recv_until(|f| f["type"] == "released").await;
    v.send(send_message(&id, &uuid(), "still there?")).await;
    assert_eq!(messages(&mut bob, "EndUser", 1).await[0].1, "still there?");
    bob.send(
        json!({"type": "sendMessage", "conversationId": id, "entryId": uuid(), "text": "Bob here"}),
    )
    .await;
    assert_eq!(messages(&mut v, "Agent", 1).await[0].1, "Bob here");
}

/// Conversations each agent holds open, and conversations held by more than one assignment,
/// read from the database.
fn holdings(url: &str) -> (BTreeMap<String, i64>, Vec<String>) {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let held = db
            .query(
                "SELECT agent_username, count(*) FROM messaging_session
                 WHERE status IN ('Active', 'Inactive') AND agent_username IS NOT NULL GROUP BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect();
        let twice = db
            .query(
                "SELECT conversation_id::text FROM routing_assignment WHERE released_at IS NULL
                 GROUP BY 1 HAVING count(*) > 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        (held, twice)
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_assignment_on_three_nodes_respects_capacity_and_assigns_once() {
    let seed = support::seed("cluster-assignment");
    let mut rng = support::Rng::new(seed);
    let (ada_cap, bob_cap) = (2, 3);
    let (_dir, url, nodes) = cluster(3, &two_agents(ada_cap, bob_cap)).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let mut ada = agent_at(addrs[0], "ada").await;
    let mut bob = agent_at(addrs[1], "bob").await;
    let mut assigned: Vec<String> = Vec::new();
    let mut visitors = Vec::new();
    for round in 0..4 {
        // A crowd arrives on random nodes at once.
        let crowd: Vec<_> = (0..8)
            .map(|_| {
                let addr = addrs[rng.between(0, 2) as usize];
                tokio::spawn(visitor_at(addr))
            })
            .collect();
        for c in crowd {
            visitors.push(c.await.unwrap());
        }
        // Every seat fills; then nothing more is assigned.
        let seats = (ada_cap + bob_cap) as usize;
        let open = |assigned: &Vec<String>| assigned.len();
        let deadline = Instant::now() + Duration::from_secs(20);
        while open(&assigned) < seats {
            assert!(
                Instant::now() < deadline,
                "round {round}: only {assigned:?} assigned"
            );
            tokio::select! {
                f = ada.recv_until(|f| f["type"] == "assigned") => {
                    assigned.push(f["conversation"]["conversationId"].as_str().unwrap().into())
                }
                f = bob.recv_until(|f| f["type"] == "assigned") => {
                    assigned.push(f["conversation"]["conversationId"].as_str().unwrap().into())
                }
            }
        }
        let distinct: HashSet<&String> = assigned.iter().collect();
        assert_eq!(
            distinct.len(),
            assigned.len(),
            "round {round}: assigned twice: {assigned:?}"
        );
        let (held, twice) = holdings(&url);
        assert!(twice.is_empty(), "round {round}: open twice: {twice:?}");
        assert!(
            held.get("ada").copied().unwrap_or(0) <= ada_cap as i64,
            "{held:?}"
        );
        assert!(
            held.get("bob").copied().unwrap_or(0) <= bob_cap as i64,
            "{held:?}"
        );
        assert_eq!(held.values().sum::<i64>(), seats as i64, "{held:?}");
        // Both agents end everything they hold, from their own nodes; the next round's crowd
        // and those still waiting take the seats.
        for id in assigned.drain(..) {
            let ws = if held_by(&url, &id) == "ada" {
                &mut ada
            } else {
                &mut bob
            };
            ws.send(json!({"type": "endSession", "conversationId": id}))
                .await;
        }
    }
    println!("seed {seed}: {} visitors over 4 rounds", visitors.len());
}

/// The agent a conversation is assigned to, from the database.
fn held_by(url: &str, id: &str) -> String {
    let (url, id) = (url.to_string(), id.to_string());
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.query_one(
            "SELECT coalesce(agent_username, '') FROM messaging_session WHERE conversation_id::text = $1",
            &[&id],
        )
        .unwrap()
        .get::<_, String>(0)
    })
    .join()
    .unwrap()
}

/// Which side's node is killed mid-burst.
#[derive(Clone, Copy, Debug)]
enum Victim {
    Visitor,
    Agent,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_visitors_node_loses_no_acknowledged_entry() {
    kill_mid_burst(Victim::Visitor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_agents_node_loses_no_acknowledged_entry() {
    kill_mid_burst(Victim::Agent).await;
}

/// Visitor on node 0, agent on node 1, both writing; node `victim` is killed with SIGKILL in
/// the middle, and the side it held goes on through node 2 (as a load balancer would send it).
async fn kill_mid_burst(victim: Victim) {
    let seed = support::seed(&format!("cluster-kill-{victim:?}"));
    let mut rng = support::Rng::new(seed);
    let (_dir, _url, mut nodes) = cluster(3, &config(1)).await;
    let visitor_target = Arc::new(Mutex::new(nodes[0].addr));
    let agent_target = Arc::new(Mutex::new(nodes[1].addr));
    let n = 150;
    let mut visitor = Peer::visitor(visitor_target.clone(), &visitor_path(), ORIGIN, seed ^ 1);
    let mut agent = Peer::agent(agent_target.clone(), "ada", "pw", seed ^ 2);
    for i in 0..n {
        visitor.write(format!("visitor {i}"));
        agent.write(format!("agent {i}"));
    }
    visitor.window = 16;
    agent.window = 16;
    let (vp, ap) = (visitor.progress.clone(), agent.progress.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    let all_in = move |p: &Peer| {
        p.outbox_empty()
            && p.messages().len() == 2 * n
            && p.entries.keys().last().copied() == Some(p.contiguous())
    };
    let v = tokio::spawn(async move {
        let r = visitor.run_until(deadline, all_in).await;
        (visitor, r)
    });
    let a = tokio::spawn(async move {
        let r = agent.run_until(deadline, all_in).await;
        (agent, r)
    });
    let at = rng.between(30, 90) as usize;
    while vp.load(Relaxed) + ap.load(Relaxed) < 2 * at || ap.load(Relaxed) == 0 {
        assert!(Instant::now() < deadline, "stuck at {vp:?} / {ap:?} acks");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (index, target) = match victim {
        Victim::Visitor => (0, &visitor_target),
        Victim::Agent => (1, &agent_target),
    };
    nodes[index].child.start_kill().unwrap(); // SIGKILL
    nodes[index].child.wait().await.unwrap();
    let acked = (vp.load(Relaxed), ap.load(Relaxed));
    *target.lock().unwrap() = nodes[2].addr;
    let ((visitor, rv), (agent, ra)) = (v.await.unwrap(), a.await.unwrap());
    println!("seed {seed}: killed node {index} after {acked:?} acks");
    println!("visitor: {}", visitor.summary());
    println!("agent: {}", agent.summary());
    rv.unwrap();
    ra.unwrap();

    // The stored conversation, read through a surviving node.
    let mut ws = Ws::connect(nodes[2].addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    ws.hello(visitor.credential.as_deref()).await;
    let history: Vec<ConversationEntry> = ws
        .stored_history(&visitor.conversation.unwrap().to_string())
        .await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "no gap"
    );
    for (peer, role) in [(&visitor, Role::EndUser), (&agent, Role::Agent)] {
        let mut stored: BTreeMap<EntryId, Vec<u64>> = BTreeMap::new();
        for e in history.iter().filter(|e| {
            e.sender.role == role && matches!(e.entry_payload, EntryPayload::Message { .. })
        }) {
            stored.entry(e.identifier).or_default().push(e.seq);
        }
        assert_eq!(stored.len(), n, "{role:?}: every written message stored");
        let mut last = 0;
        for (id, text) in &peer.written {
            let copies = stored.get(id).cloned().unwrap_or_default();
            assert_eq!(copies.len(), 1, "{text:?} stored {} times", copies.len());
            if let Some(seq) = peer.acked.get(id) {
                assert_eq!(*seq, copies[0], "{text:?}: ack and store agree");
            }
            assert!(copies[0] > last, "{text:?} out of order");
            last = copies[0];
        }
    }
}
