//! One WebSocket connection: a reader loop and a writer task joined with `select!`.
//!
//! Generic over `Sink`/`Stream` (as in axum's testing-websockets example) so a handler can be
//! driven by plain channels in unit tests.
//!
//! Heartbeat: the writer sends a WebSocket ping every [`PING_EVERY`]; a peer that sent nothing
//! (not even the pong every browser and WebSocket library answers with) for the idle limit
//! ([`IDLE_LIMIT`] unless `[server] idle_close_seconds` says otherwise) has vanished without
//! closing (a dead network, a sleeping laptop), and its socket is closed, so
//! a vanished agent goes Offline instead of receiving work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Message;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use em_protocol::{ErrorCode, ErrorFrame};

use crate::hub::Outbound;

/// What a socket does with its frames. Replies go out through the handler's own `Outbox`.
pub trait Handler {
    /// One text frame, handled to completion before the next is read.
    fn on_text(&mut self, text: &str) -> impl Future<Output = ()> + Send;
    /// A binary frame: not part of the protocol.
    fn on_binary(&mut self);
    /// The connection is gone; forget it everywhere.
    fn on_close(self) -> impl Future<Output = ()> + Send;
    /// Silence after which the peer is taken for gone; read once, when the connection opens.
    fn idle_limit(&self) -> Duration {
        IDLE_LIMIT
    }
}

/// Initial read buffer of a connection; it grows for larger frames. The default (128 KiB)
/// would make every idle connection cost that much memory.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Largest frame accepted: a maximal text message, JSON-escaped, with room to spare.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// How often the server pings each peer (more often under a short idle limit: three pings
/// fit in it).
pub const PING_EVERY: Duration = Duration::from_secs(10);

/// Silence after which a peer is taken for gone by default: three missed pongs.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Runs a connection until either side stops, then calls [`Handler::on_close`].
pub async fn serve<W, R, E, H>(
    mut write: W,
    mut read: R,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    mut handler: H,
) where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
    H: Handler,
{
    let start = Instant::now();
    let idle_limit = handler.idle_limit();
    let ping_every = PING_EVERY
        .min(idle_limit / 3)
        .max(Duration::from_millis(10));
    // Milliseconds since `start` of the last frame from the peer (any frame, pongs included).
    let heard = AtomicU64::new(0);
    let writer = async {
        let mut beat = tokio::time::interval_at(start + ping_every, ping_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (msg, last) = tokio::select! {
                out = rx.recv() => match out {
                    Some(Outbound::Text(t)) => (Message::Text(t), false),
                    Some(Outbound::Close) => (Message::Close(None), true),
                    None => break,
                },
                _ = beat.tick() => {
                    let silent = start.elapsed().saturating_sub(Duration::from_millis(heard.load(Ordering::Relaxed)));
                    if silent >= idle_limit {
                        tracing::debug!(silent_ms = silent.as_millis() as u64, "peer silent; closing");
                        break;
                    }
                    (Message::Ping(Default::default()), false)
                }
            };
            if write.send(msg).await.is_err() || last {
                break;
            }
        }
    };
    let reader = async {
        while let Some(msg) = read.next().await {
            heard.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            match msg {
                Ok(Message::Text(t)) => handler.on_text(t.as_str()).await,
                Ok(Message::Binary(_)) => handler.on_binary(),
                Ok(Message::Close(_)) => break,
                Ok(_) => {} // ping/pong are answered by the WebSocket layer
                Err(e) => {
                    tracing::debug!(error = %e, "socket read failed");
                    break;
                }
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    handler.on_close().await;
}

/// Parses a text frame into `T`, also returning its `type`. The error is a `bad_frame`
/// saying what was wrong, so the peer can fix it; the connection stays open.
pub fn parse_frame<T: serde::de::DeserializeOwned>(text: &str) -> Result<(T, String), ErrorFrame> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| bad_frame(format!("frame is not valid JSON: {e}")))?;
    let Some(ty) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
    else {
        return Err(bad_frame("expected a JSON object with a \"type\""));
    };
    let frame = serde_json::from_value(value)
        .map_err(|e| bad_frame(format!("invalid {ty:?} frame: {e}")))?;
    Ok((frame, ty))
}

pub fn bad_frame(message: impl Into<String>) -> ErrorFrame {
    ErrorFrame {
        code: ErrorCode::BadFrame,
        message: message.into(),
        entry_id: None,
        retry_after_ms: None,
    }
}

pub fn unknown_type(ty: &str) -> ErrorFrame {
    bad_frame(format!("unknown frame type {ty:?}"))
}
