//! A fault-injecting TCP proxy on 127.0.0.1: forwards every connection to an upstream address
//! and, driven by a seeded generator, cuts connections (FIN or RST), stalls a direction, and
//! delays or splits chunks. Dropping the proxy stops it and every connection it carries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::sleep;

use super::Rng;

/// What can go wrong, and how often. Probabilities are per forwarded chunk (one `read`).
#[derive(Clone, Debug)]
pub struct Faults {
    /// Every connection is cut after a random lifetime in this range (ms), traffic or not.
    pub lifetime_ms: Option<(u64, u64)>,
    /// Cut the whole connection instead of forwarding this chunk.
    pub cut: f64,
    /// Stop forwarding this direction for a while (ms) before the chunk.
    pub stall: f64,
    pub stall_ms: (u64, u64),
    /// Hold the chunk back a little (ms).
    pub delay: f64,
    pub delay_ms: (u64, u64),
    /// Write the chunk in two pieces with a pause between (a frame split across segments).
    pub split: f64,
}

impl Faults {
    /// A plain forwarder.
    pub fn none() -> Self {
        Faults {
            lifetime_ms: None,
            cut: 0.0,
            stall: 0.0,
            stall_ms: (0, 0),
            delay: 0.0,
            delay_ms: (0, 0),
            split: 0.0,
        }
    }
}

/// What the proxy did, for the test's report.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub cuts: AtomicU64,
    pub stalls: AtomicU64,
    pub delays: AtomicU64,
    pub splits: AtomicU64,
    pub bytes: AtomicU64,
    /// Connections the upstream (the server) closed or reset.
    pub closed_by_upstream: AtomicU64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections, {} cuts, {} stalls, {} delays, {} splits, {} bytes",
            self.connections.load(Relaxed),
            self.cuts.load(Relaxed),
            self.stalls.load(Relaxed),
            self.delays.load(Relaxed),
            self.splits.load(Relaxed),
            self.bytes.load(Relaxed)
        )
    }
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    faults: Faults,
    enabled: AtomicBool,
    /// Read and discard everything, forward nothing, close nothing: a peer that vanished
    /// without a FIN (a laptop lid closed, a NAT entry dropped).
    blackhole: AtomicBool,
    stats: Stats,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0; faults are on from the start.
    pub async fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            faults,
            enabled: AtomicBool::new(true),
            blackhole: AtomicBool::new(false),
            stats: Stats::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), Rng::new(seed)));
        Proxy { addr, shared, task }
    }

    /// Where new connections go (e.g. a restarted server on another port).
    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = addr;
    }

    pub fn set_faults(&self, on: bool) {
        self.shared.enabled.store(on, Relaxed);
    }

    /// Swallow all traffic on every connection (see `Shared::blackhole`).
    pub fn set_blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Relaxed);
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns every connection task (a JoinSet), so this stops them all.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, rng: Rng) {
    let mut conns = JoinSet::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                n += 1;
                shared.stats.connections.fetch_add(1, Relaxed);
                conns.spawn(connection(client, shared.clone(), rng.fork(n)));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

enum End {
    /// The source closed: pass the close on and let the other direction finish.
    Eof,
    /// Cut by a fault: drop both sockets.
    Cut,
    /// The destination is gone: drop both sockets.
    Gone,
}

async fn connection(mut client: TcpStream, shared: Arc<Shared>, mut rng: Rng) {
    let upstream = *shared.upstream.lock().unwrap();
    let Ok(Ok(mut server)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(upstream)).await
    else {
        return; // dropping the client is the refusal
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let on = shared.enabled.load(Relaxed);
    let lifetime = shared
        .faults
        .lifetime_ms
        .filter(|_| on)
        .map(|(lo, hi)| Duration::from_millis(rng.between(lo, hi)));
    let abrupt = rng.chance(0.5);
    let cut = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, &shared, rng.fork(1), false);
        let down = pump(sr, cw, &shared, rng.fork(2), true);
        let timer = async {
            match lifetime {
                Some(d) => sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(up, down, timer);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up, if !up_done => match end {
                    End::Cut => break true,
                    End::Gone => break false,
                    End::Eof => up_done = true,
                },
                end = &mut down, if !down_done => match end {
                    End::Cut => break true,
                    End::Gone => break false,
                    End::Eof => down_done = true,
                },
                _ = &mut timer, if shared.enabled.load(Relaxed) => break true,
            }
            if up_done && down_done {
                break false;
            }
        }
    };
    if cut {
        shared.stats.cuts.fetch_add(1, Relaxed);
        if abrupt {
            // RST instead of FIN: the peer sees "connection reset", not a clean close.
            let _ = (client.set_zero_linger(), server.set_zero_linger());
        }
    }
}

async fn pump<R, W>(
    mut from: R,
    mut to: W,
    shared: &Shared,
    mut rng: Rng,
    from_upstream: bool,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let f = &shared.faults;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if from_upstream {
                    shared.stats.closed_by_upstream.fetch_add(1, Relaxed);
                }
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
        };
        shared.stats.bytes.fetch_add(n as u64, Relaxed);
        if shared.blackhole.load(Relaxed) {
            continue;
        }
        let mut at = 0;
        if shared.enabled.load(Relaxed) {
            if rng.chance(f.cut) {
                return End::Cut;
            }
            if rng.chance(f.stall) {
                shared.stats.stalls.fetch_add(1, Relaxed);
                sleep(Duration::from_millis(
                    rng.between(f.stall_ms.0, f.stall_ms.1),
                ))
                .await;
            } else if rng.chance(f.delay) {
                shared.stats.delays.fetch_add(1, Relaxed);
                sleep(Duration::from_millis(
                    rng.between(f.delay_ms.0, f.delay_ms.1),
                ))
                .await;
            }
            if n > 1 && rng.chance(f.split) {
                shared.stats.splits.fetch_add(1, Relaxed);
                at = rng.between(1, n as u64 - 1) as usize;
                if to.write_all(&buf[..at]).await.is_err() {
                    return End::Gone;
                }
                sleep(Duration::from_millis(rng.between(1, 5))).await;
            }
        }
        if to.write_all(&buf[at..n]).await.is_err() {
            return End::Gone;
        }
    }
}
