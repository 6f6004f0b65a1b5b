//! Paged replay: `resume`, `history` and `assigned` carry at most a page of entries, so no
//! frame a client asks for grows with the conversation; following the pages gives every
//! entry exactly once.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

const PAGE: u64 = 20;

/// A conversation whose visitor wrote 50 messages (plus the server's own entries).
async fn long_conversation() -> (Server, Ws, String, String, u64) {
    let config = format!(
        "{}\n[server]\nreplay_page_entries = {PAGE}\n",
        generous(&config(1))
    );
    let s = Server::start(&config).await;
    let (mut v, id, credential) = s.visitor_with_credential().await;
    for i in 0..50 {
        v.send(send_message(&id, &uuid(), &format!("m{i}"))).await;
        v.recv_until(|f| f["type"] == "ack").await;
    }
    let mut probe = s.visitor().await;
    probe.hello(Some(&credential)).await;
    probe
        .send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    let last = probe.recv_until(|f| f["type"] == "conversation").await["lastSeq"]
        .as_u64()
        .unwrap();
    assert!(last > 50, "{last}");
    (s, v, id, credential, last)
}

/// The `conversation` frame and the replayed entries' seqs of one `resume`.
async fn resume(v: &mut Ws, id: &str, after: u64) -> (Value, Vec<u64>) {
    v.send(json!({"type": "resume", "conversationId": id, "afterSeq": after}))
        .await;
    let state = v.recv_until(|f| f["type"] == "conversation").await;
    let mut seqs = Vec::new();
    loop {
        // A replay is followed by nothing else here (nobody writes): a short silence ends it.
        match tokio::time::timeout(std::time::Duration::from_millis(300), v.recv()).await {
            Ok(f) if f["type"] == "entry" => seqs.push(f["entry"]["seq"].as_u64().unwrap()),
            Ok(f) if f["type"] == "read" => {}
            Ok(f) => panic!("unexpected {f}"),
            Err(_) => break,
        }
    }
    (state, seqs)
}

fn seqs_of(entries: &Value) -> Vec<u64> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
// A new view gets the newest page; `history` pages down to seq 1; together every entry once.
async fn a_new_view_gets_the_newest_page_and_history_the_rest() {
    let (s, _v, id, credential, last) = long_conversation().await;
    let mut fresh = s.visitor().await;
    fresh.hello(Some(&credential)).await;
    let (state, seqs) = resume(&mut fresh, &id, 0).await;
    assert_eq!(
        state["replayTo"],
        Value::Null,
        "a new view's replay reaches lastSeq"
    );
    assert_eq!(seqs, ((last - PAGE + 1)..=last).collect::<Vec<_>>());

    let mut all: BTreeSet<u64> = seqs.iter().copied().collect();
    let mut before = seqs[0];
    while before > 1 {
        fresh
            .send(json!({"type": "history", "conversationId": id, "beforeSeq": before}))
            .await;
        let page = fresh.recv_until(|f| f["type"] == "history").await;
        assert_eq!(page["conversationId"], id.as_str());
        let got = seqs_of(&page["entries"]);
        assert!(!got.is_empty() && got.len() as u64 <= PAGE);
        assert_eq!(*got.last().unwrap(), before - 1, "the page just below");
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1),
            "oldest first, gapless"
        );
        all.extend(&got);
        before = got[0];
    }
    assert_eq!(all, (1..=last).collect::<BTreeSet<_>>());
    // Nothing older than seq 1.
    fresh
        .send(json!({"type": "history", "conversationId": id, "beforeSeq": 1}))
        .await;
    let empty = fresh.recv_until(|f| f["type"] == "history").await;
    assert_eq!(empty["entries"], json!([]));
}

#[tokio::test]
// A reconnect gets its gap a page at a time, in order: `replayTo` says where each page stops.
async fn a_reconnect_follows_replay_to_through_the_gap() {
    let (s, _v, id, credential, last) = long_conversation().await;
    let mut v = s.visitor().await;
    v.hello(Some(&credential)).await;
    let mut after = 3;
    let mut all: Vec<u64> = Vec::new();
    loop {
        let (state, seqs) = resume(&mut v, &id, after).await;
        assert_eq!(
            seqs.first(),
            Some(&(after + 1)),
            "the gap starts right after"
        );
        all.extend(&seqs);
        match state["replayTo"].as_u64() {
            Some(to) => {
                assert_eq!(seqs.len() as u64, PAGE);
                assert_eq!(*seqs.last().unwrap(), to);
                after = to;
            }
            None => {
                assert_eq!(*seqs.last().unwrap(), last);
                break;
            }
        }
    }
    assert_eq!(all, (4..=last).collect::<Vec<_>>());
}

#[tokio::test]
// The agent's `assigned` carries the newest page; `history` gives older pages of their own
// conversations only; a visitor's `history` of another's conversation is not_found.
async fn agents_page_too_and_only_their_own() {
    let (s, _v, id, _credential, last) = long_conversation().await;
    let mut ada = s.agent_online().await;
    let assigned = ada.recv_until(|f| f["type"] == "assigned").await;
    let history = seqs_of(&assigned["history"]);
    assert_eq!(history.len() as u64, PAGE);
    let newest = *history.last().unwrap();
    assert!(
        newest >= last,
        "the newest entries, up to the assignment's own"
    );
    ada.send(json!({"type": "history", "conversationId": id, "beforeSeq": history[0]}))
        .await;
    let page = ada.recv_until(|f| f["type"] == "history").await;
    assert_eq!(*seqs_of(&page["entries"]).last().unwrap(), history[0] - 1);

    ada.send(json!({"type": "history", "conversationId": uuid(), "beforeSeq": 5}))
        .await;
    assert_eq!(
        ada.recv_until(|f| f["type"] == "error").await["code"],
        "unauthorized"
    );
    let mut stranger = s.visitor().await;
    stranger.hello(None).await;
    stranger
        .send(json!({"type": "history", "conversationId": id, "beforeSeq": 5}))
        .await;
    assert_eq!(stranger.recv().await["code"], "not_found");
}
