//! The shared state handle: one store thread that owns the database and the routing state,
//! and commits work in groups.
//!
//! Locking choice: there is no lock around the store. A dedicated thread owns the SQLite
//! connection and the routing state; async handlers send it jobs (closures) over a channel
//! and await the answer. Jobs run one at a time, so "persist, then ack, then fan out" and
//! "assign in the store and in memory" need no locking, and every listener sees entries in
//! seq order. The thread takes every job that is queued (up to [`MAX_BATCH`]) into one
//! transaction, each job in its own savepoint, and commits once: one disk flush covers the
//! whole group (group commit). Frames a job wants to send are held back until that commit,
//! so nothing is acknowledged or fanned out before it is durable. Between jobs, the thread
//! runs the periodic sweeps (`sweep.rs`) as jobs of its own.
//!
//! On PostgreSQL several nodes share the database: each group then also takes the cluster's
//! lock, applies what the other nodes did first, and logs what its own jobs did
//! (`cluster.rs`).

use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use em_protocol::ConversationId;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::cluster::{Event, Listening};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hub::{Hub, Outbox};
use crate::limits::Limiter;
use crate::routing::{Change, Routing};
use crate::store::{Database, Store};
use crate::sweep::{RETENTION_EVERY, SWEEP_EVERY};

/// Most jobs committed together; bounds the latency one flush adds to a job.
pub const MAX_BATCH: usize = 512;

/// The current config: replaced as a whole by a reload. Readers clone the `Arc` and never
/// hold the lock across anything else.
pub type SharedConfig = Arc<RwLock<Arc<Config>>>;

/// The handle every connection holds (behind an `Arc`).
pub struct Engine {
    jobs: mpsc::Sender<Job>,
    pub hub: Arc<Hub>,
    /// Rates and quotas shared by every socket (`limits.rs`).
    pub limiter: Arc<Limiter>,
    config: SharedConfig,
    pub clock: SharedClock,
    /// The database, for connections of its own off the store thread (metrics).
    pub db: Database,
    /// Agent sign-in: backoff, the password hashing cap and session tokens (`signin.rs`).
    pub signin: Arc<crate::signin::SignIn>,
    /// The `LISTEN` connection that wakes this node for the others' work (several nodes).
    pub listening: Option<Arc<Listening>>,
}

/// What jobs get besides the state: the hub, the config and the clock.
pub struct Ctx {
    pub hub: Arc<Hub>,
    config: SharedConfig,
    pub clock: SharedClock,
}

fn current(config: &SharedConfig) -> Arc<Config> {
    config.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Ctx {
    /// The config as of now (a reload may replace it between jobs, never during one).
    pub fn config(&self) -> Arc<Config> {
        current(&self.config)
    }
}

/// The state the store thread owns.
pub struct Inner {
    pub store: Box<dyn Store>,
    /// Read freely; changed only through [`Inner::change`], so every node sees the change.
    pub routing: Routing,
    /// This node's name among the nodes sharing the database.
    pub node: String,
    /// Frames to send once the current group commits.
    held: Vec<(Outbox, Utf8Bytes)>,
    /// What the current group did that the other nodes must apply; `None` on a store only
    /// one node uses, where nothing is logged.
    log: Option<Vec<Event>>,
    /// The newest log row this node has applied.
    applied: u64,
}

impl Inner {
    /// Changes the routing state, here and (through the log) on every other node.
    pub fn change(&mut self, change: Change) {
        self.routing.apply(&change);
        if let Some(log) = &mut self.log {
            log.push(Event::Routing(change));
        }
    }

    /// An agent's presence through this node (`None`: its last connection here went away),
    /// stored where nodes starting later read it, and applied to routing.
    pub fn presence(
        &mut self,
        agent: &str,
        presence: Option<em_protocol::agent::Presence>,
    ) -> Result<()> {
        let node = self.node.clone();
        if let Some(cluster) = self.store.cluster() {
            cluster.set_presence(agent, &node, presence)?;
        }
        self.change(match presence {
            Some(presence) => Change::Present {
                agent: agent.to_string(),
                node,
                presence,
            },
            None => Change::Left {
                agent: agent.to_string(),
                node,
            },
        });
        Ok(())
    }

    /// Sends a frame to a conversation's visitors and to `agent`'s connections, on every node.
    pub fn to_conversation(
        &mut self,
        hub: &Hub,
        id: ConversationId,
        agent: Option<&str>,
        text: String,
    ) {
        if let Some(log) = &mut self.log {
            log.push(Event::ToConversation {
                id,
                agent: agent.map(str::to_string),
                text: text.clone(),
            });
        }
        self.send_text(hub.recipients(id, agent), text.into());
    }

    /// Sends a frame to every connection of an agent, on every node.
    pub fn to_agent(&mut self, hub: &Hub, agent: &str, text: String) {
        if let Some(log) = &mut self.log {
            log.push(Event::ToAgent {
                agent: agent.to_string(),
                text: text.clone(),
            });
        }
        self.send_text(hub.agent_connections(agent), text.into());
    }

    /// Queues a frame for `out`, sent after the commit of the job's group. It counts against
    /// the connection's queue limit at once (see `Outbox::reserve`).
    pub fn send(&mut self, out: &Outbox, frame: &impl serde::Serialize) {
        if let Ok(text) = serde_json::to_string(frame) {
            let text: Utf8Bytes = text.into();
            if out.reserve(text.len()) {
                self.held.push((out.clone(), text));
            }
        }
    }

    /// Queues an already-serialized frame for several connections of this node.
    fn send_text(&mut self, to: Vec<Outbox>, text: Utf8Bytes) {
        let len = text.len();
        self.held.extend(
            to.into_iter()
                .filter(|o| o.reserve(len))
                .map(|o| (o, text.clone())),
        );
    }
}

/// A job returns whether it succeeded (else its savepoint is rolled back) and what to do once
/// the group's commit is known.
type Job = Box<dyn FnOnce(&mut Inner, &Ctx) -> (bool, Done) + Send>;
type Done = Box<dyn FnOnce(bool) + Send>;

impl Engine {
    /// Opens the store, rebuilds queues and assignments from it, and starts the store thread
    /// (and, when several nodes share the database, the connection that wakes it).
    pub fn open(config: Arc<Config>, db: &Database, clock: SharedClock) -> Result<Self> {
        let mut store = db.open(clock.clone())?;
        let clustered = store.cluster().is_some();
        let mut inner = Inner {
            store,
            routing: Routing::new(&config),
            node: crate::cluster::node_name(),
            held: Vec::new(),
            log: clustered.then(Vec::new),
            applied: 0,
        };
        reload_routing(&mut inner, &config)?;
        let signin = Arc::new(crate::signin::SignIn::new(&config.signin));
        let hub = Arc::new(Hub::default());
        let config: SharedConfig = Arc::new(RwLock::new(config));
        let ctx = Ctx {
            hub: hub.clone(),
            config: config.clone(),
            clock: clock.clone(),
        };
        tracing::info!(node = %inner.node, clustered, "store open");
        let (jobs, rx) = mpsc::channel::<Job>();
        let listening = match db.postgres_url() {
            Some(url) if clustered => {
                let listening = Arc::new(Listening::default());
                let wake = jobs.clone();
                // An empty job: its group catches up on what the other nodes logged.
                crate::cluster::listen(url.to_string(), listening.clone(), move || {
                    wake.send(Box::new(|_, _| (true, Box::new(|_| {})))).is_ok()
                });
                Some(listening)
            }
            _ => None,
        };
        // The thread ends when the last `Engine` is dropped (the channel closes).
        std::thread::Builder::new()
            .name("em-store".into())
            .spawn(move || worker(inner, ctx, rx))?;
        Ok(Self {
            jobs,
            hub,
            limiter: Arc::default(),
            config,
            clock,
            db: db.clone(),
            signin,
            listening,
        })
    }

    /// The config as of now.
    pub fn config(&self) -> Arc<Config> {
        current(&self.config)
    }

    /// Swaps in a new (already validated) config: new branding and bot scripts apply at once,
    /// agents' capacity and skills are updated, and routing re-runs. Rights end with the
    /// config that granted them: agents removed, or given another password hash, are signed
    /// out at once (their session tokens void, their sockets closed).
    pub async fn reload(&self, config: Config) -> Result<()> {
        let config = Arc::new(config);
        let signin = self.signin.clone();
        self.run(move |inner, ctx| {
            let stale = crate::signin::stale_agents(&ctx.config(), &config);
            let mut sockets = signin.revoke_stale(&config);
            for name in &stale {
                sockets.extend(ctx.hub.agent_connections(name));
            }
            crate::agent::sign_out(sockets, "your account changed on the server; sign in again");
            inner.routing.reconfigure(&config);
            *ctx.config.write().unwrap_or_else(|p| p.into_inner()) = config;
            ctx.route(inner);
            Ok(())
        })
        .await
    }

    /// Runs `f` on the store thread; resolves after its group is committed and its frames sent.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner, &Ctx) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |inner, ctx| {
            let result = f(inner, ctx);
            let ok = result.is_ok();
            let done: Done = Box::new(move |committed| {
                let _ = tx.send(if committed {
                    result
                } else {
                    Err(Error::CommitFailed)
                });
            });
            (ok, done)
        });
        self.jobs.send(job).map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }
}

fn worker(mut inner: Inner, ctx: Ctx, rx: mpsc::Receiver<Job>) {
    let mut next_sweep = Instant::now() + SWEEP_EVERY;
    let mut sweeps: u32 = 0;
    loop {
        // Waits for work, but not past the next sweep.
        let mut batch = match rx.recv_timeout(next_sweep.saturating_duration_since(Instant::now()))
        {
            Ok(job) => vec![job],
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if Instant::now() >= next_sweep {
            sweeps = sweeps.wrapping_add(1);
            batch.push(sweep_job(sweeps.is_multiple_of(RETENTION_EVERY)));
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        if batch.is_empty() {
            continue;
        }
        let began = inner
            .store
            .begin()
            .and_then(|()| catch_up(&mut inner, &ctx));
        let mut done = Vec::with_capacity(batch.len());
        for job in batch {
            let mark = inner.held.len();
            let logged = inner.log.as_ref().map_or(0, Vec::len);
            let saved = inner.store.savepoint();
            let (ok, d) = job(&mut inner, &ctx);
            let closed = if ok {
                inner.store.release()
            } else {
                inner.store.rollback_to()
            };
            if !ok {
                for (out, text) in inner.held.drain(mark..) {
                    out.release(text.len());
                }
                // Its frames are dropped here, so they are not sent elsewhere either; the
                // routing changes it made stay applied here, so they are kept for the others.
                if let Some(log) = &mut inner.log {
                    let mut i = logged;
                    log.retain(|e| {
                        i += 1;
                        i <= logged || matches!(e, Event::Routing(_))
                    });
                }
            }
            if let Err(e) = saved.and(closed) {
                tracing::error!(error = %e, "savepoint failed");
            }
            done.push(d);
        }
        let committed = match began
            .and_then(|()| log_group(&mut inner))
            .and_then(|()| inner.store.commit())
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "commit failed; the group's jobs get `internal`");
                recover(&mut inner, &ctx);
                false
            }
        };
        for (out, text) in inner.held.drain(..) {
            if committed {
                out.send_reserved(text);
            } else {
                out.release(text.len());
            }
        }
        for d in done {
            d(committed);
        }
    }
}

/// Several nodes: takes the cluster's lock for this group and applies, in order, what the
/// other nodes logged since this node's last group (their frames go to this node's sockets
/// once the group commits, before the frames of this group's own jobs).
fn catch_up(inner: &mut Inner, ctx: &Ctx) -> Result<()> {
    let Some(cluster) = inner.store.cluster() else {
        return Ok(());
    };
    cluster.lock_group()?;
    let rows = cluster.log_after(inner.applied)?;
    if rows
        .first()
        .is_some_and(|(id, _, _)| *id > inner.applied + 1)
    {
        // Rows this node never applied were trimmed (it stood still for minutes): the
        // group fails, and the recovery reloads routing from the store.
        return Err(Error::Corrupt(
            "this node fell behind the cluster's log".into(),
        ));
    }
    for (id, node, events) in rows {
        if node != inner.node {
            let events: Vec<Event> = serde_json::from_str(&events)
                .map_err(|e| Error::Corrupt(format!("cluster log row {id}: {e}")))?;
            for event in events {
                match event {
                    Event::Routing(change) => inner.routing.apply(&change),
                    Event::ToConversation { id, agent, text } => {
                        inner.send_text(ctx.hub.recipients(id, agent.as_deref()), text.into())
                    }
                    Event::ToAgent { agent, text } => {
                        inner.send_text(ctx.hub.agent_connections(&agent), text.into())
                    }
                }
            }
        }
        inner.applied = id;
    }
    Ok(())
}

/// Several nodes: logs what this group's jobs did, as one row in the cluster's order.
fn log_group(inner: &mut Inner) -> Result<()> {
    let Some(log) = inner.log.as_mut().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let events = serde_json::to_string(&std::mem::take(log))
        .map_err(|e| Error::Corrupt(format!("cluster events: {e}")))?;
    let node = inner.node.clone();
    if let Some(cluster) = inner.store.cluster() {
        inner.applied = cluster.log(&node, &events)?;
    }
    Ok(())
}

/// The periodic sweep as a job of its own (its savepoint is rolled back if it fails).
fn sweep_job(retention: bool) -> Job {
    Box::new(move |inner, ctx| {
        let ok = match ctx.sweep(inner, retention) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "sweep failed; the next one retries");
                false
            }
        };
        let done: Done = Box::new(|_| {});
        (ok, done)
    })
}

/// Rebuilds the routing state from the store, in a transaction of its own. One node keeps the
/// presence its agents' connections set; several nodes read everyone's from the store, and
/// take the log's head under the cluster's lock, so the next group applies exactly what came
/// after the state read here.
fn reload_routing(inner: &mut Inner, config: &Config) -> Result<()> {
    let kept = inner.routing.presences();
    let (node, now) = (inner.node.clone(), inner.store.now());
    inner.store.begin()?;
    let loaded = (|| {
        let mut head = 0;
        let mut presences = kept;
        if let Some(cluster) = inner.store.cluster() {
            cluster.lock_group()?;
            // A member before any of its agents' presence is stored (see `sweep.rs`).
            cluster.beat(&node, now)?;
            head = cluster.log_head()?;
            presences = cluster
                .presences()?
                .into_iter()
                .map(|(agent, node, presence)| Change::Present {
                    agent,
                    node,
                    presence,
                })
                .collect();
        }
        let mut routing = crate::lifecycle::rebuild(config, inner.store.as_mut())?;
        for change in &presences {
            routing.apply(change);
        }
        Ok((routing, head))
    })();
    match loaded.and_then(|loaded| inner.store.commit().map(|()| loaded)) {
        Ok((routing, head)) => {
            inner.routing = routing;
            inner.applied = head;
            Ok(())
        }
        Err(e) => {
            inner.store.rollback();
            Err(e)
        }
    }
}

/// After a failed commit, memory may be ahead of the database: reload routing from it.
fn recover(inner: &mut Inner, ctx: &Ctx) {
    inner.store.rollback();
    if let Some(log) = &mut inner.log {
        log.clear();
    }
    if let Err(e) = reload_routing(inner, &ctx.config()) {
        tracing::error!(error = %e, "cannot reload routing state");
    }
}
