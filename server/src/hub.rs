//! In-memory fan-out: which connections listen to which conversation or agent.
//!
//! A connection is an unbounded channel into its socket's writer task, so sending never
//! blocks. Recipients are looked up by jobs on the store thread (see `engine.rs`), which
//! keeps every listener's frames in seq order; the hub's own lock is short and never held
//! across an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use em_protocol::ConversationId;
use tokio::sync::mpsc;

/// What a socket's writer task receives.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    /// Send a close frame and stop.
    Close,
}

/// The sending half of one connection's outbound queue, with a process-unique id.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub id: u64,
    tx: mpsc::UnboundedSender<Outbound>,
}

impl Outbox {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Outbound>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                tx,
            },
            rx,
        )
    }

    /// Queues a frame; a closed connection is simply skipped (its cleanup is under way).
    pub fn send(&self, frame: &impl serde::Serialize) {
        if let Ok(text) = serde_json::to_string(frame) {
            self.send_text(text.into());
        }
    }

    pub fn send_text(&self, text: Utf8Bytes) {
        let _ = self.tx.send(Outbound::Text(text));
    }

    pub fn close(&self) {
        let _ = self.tx.send(Outbound::Close);
    }
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    conversations: HashMap<ConversationId, Vec<Outbox>>,
    agents: HashMap<String, Vec<Outbox>>,
    /// Highest `seq` the agent side has read, per conversation. Memory only: after a
    /// restart a visitor learns of reads again from the agent's next `markRead`.
    read: HashMap<ConversationId, u64>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these maps half-updated, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a visitor connection to a conversation (idempotent per connection).
    pub fn subscribe(&self, id: ConversationId, outbox: &Outbox) {
        let mut inner = self.lock();
        let list = inner.conversations.entry(id).or_default();
        if !list.iter().any(|o| o.id == outbox.id) {
            list.push(outbox.clone());
        }
    }

    /// Adds an agent connection (idempotent per connection).
    pub fn add_agent(&self, username: &str, outbox: &Outbox) {
        let mut inner = self.lock();
        let list = inner.agents.entry(username.to_string()).or_default();
        if !list.iter().any(|o| o.id == outbox.id) {
            list.push(outbox.clone());
        }
    }

    pub fn has_agent_connection(&self, username: &str, conn: u64) -> bool {
        self.lock()
            .agents
            .get(username)
            .is_some_and(|l| l.iter().any(|o| o.id == conn))
    }

    /// Forgets a connection everywhere. Returns how many connections its agent still has.
    pub fn remove(&self, conn: u64, agent: Option<&str>) -> usize {
        let mut inner = self.lock();
        inner.conversations.retain(|_, list| {
            list.retain(|o| o.id != conn);
            !list.is_empty()
        });
        let Some(name) = agent else { return 0 };
        let left = inner.agents.get_mut(name).map_or(0, |list| {
            list.retain(|o| o.id != conn);
            list.len()
        });
        if left == 0 {
            inner.agents.remove(name);
        }
        left
    }

    /// The connections that get a conversation's entries: its visitors and, if given, its agent.
    pub fn recipients(&self, id: ConversationId, agent: Option<&str>) -> Vec<Outbox> {
        let inner = self.lock();
        let visitors = inner.conversations.get(&id).into_iter().flatten();
        let agents = agent
            .and_then(|a| inner.agents.get(a))
            .into_iter()
            .flatten();
        visitors.chain(agents).cloned().collect()
    }

    /// Raises a conversation's read `seq`; returns whether it rose (only then is it news).
    pub fn mark_read(&self, id: ConversationId, seq: u64) -> bool {
        let mut inner = self.lock();
        let read = inner.read.entry(id).or_default();
        let rose = seq > *read;
        *read = (*read).max(seq);
        rose
    }

    /// The highest `seq` the agent side has read (0: nothing yet).
    pub fn read_seq(&self, id: ConversationId) -> u64 {
        self.lock().read.get(&id).copied().unwrap_or(0)
    }

    /// Asks every known connection to close (shutdown).
    pub fn close_all(&self) {
        let inner = self.lock();
        for o in inner
            .conversations
            .values()
            .chain(inner.agents.values())
            .flatten()
        {
            o.close();
        }
    }

    /// Every connection of an agent.
    pub fn agent_connections(&self, username: &str) -> Vec<Outbox> {
        self.lock()
            .agents
            .get(username)
            .cloned()
            .unwrap_or_default()
    }
}
