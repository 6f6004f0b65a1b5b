// Proves that kill -9 of the real server binary in the middle of a burst loses no acknowledged
// message, and that the client's resends to the restarted server are stored exactly once.
mod common;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use em_protocol::{ConversationEntry, EntryId, EntryPayload, Role};
use support::peer::Peer;
use tokio::process::{Child, Command};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_em-server");
const MESSAGES: usize = 400;

/// Starts the binary on a random port; returns the child and its address.
async fn start(config: &std::path::Path, db: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child, Duration::from_secs(20)).await;
    (child, addr)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How the server is stopped in the middle of the burst.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: no shutdown code runs.
    Kill,
    /// SIGTERM: the graceful shutdown, which must finish within its 5 s and exit 0.
    Term,
}

async fn stop(child: &mut Child, how: Stop) {
    match how {
        Stop::Kill => {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
        Stop::Term => {
            let pid = child.id().unwrap().to_string();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(sent.success());
            let status = tokio::time::timeout(Duration::from_secs(7), child.wait())
                .await
                .expect("a SIGTERM'd server exits within its 5 s drain")
                .unwrap();
            assert!(status.success(), "SIGTERM exits 0, not {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_keeps_every_ack_and_stores_resends_once() {
    // Two SIGKILLs at seeded points of a 400-message burst with 32 messages in flight.
    burst_through_restarts("durability", Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_drains_and_keeps_every_ack_and_stores_resends_once() {
    // Two SIGTERMs at seeded points of the same burst: the drain loses nothing and exits 0.
    burst_through_restarts("durability-sigterm", Stop::Term).await;
}

async fn burst_through_restarts(test: &str, how: Stop) {
    let seed = support::seed(test);
    let mut rng = support::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("deployments.toml");
    std::fs::write(&config_file, generous(&config(1))).unwrap();
    let db = dir.path().join("em.sqlite");

    let (mut child, addr) = start(&config_file, &db).await;
    let target = Arc::new(Mutex::new(addr));
    let mut visitor = Peer::visitor(target.clone(), &visitor_path(), ORIGIN, seed ^ 1);
    visitor.window = 32;
    for i in 0..MESSAGES {
        visitor.write(format!("burst message {i}"));
    }
    let progress = visitor.progress.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = tokio::spawn(async move {
        let r = visitor.run_until(deadline, Peer::outbox_empty).await;
        (visitor, r)
    });

    let kill_points = [
        rng.between(40, 140) as usize,
        rng.between(200, 320) as usize,
    ];
    let mut kills = Vec::new(); // (acknowledged before the stop, time the server was gone in ms)
    for at in kill_points {
        while progress.load(Relaxed) < at {
            assert!(
                Instant::now() < deadline,
                "stuck at {} acks",
                progress.load(Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop(&mut child, how).await;
        // Once it has exited: a SIGTERM'd server still stores and acks while it drains.
        kills.push((progress.load(Relaxed), now_ms()));
        let (next, addr) = start(&config_file, &db).await;
        (child, *target.lock().unwrap()) = (next, addr);
    }
    let (visitor, result) = run.await.unwrap();
    println!(
        "kills after (acks, ms): {kills:?}; visitor: {}",
        visitor.summary()
    );
    result.unwrap();

    // The stored conversation, read on a fresh connection.
    let addr = *target.lock().unwrap();
    let history = stored_history(addr, &visitor).await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "seqs without gaps"
    );
    let mut stored: HashMap<EntryId, Vec<&ConversationEntry>> = HashMap::new();
    for e in history.iter().filter(|e| is_visitor_message(e)) {
        stored.entry(e.identifier).or_default().push(e);
    }
    assert_eq!(
        stored.len(),
        MESSAGES,
        "no message stored that was not written"
    );
    let mut last = 0;
    for (id, text) in &visitor.written {
        let copies = stored.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(copies.len(), 1, "{text:?} stored {} times", copies.len());
        assert_eq!(
            visitor.acked.get(id),
            Some(&copies[0].seq),
            "{text:?}: ack and store agree"
        );
        assert!(copies[0].seq > last, "{text:?} out of order");
        last = copies[0].seq;
    }
    // Messages stored before each kill minus those acknowledged before it: persisted, but the
    // ack died with the server; the resend found them and did not store them again.
    for (acked, at) in &kills {
        let before = history
            .iter()
            .filter(|e| is_visitor_message(e))
            .filter(|e| e.transcripted_timestamp <= *at)
            .count();
        println!("kill at {at}: {acked} acknowledged, {before} stored");
        assert!(
            before >= *acked,
            "an acknowledged message was lost in the kill"
        );
    }
}

/// The visitor's messages (the server's own, like "nobody is available", are not counted).
fn is_visitor_message(e: &ConversationEntry) -> bool {
    matches!(e.entry_payload, EntryPayload::Message { .. }) && e.sender.role == Role::EndUser
}

/// Every stored entry of the visitor's conversation, read directly from the server.
async fn stored_history(addr: SocketAddr, visitor: &Peer) -> Vec<ConversationEntry> {
    let mut v = Ws::connect(addr, &visitor_path(), Some(ORIGIN))
        .await
        .unwrap();
    v.hello(visitor.credential.as_deref()).await;
    v.stored_history(&visitor.conversation.unwrap().to_string())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_both_sides_write_keeps_the_assignment_and_both_sequences() {
    // Visitor and agent both burst; after two SIGKILLs both outboxes drain into one sequence.
    let seed = support::seed("durability-both");
    let mut rng = support::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("deployments.toml");
    std::fs::write(&config_file, generous(&config(1))).unwrap();
    let db = dir.path().join("em.sqlite");

    let (mut child, addr) = start(&config_file, &db).await;
    let target = Arc::new(Mutex::new(addr));
    let n = 300;
    let mut visitor = Peer::visitor(target.clone(), &visitor_path(), ORIGIN, seed ^ 1);
    let mut agent = Peer::agent(target.clone(), "ada", "pw", seed ^ 2);
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

    let mut kills = Vec::new();
    for at in [rng.between(30, 100), rng.between(150, 250)] {
        // Both sides are writing: the agent got the conversation and has replies acknowledged.
        while vp.load(Relaxed) + ap.load(Relaxed) < 2 * at as usize || ap.load(Relaxed) == 0 {
            assert!(Instant::now() < deadline, "stuck at {vp:?} / {ap:?} acks");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        kills.push((vp.load(Relaxed), ap.load(Relaxed)));
        let (next, addr) = start(&config_file, &db).await;
        (child, *target.lock().unwrap()) = (next, addr);
    }
    let ((visitor, rv), (agent, ra)) = (v.await.unwrap(), a.await.unwrap());
    println!("kills after (visitor acks, agent acks): {kills:?}");
    println!("visitor: {}", visitor.summary());
    println!("agent: {}", agent.summary());
    rv.unwrap();
    ra.unwrap();

    let addr = *target.lock().unwrap();
    let history = stored_history(addr, &visitor).await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=history.len() as u64).collect::<Vec<_>>());
    assert!(
        visitor.entries.values().eq(history.iter()),
        "the visitor's sequence is the server's"
    );
    assert!(
        agent.entries.values().eq(history.iter()),
        "the agent's sequence is the server's"
    );
    for peer in [&visitor, &agent] {
        let mut last = 0;
        for (id, text) in &peer.written {
            let copies: Vec<_> = history.iter().filter(|e| e.identifier == *id).collect();
            assert_eq!(copies.len(), 1, "{text:?} stored {} times", copies.len());
            assert_eq!(
                peer.acked.get(id),
                Some(&copies[0].seq),
                "{text:?}: ack and store agree"
            );
            assert!(copies[0].seq > last, "{text:?} out of order");
            last = copies[0].seq;
        }
    }
}
