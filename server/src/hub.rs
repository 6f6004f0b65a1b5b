//! In-memory fan-out: which connections listen to which conversation or agent, and every live
//! connection (shutdown closes them all).
//!
//! A connection is a channel into its socket's writer task, so sending never blocks; the
//! queue is bounded in bytes and frames instead: a send that would go over closes the
//! connection as a slow consumer (its frames are dropped, not buffered). Recipients are
//! looked up by jobs on the store thread (see `engine.rs`), which keeps every listener's
//! frames in seq order; the hub's own lock is short and never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use em_protocol::ConversationId;
use em_protocol::close::CloseCode;
use tokio::sync::{Notify, mpsc, watch};

use crate::config::ServerSettings;

/// A queue that held this much has its memory returned to the system when it ends
/// (`memory.rs`); everyday queues stay far below.
const LARGE_QUEUE: usize = 256 * 1024;

/// A signed-in agent's socket may queue this many times the `[server]` limits: agents are
/// few and known, and a reconnecting agent is sent every open conversation with its history
/// at once (a visitor gets one conversation).
const AGENT_QUEUE_FACTOR: usize = 16;

/// What a socket's writer task receives.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    /// Send a close frame with this code and stop (after the frames queued before it).
    Close(CloseCode),
}

/// Bounds of one connection's outbound queue and its writes.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_bytes: usize,
    pub max_frames: usize,
    /// Longest wait for one frame to be written; longer is a slow consumer.
    pub write_timeout: Duration,
    /// Longest wait for the close frame to go out and the peer's close to come back.
    pub close_timeout: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self::from(&ServerSettings::default())
    }
}

impl From<&ServerSettings> for QueueLimits {
    fn from(s: &ServerSettings) -> Self {
        Self {
            max_bytes: s.max_queued_bytes,
            max_frames: s.max_queued_frames,
            write_timeout: Duration::from_secs(s.write_timeout_seconds),
            close_timeout: Duration::from_secs(s.close_timeout_seconds),
        }
    }
}

/// A close someone asked for: `urgent` ones go before the frames still queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: CloseCode,
    pub urgent: bool,
}

/// State shared by a connection's senders and its writer.
#[derive(Debug)]
struct Shared {
    limits: QueueLimits,
    bytes: AtomicUsize,
    frames: AtomicUsize,
    /// Set once a close is decided: later frames are dropped, not queued.
    closing: AtomicBool,
    /// The queue once held [`LARGE_QUEUE`] or more: its end is worth a memory trim.
    hoarded: AtomicBool,
    /// A signed-in agent's: [`AGENT_QUEUE_FACTOR`] times the limits.
    agent: AtomicBool,
    request: Mutex<Option<CloseRequest>>,
    /// Wakes the connection's close watcher (beside the channel, so it never waits in line).
    wake: Notify,
}

impl Shared {
    fn request_close(&self, code: CloseCode, urgent: bool) {
        self.closing.store(true, Ordering::Release);
        let mut req = self.request.lock().unwrap_or_else(|p| p.into_inner());
        // An urgent request overrides a pending graceful one; the first urgent one stays.
        match *req {
            Some(CloseRequest { urgent: true, .. }) => return,
            Some(_) if !urgent => return,
            _ => *req = Some(CloseRequest { code, urgent }),
        }
        drop(req);
        self.wake.notify_one();
    }
}

/// The sending half of one connection's outbound queue, with a process-unique id.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub id: u64,
    tx: mpsc::UnboundedSender<Outbound>,
    shared: Arc<Shared>,
}

/// The receiving half, owned by the connection's task (`socket::serve`). Dropping it frees
/// whatever is still queued.
pub struct Inbox {
    pub id: u64,
    rx: mpsc::UnboundedReceiver<Outbound>,
    /// The connection's own sender, listed in the hub while the socket runs.
    out: Outbox,
    shared: Arc<Shared>,
    /// The hub that lists this connection while it runs (none in channel-driven unit tests).
    hub: Option<Arc<Hub>>,
}

impl Outbox {
    /// A queue with the default limits, known to no hub (unit tests drive sockets with it).
    pub fn new() -> (Self, Inbox) {
        Self::with_limits(QueueLimits::default(), None)
    }

    fn with_limits(limits: QueueLimits, hub: Option<Arc<Hub>>) -> (Self, Inbox) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            limits,
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            hoarded: AtomicBool::new(false),
            agent: AtomicBool::new(false),
            request: Mutex::new(None),
            wake: Notify::new(),
        });
        let out = Self { id, tx, shared };
        let inbox = Inbox {
            id,
            rx,
            out: out.clone(),
            shared: out.shared.clone(),
            hub,
        };
        (out, inbox)
    }

    /// Queues a frame; a closing connection is simply skipped (its cleanup is under way).
    pub fn send(&self, frame: &impl serde::Serialize) {
        if let Ok(text) = serde_json::to_string(frame) {
            self.send_text(text.into());
        }
    }

    /// Queues a frame unless that would take the queue over its limits: then the frame is
    /// dropped and the connection closes as a slow consumer. A frame into an empty queue is
    /// always taken, so one large frame (a long history) cannot shut a reader out for good.
    pub fn send_text(&self, text: Utf8Bytes) {
        if self.reserve(text.len()) {
            self.send_reserved(text);
        }
    }

    /// Counts `len` bytes against the queue before the frame exists in it: the store thread
    /// holds a job's frames until its group commits, and a group can hold many replays; they
    /// count from the start, so a connection over its limit gets nothing more held. `false`:
    /// do not send (the connection is closing, or now closes as a slow consumer).
    pub fn reserve(&self, len: usize) -> bool {
        let s = &self.shared;
        if s.closing.load(Ordering::Acquire) {
            if s.hoarded.load(Ordering::Relaxed) {
                // Frames still coming for it (replays queued before the close) are freed now.
                crate::memory::release_soon();
            }
            return false;
        }
        let frames = s.frames.fetch_add(1, Ordering::AcqRel);
        let bytes = s.bytes.fetch_add(len, Ordering::AcqRel);
        let factor = if s.agent.load(Ordering::Relaxed) {
            AGENT_QUEUE_FACTOR
        } else {
            1
        };
        let (max_frames, max_bytes) = (s.limits.max_frames * factor, s.limits.max_bytes * factor);
        if frames > 0 && (frames >= max_frames || bytes + len > max_bytes) {
            self.release(len);
            s.hoarded.store(true, Ordering::Relaxed);
            tracing::debug!(
                conn = self.id,
                queued_bytes = bytes,
                queued_frames = frames,
                "outbound queue full; closing as slow consumer"
            );
            s.request_close(CloseCode::SlowConsumer, true);
            return false;
        }
        if bytes + len >= LARGE_QUEUE {
            s.hoarded.store(true, Ordering::Relaxed);
        }
        true
    }

    /// Gives back a [`Outbox::reserve`] whose frame will not be sent (its job rolled back).
    pub fn release(&self, len: usize) {
        self.shared.frames.fetch_sub(1, Ordering::AcqRel);
        self.shared.bytes.fetch_sub(len, Ordering::AcqRel);
    }

    /// Queues a frame already counted by [`Outbox::reserve`].
    pub fn send_reserved(&self, text: Utf8Bytes) {
        let len = text.len();
        if self.shared.closing.load(Ordering::Acquire)
            || self.tx.send(Outbound::Text(text)).is_err()
        {
            // Closing, or the connection ended: nothing will dequeue it.
            self.release(len);
        }
    }

    /// Closes after the frames already queued (an `error` frame saying why goes first), with
    /// `code`; frames queued later are dropped. If the queue does not drain within the write
    /// timeout, the close goes out at once.
    pub fn close(&self, code: CloseCode) {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.tx.send(Outbound::Close(code));
        self.shared.request_close(code, false);
    }

    /// Closes at once with `code`: the close frame goes before anything still queued.
    pub fn close_now(&self, code: CloseCode) {
        self.shared.request_close(code, true);
    }

    /// Whether a close was decided (slow consumer, shutdown, ...).
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// The close decided for this connection, if any.
    pub fn close_request(&self) -> Option<CloseRequest> {
        *self
            .shared
            .request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Inbox {
    pub fn limits(&self) -> QueueLimits {
        self.shared.limits
    }

    /// The next frame to write; its bytes leave the queue's count.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let out = self.rx.recv().await?;
        if let Outbound::Text(t) = &out {
            self.shared.frames.fetch_sub(1, Ordering::AcqRel);
            self.shared.bytes.fetch_sub(t.len(), Ordering::AcqRel);
        }
        Some(out)
    }

    /// Records the close the connection decided on itself (idle, a protocol violation, a
    /// write timeout), so the hub reports it like one asked for through the outbox.
    pub fn decided(&self, code: CloseCode) {
        self.shared.request_close(code, true);
    }

    /// Stops taking frames and frees the ones still queued (the close jumps them).
    pub fn discard(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.rx.close();
        while let Ok(out) = self.rx.try_recv() {
            if let Outbound::Text(t) = out {
                self.shared.frames.fetch_sub(1, Ordering::AcqRel);
                self.shared.bytes.fetch_sub(t.len(), Ordering::AcqRel);
            }
        }
    }

    /// Lists the connection among the live ones (shutdown reaches it); it leaves the list
    /// when the inbox is dropped. During shutdown it is closed at once instead.
    pub fn register(&self) {
        if let Some(hub) = &self.hub {
            hub.register(&self.out);
        }
    }

    /// A handle that waits for close requests (it does not borrow the inbox).
    pub fn closer(&self) -> Closer {
        Closer(self.shared.clone())
    }
}

/// Waits for a connection's close requests.
pub struct Closer(Arc<Shared>);

impl Closer {
    /// Resolves with the close asked for by [`Outbox::close_now`] at once, or with the one
    /// asked for by [`Outbox::close`] once `grace` has passed (the frames before it did not
    /// drain in time).
    pub async fn close_requested(&self, grace: Duration) -> CloseCode {
        loop {
            let req = *self.0.request.lock().unwrap_or_else(|p| p.into_inner());
            match req {
                Some(r) if r.urgent => return r.code,
                Some(r) => {
                    tokio::select! {
                        () = tokio::time::sleep(grace) => return r.code,
                        () = self.0.wake.notified() => {}
                    }
                }
                None => self.0.wake.notified().await,
            }
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if self.shared.hoarded.load(Ordering::Relaxed) {
            crate::memory::release_soon();
        }
        if let Some(hub) = &self.hub {
            hub.unregister(self.id);
        }
    }
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// How many connections are live; shutdown waits for it to reach 0.
    live_count: LiveCount,
}

struct LiveCount(watch::Sender<usize>);

impl Default for LiveCount {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

#[derive(Default)]
struct Inner {
    conversations: HashMap<ConversationId, Vec<Outbox>>,
    agents: HashMap<String, Vec<Outbox>>,
    /// Per connection, the conversations it listens to: `remove` visits only those (a scan of
    /// every conversation stalled the hub for seconds with 20k sockets closing).
    subscriptions: HashMap<u64, HashSet<ConversationId>>,
    /// Every running socket, with or without `hello`.
    live: HashMap<u64, Outbox>,
    /// Set by [`Hub::close_all`]: a connection starting later is closed at once.
    shutting_down: bool,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave these maps half-updated, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection's queue, bounded by `[server]`; the connection is listed as live
    /// while its socket runs (`socket::serve`).
    pub fn outbox(self: &Arc<Self>, settings: &ServerSettings) -> (Outbox, Inbox) {
        Outbox::with_limits(QueueLimits::from(settings), Some(self.clone()))
    }

    fn register(&self, out: &Outbox) {
        let mut inner = self.lock();
        if inner.shutting_down {
            out.close_now(CloseCode::Shutdown);
        }
        inner.live.insert(out.id, out.clone());
        let n = inner.live.len();
        drop(inner);
        self.live_count.0.send_replace(n);
    }

    fn unregister(&self, conn: u64) {
        let mut inner = self.lock();
        inner.live.remove(&conn);
        let n = inner.live.len();
        drop(inner);
        self.live_count.0.send_replace(n);
    }

    /// How many sockets are running.
    pub fn live_connections(&self) -> usize {
        self.lock().live.len()
    }

    /// The close decided for each running socket (`None`: still open), by connection id.
    pub fn closing(&self) -> Vec<(u64, Option<CloseRequest>)> {
        self.lock()
            .live
            .values()
            .map(|o| (o.id, o.close_request()))
            .collect()
    }

    /// Adds a visitor connection to a conversation (idempotent per connection).
    pub fn subscribe(&self, id: ConversationId, outbox: &Outbox) {
        let mut inner = self.lock();
        if inner.subscriptions.entry(outbox.id).or_default().insert(id) {
            inner
                .conversations
                .entry(id)
                .or_default()
                .push(outbox.clone());
        }
    }

    /// Adds an agent connection (idempotent per connection); its queue gets the agents' limits.
    pub fn add_agent(&self, username: &str, outbox: &Outbox) {
        outbox.shared.agent.store(true, Ordering::Relaxed);
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
        let inner = &mut *inner;
        for id in inner.subscriptions.remove(&conn).unwrap_or_default() {
            if let Some(list) = inner.conversations.get_mut(&id) {
                list.retain(|o| o.id != conn);
                if list.is_empty() {
                    inner.conversations.remove(&id);
                }
            }
        }
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

    /// Shutdown: closes every live connection at once with [`CloseCode::Shutdown`] (those
    /// that never said `hello` too), and any that starts from now on.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.shutting_down = true;
        for o in inner.live.values() {
            o.close_now(CloseCode::Shutdown);
        }
    }

    /// Resolves once no connection is live (after [`Hub::close_all`], when every socket has
    /// sent its close frame or given up).
    pub async fn all_closed(&self) {
        let mut rx = self.live_count.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
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
