// Proves that no message is lost or duplicated through random network faults: a visitor and an
// agent exchange 1,000 messages each way through a proxy that cuts, stalls, delays and splits.
mod common;
mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use em_protocol::{ConversationEntry, EntryId};
use serde_json::json;
use support::peer::Peer;
use support::proxy::{Faults, Proxy};
use tokio::time::Instant;

/// Faults dense enough that every few hundred frames something goes wrong.
fn chaos() -> Faults {
    Faults {
        lifetime_ms: Some((400, 4000)),
        cut: 0.003,
        stall: 0.01,
        stall_ms: (100, 2500),
        delay: 0.1,
        delay_ms: (1, 20),
        split: 0.05,
    }
}

fn messages_each_way() -> usize {
    std::env::var("EM_FAULT_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_each_way_through_faults_arrive_once_in_order() {
    // Both sides end with the server's exact sequence: every message once, same seqs, no gap.
    let seed = support::seed("faults");
    let n = messages_each_way();
    let started = std::time::Instant::now();
    let server = Server::start(&generous(&config(1))).await;
    let proxy = Proxy::start(server.addr, chaos(), seed).await;
    let target = Arc::new(Mutex::new(proxy.addr));
    let mut visitor = Peer::visitor(target.clone(), &visitor_path(), ORIGIN, seed ^ 1);
    let mut agent = Peer::agent(target.clone(), "ada", "pw", seed ^ 2);
    for i in 0..n {
        visitor.write(format!("visitor message {i}"));
        agent.write(format!("agent reply {i}"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
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
    let ((visitor, rv), (agent, ra)) = (v.await.unwrap(), a.await.unwrap());
    println!("proxy: {}", proxy.stats());
    println!("visitor: {}", visitor.summary());
    println!("agent: {}", agent.summary());
    println!("{n} messages each way in {:.1?}", started.elapsed());
    rv.unwrap();
    ra.unwrap();
    drop(proxy);

    // The server's own record, read directly: a fresh resume from 0 with the visitor's credential.
    let conversation = visitor.conversation.unwrap().to_string();
    let history = stored_history(
        &server,
        visitor.credential.as_deref().unwrap(),
        &conversation,
    )
    .await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "seqs without gaps"
    );
    let visitor_seen: Vec<_> = visitor.entries.values().cloned().collect();
    let agent_seen: Vec<_> = agent.entries.values().cloned().collect();
    assert!(
        visitor_seen == history,
        "the visitor's sequence is the server's"
    );
    assert!(
        agent_seen == history,
        "the agent's sequence is the server's"
    );

    // Every written message is stored exactly once, as acknowledged, in the order it was written.
    let by_id: HashMap<EntryId, Vec<u64>> = history.iter().fold(HashMap::new(), |mut m, e| {
        m.entry(e.identifier).or_default().push(e.seq);
        m
    });
    for peer in [&visitor, &agent] {
        let mut last = 0;
        for (id, text) in &peer.written {
            let seqs = by_id.get(id).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(
                seqs.len(),
                1,
                "{} {text:?} stored {} times",
                peer.name,
                seqs.len()
            );
            assert_eq!(
                peer.acked.get(id),
                Some(&seqs[0]),
                "acknowledged with its stored seq"
            );
            assert!(seqs[0] > last, "{} {text:?} out of order", peer.name);
            last = seqs[0];
        }
    }
    assert_eq!(visitor.messages().len(), 2 * n);
}

/// Every stored entry of a conversation, read straight from the server (no proxy).
async fn stored_history(
    server: &Server,
    credential: &str,
    conversation: &str,
) -> Vec<ConversationEntry> {
    let mut v = server.visitor().await;
    v.hello(Some(credential)).await;
    v.stored_history(conversation).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_and_an_agent_through_faults_see_one_sequence() {
    // Two tabs of one visitor (one credential, one conversation) and an agent all write through
    // faults; all three end with the server's sequence, every message once.
    let seed = support::seed("faults-tabs");
    let n = messages_each_way() / 4;
    let server = Server::start(&generous(&config(1))).await;
    let proxy = Proxy::start(server.addr, chaos(), seed).await;
    let target = Arc::new(Mutex::new(proxy.addr));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut first = Peer::visitor(target.clone(), &visitor_path(), ORIGIN, seed ^ 1);
    first.run_until(deadline, Peer::joined).await.unwrap();
    let mut second = first.another_tab("second tab", seed ^ 3);
    let mut agent = Peer::agent(target.clone(), "ada", "pw", seed ^ 2);
    for i in 0..n {
        first.write(format!("first tab {i}"));
        second.write(format!("second tab {i}"));
        agent.write(format!("agent {i}"));
    }
    let all_in = move |p: &Peer| {
        p.outbox_empty()
            && p.messages().len() == 3 * n
            && p.entries.keys().last().copied() == Some(p.contiguous())
    };
    let tasks = [first, second, agent].map(|mut p| {
        tokio::spawn(async move {
            let r = p.run_until(deadline, all_in).await;
            (p, r)
        })
    });
    let mut peers = Vec::new();
    for t in tasks {
        let (p, r) = t.await.unwrap();
        println!("{}: {}", p.name, p.summary());
        peers.push((p, r));
    }
    println!("proxy: {}", proxy.stats());
    let peers: Vec<Peer> = peers
        .into_iter()
        .map(|(p, r)| r.map(|()| p).unwrap())
        .collect();
    drop(proxy);

    let conversation = peers[0].conversation.unwrap().to_string();
    let credential = peers[0].credential.clone().unwrap();
    let history = stored_history(&server, &credential, &conversation).await;
    for p in &peers {
        assert!(
            p.entries.values().eq(history.iter()),
            "{}'s sequence is the server's",
            p.name
        );
        let mut last = 0;
        for (id, text) in &p.written {
            let copies: Vec<_> = history.iter().filter(|e| e.identifier == *id).collect();
            assert_eq!(copies.len(), 1, "{text:?} stored {} times", copies.len());
            assert_eq!(p.acked.get(id), Some(&copies[0].seq));
            assert!(copies[0].seq > last, "{text:?} out of order");
            last = copies[0].seq;
        }
    }
}

#[tokio::test]
async fn the_server_closes_sockets_of_peers_that_vanished_within_45_s() {
    // A visitor and an agent whose network silently swallows everything (no FIN, no RST) are
    // noticed by the server within 45 s: it closes both sockets.
    let server = Server::start(&generous(&config(1))).await;
    let proxy = Proxy::start(server.addr, Faults::none(), 0).await;
    let mut v = Ws::connect(proxy.addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    v.hello(None).await;
    v.send(json!({"type": "createConversation", "conversationId": uuid()}))
        .await;
    assert_eq!(v.recv().await["type"], "conversation");
    let mut a = Ws::connect(proxy.addr, "/agent/ws", None).await.unwrap();
    a.send(json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}))
        .await;
    assert_eq!(a.recv().await["type"], "welcome");
    a.send(json!({"type": "setPresence", "presence": "Online"}))
        .await;
    assert_eq!(a.recv().await["type"], "presence");

    proxy.set_blackhole(true);
    let started = std::time::Instant::now();
    let closed = || proxy.stats().closed_by_upstream.load(Relaxed);
    while closed() < 2 && started.elapsed() < Duration::from_secs(47) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        closed(),
        2,
        "the server closed {} of 2 silent sockets in {:.0?}",
        closed(),
        started.elapsed()
    );
    drop((v, a));
}
