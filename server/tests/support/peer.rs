//! A resilient protocol client for tests: a visitor or an agent that reconnects after every
//! fault, keeps unacknowledged messages in an outbox and resends all of them on each new
//! connection, and dedupes received entries by `seq` (failing if a `seq` ever changes entry).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_protocol::{ConversationEntry, ConversationId, EntryId, EntryPayload, Role};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::Rng;
use super::wire::{Fault, In, Ws, recv, send, timeout_at, violation};

/// No frame at all (pongs included) for this long: the connection is dead, reconnect.
pub(crate) const IDLE: Duration = Duration::from_millis(1500);
const PING_EVERY: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub enum Kind {
    Visitor {
        path: String,
        origin: String,
    },
    Agent {
        username: String,
        credential: String,
    },
}

/// Counters for the report.
#[derive(Debug, Default, Clone)]
pub struct PeerStats {
    pub connections: u32,
    pub failed_connects: u32,
    pub disconnects: u32,
    pub resends: u32,
    pub duplicate_entries: u32,
}

pub struct Peer {
    pub name: String,
    kind: Kind,
    /// Where to connect; the test may point it elsewhere (a restarted server).
    pub target: Arc<Mutex<SocketAddr>>,
    pub credential: Option<String>,
    pub conversation: Option<ConversationId>,
    /// The visitor's `createConversation` was answered.
    created: bool,
    /// Written but never sent.
    pending: VecDeque<(EntryId, String)>,
    /// Sent on some connection, not acknowledged: resent on every new connection.
    in_flight: Vec<(EntryId, String)>,
    /// Every message this peer wrote, in the order it wrote them.
    pub written: Vec<(EntryId, String)>,
    pub acked: HashMap<EntryId, u64>,
    /// Acknowledged count, readable from another task while the peer runs.
    pub progress: Arc<AtomicUsize>,
    /// Received entries by `seq`, each once.
    pub entries: BTreeMap<u64, ConversationEntry>,
    pub window: usize,
    pub stats: PeerStats,
    rng: Rng,
    /// A `history` is on its way on this connection.
    history_asked: bool,
}

impl Peer {
    pub fn visitor(target: Arc<Mutex<SocketAddr>>, path: &str, origin: &str, seed: u64) -> Peer {
        let kind = Kind::Visitor {
            path: path.into(),
            origin: origin.into(),
        };
        let mut p = Peer::new("visitor", kind, target, seed);
        p.conversation = Some(ConversationId(uuid::Uuid::new_v4()));
        p
    }

    pub fn agent(
        target: Arc<Mutex<SocketAddr>>,
        username: &str,
        credential: &str,
        seed: u64,
    ) -> Peer {
        let kind = Kind::Agent {
            username: username.into(),
            credential: credential.into(),
        };
        Peer::new("agent", kind, target, seed)
    }

    fn new(name: &str, kind: Kind, target: Arc<Mutex<SocketAddr>>, seed: u64) -> Peer {
        Peer {
            name: name.into(),
            kind,
            target,
            credential: None,
            conversation: None,
            created: false,
            pending: VecDeque::new(),
            in_flight: Vec::new(),
            written: Vec::new(),
            acked: HashMap::new(),
            progress: Arc::new(AtomicUsize::new(0)),
            entries: BTreeMap::new(),
            window: 8,
            stats: PeerStats::default(),
            rng: Rng::new(seed),
            history_asked: false,
        }
    }

    /// Another tab of this visitor: same credential, same conversation, its own socket and
    /// outbox. Call once this visitor has joined (`joined()`).
    pub fn another_tab(&self, name: &str, seed: u64) -> Peer {
        let kind = match &self.kind {
            Kind::Visitor { path, origin } => Kind::Visitor {
                path: path.clone(),
                origin: origin.clone(),
            },
            Kind::Agent { .. } => panic!("only a visitor has tabs"),
        };
        let mut p = Peer::new(name, kind, self.target.clone(), seed);
        p.credential = self.credential.clone();
        p.conversation = self.conversation;
        p.created = true;
        p
    }

    /// A visitor that has its credential and its conversation.
    pub fn joined(&self) -> bool {
        self.credential.is_some() && self.created
    }

    /// Queues a message; it is sent when a connection is up and the window has room.
    pub fn write(&mut self, text: String) -> EntryId {
        let id = EntryId(uuid::Uuid::new_v4());
        self.pending.push_back((id, text.clone()));
        self.written.push((id, text));
        id
    }

    /// Nothing left to send or to have acknowledged.
    pub fn outbox_empty(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// Entries not yet acknowledged (sent or not).
    pub fn unacked(&self) -> Vec<EntryId> {
        self.in_flight
            .iter()
            .chain(self.pending.iter())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The highest `n` such that seqs `1..=n` were all received.
    pub fn contiguous(&self) -> u64 {
        let mut n = 0;
        for &seq in self.entries.keys() {
            if seq != n + 1 {
                break;
            }
            n = seq;
        }
        n
    }

    /// Received visitor and agent messages (not the bot's), in `seq` order: (seq, id, role).
    pub fn messages(&self) -> Vec<(u64, EntryId, Role)> {
        self.entries
            .values()
            .filter(|e| matches!(e.entry_payload, EntryPayload::Message { .. }))
            .filter(|e| matches!(e.sender.role, Role::EndUser | Role::Agent))
            .map(|e| (e.seq, e.identifier, e.sender.role))
            .collect()
    }

    /// Connects, and reconnects after every failure, until `done` holds or `deadline` passes.
    /// A protocol violation (an `error` frame, a `seq` that changed entry, an ack that
    /// changed `seq`) ends the run at once with `Err`.
    pub async fn run_until(
        &mut self,
        deadline: Instant,
        done: impl Fn(&Peer) -> bool,
    ) -> Result<(), String> {
        loop {
            if done(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: deadline passed; {}",
                    self.name,
                    self.summary()
                ));
            }
            match timeout_at(deadline, self.session(&done)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(Fault::Violation(e))) => return Err(format!("{}: {e}", self.name)),
                Ok(Err(Fault::Disconnected)) | Err(_) => {
                    let pause = self.rng.between(5, 60);
                    sleep(Duration::from_millis(pause)).await;
                }
            }
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "written {}, acked {}, in flight {}, pending {}, entries {} (contiguous to {}), {:?}",
            self.written.len(),
            self.acked.len(),
            self.in_flight.len(),
            self.pending.len(),
            self.entries.len(),
            self.contiguous(),
            self.stats
        )
    }

    /// One connection, from the handshake to the first fault (or `done`).
    async fn session(&mut self, done: &impl Fn(&Peer) -> bool) -> Result<(), Fault> {
        let mut ws = match self.connect().await {
            Some(ws) => ws,
            None => {
                self.stats.failed_connects += 1;
                return Err(Fault::Disconnected);
            }
        };
        self.stats.connections += 1;
        let result = self.converse(&mut ws, done).await;
        if matches!(result, Err(Fault::Disconnected)) {
            self.stats.disconnects += 1;
        }
        result
    }

    async fn connect(&self) -> Option<Ws> {
        let addr = *self.target.lock().unwrap();
        let url = match &self.kind {
            Kind::Visitor { path, .. } => format!("ws://{addr}{path}"),
            Kind::Agent { .. } => format!("ws://{addr}{}", em_protocol::paths::AGENT_SOCKET),
        };
        let mut req = url.into_client_request().ok()?;
        if let Kind::Visitor { origin, .. } = &self.kind {
            req.headers_mut()
                .insert("Origin", HeaderValue::from_str(origin).ok()?);
        }
        let (ws, _) = timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .ok()?
            .ok()?;
        Some(ws)
    }

    async fn converse(&mut self, ws: &mut Ws, done: &impl Fn(&Peer) -> bool) -> Result<(), Fault> {
        self.history_asked = false;
        // Handshake: hello, then the conversation (visitor) or presence (agent).
        match &self.kind {
            Kind::Visitor { .. } => {
                let mut hello = json!({"type": "hello", "protocolVersion": 1});
                if let Some(c) = &self.credential {
                    hello["credential"] = json!(c);
                }
                send(ws, hello).await?;
                self.expect(ws, |f| matches!(f, In::Welcome { .. })).await?;
                let id = self.conversation.expect("a visitor has a conversation id");
                if self.created {
                    let after = self.contiguous();
                    send(
                        ws,
                        json!({"type": "resume", "conversationId": id, "afterSeq": after}),
                    )
                    .await?;
                } else {
                    send(
                        ws,
                        json!({"type": "createConversation", "conversationId": id}),
                    )
                    .await?;
                }
                self.expect(ws, |f| matches!(f, In::Conversation { .. }))
                    .await?;
                self.created = true;
            }
            Kind::Agent {
                username,
                credential,
            } => {
                let hello = json!({"type": "hello", "protocolVersion": 1,
                                   "username": username, "credential": credential});
                send(ws, hello).await?;
                self.expect(ws, |f| matches!(f, In::Welcome { .. })).await?;
                send(ws, json!({"type": "setPresence", "presence": "Online"})).await?;
                self.expect(ws, |f| matches!(f, In::Presence)).await?;
            }
        }
        // Everything the server may or may not have stored goes again, in the original order.
        for (id, text) in self.in_flight.clone() {
            self.stats.resends += 1;
            send(ws, self.message_frame(id, &text)).await?;
        }
        let mut next_ping = Instant::now() + PING_EVERY;
        let mut heard = Instant::now();
        loop {
            if done(self) {
                let _ = ws.close(None).await;
                return Ok(());
            }
            while self.in_flight.len() < self.window && self.conversation.is_some() {
                let Some((id, text)) = self.pending.pop_front() else {
                    break;
                };
                self.in_flight.push((id, text.clone()));
                send(ws, self.message_frame(id, &text)).await?;
            }
            if Instant::now() >= next_ping {
                next_ping = Instant::now() + PING_EVERY;
                send(ws, json!({"type": "ping"})).await?;
            }
            // Replays come a page at a time: a hole in what we have is filled from just
            // above it downwards, one `history` at a time.
            if let (false, Some(id), Some(above)) =
                (self.history_asked, self.conversation, self.above_hole())
            {
                self.history_asked = true;
                send(
                    ws,
                    json!({"type": "history", "conversationId": id, "beforeSeq": above}),
                )
                .await?;
            }
            if heard.elapsed() > IDLE {
                return Err(Fault::Disconnected); // not even a pong: a stalled or dead connection
            }
            let wake = next_ping.min(heard + IDLE);
            let frame = match tokio::time::timeout_at(wake, recv(ws, self.is_agent())).await {
                Ok(frame) => frame?,
                Err(_) => continue, // time to ping, or to give up on this connection
            };
            heard = Instant::now();
            self.absorb(frame)?;
        }
    }

    /// The first seq we have above a missing one, if any is missing.
    fn above_hole(&self) -> Option<u64> {
        let next = self.contiguous() + 1;
        self.entries.range(next..).next().map(|(&seq, _)| seq)
    }

    fn is_agent(&self) -> bool {
        matches!(self.kind, Kind::Agent { .. })
    }

    fn message_frame(&self, id: EntryId, text: &str) -> Value {
        let conversation = self
            .conversation
            .expect("messages go to a known conversation");
        let mut f = json!({"type": "sendMessage", "conversationId": conversation, "entryId": id, "text": text});
        if !self.is_agent() {
            f["clientTimestamp"] = json!(1_700_000_000_000i64);
        }
        f
    }

    /// Reads frames (absorbing each) until one matches `want`.
    async fn expect(&mut self, ws: &mut Ws, want: impl Fn(&In) -> bool) -> Result<(), Fault> {
        loop {
            let frame = match timeout(IDLE, recv(ws, self.is_agent())).await {
                Ok(frame) => frame?,
                Err(_) => return Err(Fault::Disconnected),
            };
            let hit = want(&frame);
            self.absorb(frame)?;
            if hit {
                return Ok(());
            }
        }
    }

    /// Applies one frame to the state, checking the protocol's promises.
    fn absorb(&mut self, frame: In) -> Result<(), Fault> {
        match frame {
            In::Welcome { credential } => {
                if credential.is_some() {
                    self.credential = credential;
                }
            }
            In::Conversation { id } => {
                if Some(id) != self.conversation {
                    return violation(format!("conversation frame for {id}"));
                }
            }
            In::Presence | In::Other => {}
            In::Entry(e) => self.add_entry(e)?,
            In::History(entries) => {
                self.history_asked = false;
                for e in entries {
                    self.add_entry(e)?;
                }
            }
            In::Assigned { id, history } => {
                match self.conversation {
                    None => self.conversation = Some(id),
                    Some(c) if c != id => {
                        return violation(format!("a second conversation {id} assigned"));
                    }
                    Some(_) => {}
                }
                for e in history {
                    self.add_entry(e)?;
                }
            }
            In::Ack { entry_id, seq } => {
                if !self.written.iter().any(|(id, _)| *id == entry_id) {
                    return violation(format!("ack for an entry never written: {entry_id}"));
                }
                if let Some(&before) = self.acked.get(&entry_id) {
                    if before != seq {
                        return violation(format!(
                            "{entry_id} acked as seq {before}, then as {seq}"
                        ));
                    }
                } else {
                    self.acked.insert(entry_id, seq);
                    self.progress.store(self.acked.len(), Relaxed);
                }
                self.in_flight.retain(|(id, _)| *id != entry_id);
            }
            In::Error(e) => return violation(format!("error frame {e:?}")),
        }
        Ok(())
    }

    fn add_entry(&mut self, e: ConversationEntry) -> Result<(), Fault> {
        if Some(e.conversation_id) != self.conversation {
            return violation(format!("entry of another conversation: {e:?}"));
        }
        match self.entries.get(&e.seq) {
            Some(had) if had.identifier != e.identifier => violation(format!(
                "seq {} was {}, now {}",
                e.seq, had.identifier, e.identifier
            )),
            Some(_) => {
                self.stats.duplicate_entries += 1;
                Ok(())
            }
            None => {
                self.entries.insert(e.seq, e);
                Ok(())
            }
        }
    }
}
