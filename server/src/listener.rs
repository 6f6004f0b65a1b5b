//! The accept loop: connection caps (global and per peer address, WebSockets counted for their
//! lifetime), a header-read and a request timeout, TCP_NODELAY, and a graceful drain.
//!
//! `axum::serve` exposes none of hyper's timeouts, so connections are served here with
//! hyper-util's builder, as axum does it, plus the limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::config::HttpSettings;

/// What a refused connection is told before it is closed (it has sent nothing we read).
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 5\r\n\
content-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\n\
referrer-policy: strict-origin-when-cross-origin\r\ncontent-length: 21\r\n\r\ntoo many connections\n";

/// Serves `app` on `listener` with `settings` until `stop` resolves, then stops accepting,
/// lets the requests in flight finish and returns once every HTTP connection is closed
/// (upgraded WebSockets are closed by their owners, see [`crate::run`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &HttpSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let caps = Caps::new(settings);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout());
    let builder = Arc::new(builder);
    let request_timeout = settings.request_timeout();
    let header_timeout = settings.header_read_timeout();
    // Dropping `shutdown_tx` asks every connection to finish; each holds a `drained_rx`
    // clone, so `drained_tx.closed()` resolves when the last one is done.
    let (shutdown_tx, shutdown_rx) = watch::channel(());
    let (drained_tx, drained_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%peer, why, "connection refused");
                // Best effort and never blocking: the socket is new, its buffer empty.
                let _ = tcp.try_write(REFUSED);
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        // Handlers read the peer's address (`ConnectInfo`): per-address limits count it.
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                Ok::<_, Infallible>(
                    match tokio::time::timeout(request_timeout, app.oneshot(req)).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_) => timed_out(),
                    },
                )
            }
        });
        let builder = builder.clone();
        let mut shutdown_rx = shutdown_rx.clone();
        let drained_rx = drained_rx.clone();
        tokio::spawn(async move {
            // hyper's header-read timer starts with the first byte of a new connection: one
            // that sends nothing at all is closed here, after the same timeout.
            let mut first_byte = [0u8; 1];
            tokio::select! {
                first = tokio::time::timeout(header_timeout, tcp.peek(&mut first_byte)) => {
                    if !matches!(first, Ok(Ok(1))) {
                        return;
                    }
                }
                _ = shutdown_rx.changed() => return,
            }
            let io = TokioIo::new(Counted { tcp, _slot: slot });
            let conn = builder.serve_connection_with_upgrades(io, service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_end(r),
                _ = shutdown_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await);
                }
            }
            drop(drained_rx);
        });
    }
    drop(listener);
    drop(shutdown_tx);
    drop(drained_rx);
    drained_tx.closed().await;
    Ok(())
}

fn log_end(r: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = r {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// Made here, outside the router, so it gets the router's security headers by hand.
fn timed_out() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        [
            (header::CONNECTION, "close"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        ],
        "request timeout\n",
    )
        .into_response()
}

/// Out of descriptors (EMFILE) or memory: wait a little instead of spinning on `accept`;
/// the connections in flight free descriptors as they end.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The open connections, in total and by peer address.
struct Caps {
    total: Arc<Semaphore>,
    per_address: usize,
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection's place under the caps, given back when it is dropped.
struct Slot {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    by_address: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl Caps {
    fn new(settings: &HttpSettings) -> Self {
        Self {
            total: Arc::new(Semaphore::new(settings.max_connections)),
            per_address: settings.max_connections_per_address,
            by_address: Arc::default(),
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<Slot, &'static str> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| "max_connections reached")?;
        // IPv4 peers of a dual-stack listener arrive as ::ffff:a.b.c.d: one address either way.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.per_address == 0 {
            return Ok(Slot {
                _total: total,
                ip,
                by_address: None,
            });
        }
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= self.per_address {
            return Err("max_connections_per_address reached");
        }
        *n += 1;
        Ok(Slot {
            _total: total,
            ip,
            by_address: Some(self.by_address.clone()),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(map) = &self.by_address else {
            return;
        };
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A connection holding its [`Slot`]: an upgraded WebSocket owns this stream, so it counts
/// until the socket is dropped, not only while hyper serves HTTP on it.
struct Counted {
    tcp: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Raises this process's soft open-files limit to the hard one (each connection is a
/// descriptor) and returns the limit now in force, if the platform has one.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let (_, hard) = rlimit::Resource::NOFILE.get().ok()?;
        rlimit::increase_nofile_limit(hard).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors kept for everything but client connections: the database and its journal,
/// the listeners, widget files being read, the reader of a metrics scrape.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// `max_connections`, lowered to fit under the open-files limit.
pub fn fitting_max_connections(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => {
            let room = n.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The caps count per address and in total, and a dropped slot frees its place.
    fn caps_count_and_free() {
        let caps = Caps::new(&HttpSettings {
            max_connections: 3,
            max_connections_per_address: 2,
            ..HttpSettings::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = caps.admit(a).unwrap();
        let _second = caps.admit(mapped).unwrap();
        assert_eq!(
            caps.admit(a).err(),
            Some("max_connections_per_address reached")
        );
        let _third = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).err(), Some("max_connections reached"));
        drop(first);
        assert!(caps.admit(a).is_ok());
    }

    #[test]
    // The connection cap stays under the open-files limit, less the reserve.
    fn cap_fits_the_descriptor_limit() {
        assert_eq!(fitting_max_connections(50_000, Some(1024)), 960);
        assert_eq!(fitting_max_connections(500, Some(1_048_576)), 500);
        assert_eq!(fitting_max_connections(500, None), 500);
    }
}
