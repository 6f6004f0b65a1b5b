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

use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hub::{Hub, Outbox};
use crate::limits::Limiter;
use crate::routing::Routing;
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
    pub routing: Routing,
    /// Frames to send once the current group commits.
    held: Vec<(Outbox, Utf8Bytes)>,
}

impl Inner {
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

    /// Queues an already-serialized frame for several connections.
    pub fn send_text(&mut self, to: Vec<Outbox>, text: Utf8Bytes) {
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
    /// Opens the store, rebuilds queues and assignments from it, and starts the store thread.
    pub fn open(config: Arc<Config>, db: &Database, clock: SharedClock) -> Result<Self> {
        let mut store = db.open(clock.clone())?;
        let routing = crate::lifecycle::rebuild(&config, store.as_mut())?;
        let signin = Arc::new(crate::signin::SignIn::new(&config.signin));
        let hub = Arc::new(Hub::default());
        let config: SharedConfig = Arc::new(RwLock::new(config));
        let ctx = Ctx {
            hub: hub.clone(),
            config: config.clone(),
            clock: clock.clone(),
        };
        let inner = Inner {
            store,
            routing,
            held: Vec::new(),
        };
        let (jobs, rx) = mpsc::channel();
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
        let began = inner.store.begin();
        let mut done = Vec::with_capacity(batch.len());
        for job in batch {
            let mark = inner.held.len();
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
            }
            if let Err(e) = saved.and(closed) {
                tracing::error!(error = %e, "savepoint failed");
            }
            done.push(d);
        }
        let committed = match began.and_then(|()| inner.store.commit()) {
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

/// After a failed commit, memory may be ahead of the database: reload routing from it.
fn recover(inner: &mut Inner, ctx: &Ctx) {
    inner.store.rollback();
    match crate::lifecycle::rebuild(&ctx.config(), inner.store.as_mut()) {
        Ok(mut routing) => {
            for (agent, presence) in inner.routing.present_agents() {
                routing.set_presence(&agent, presence);
            }
            inner.routing = routing;
        }
        Err(e) => tracing::error!(error = %e, "cannot reload routing state"),
    }
}
