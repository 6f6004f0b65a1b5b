//! One WebSocket connection: a reader, a writer, a close watcher and an idle watchdog joined
//! with `select!`, then a close frame that says why.
//!
//! The core of both sockets: it parses each text frame, answers a malformed or unknown one,
//! lets nothing but `hello` through before sign-in, checks the protocol version, and answers
//! a frame that failed with an `error` frame; a [`Handler`] (visitor, agent) has only its own
//! frames to handle.
//!
//! Generic over `Sink`/`Stream` (as in axum's testing-websockets example) so a handler can be
//! driven by plain channels in unit tests.
//!
//! Heartbeat: the writer sends a WebSocket ping every [`PING_EVERY`]; a peer that sent nothing
//! (not even the pong every browser and WebSocket library answers with) for the idle limit
//! ([`IDLE_LIMIT`] unless `[server] idle_close_seconds` says otherwise) has vanished without
//! closing (a dead network, a sleeping laptop), and its socket is closed, so a vanished agent
//! goes Offline instead of receiving work. The watchdog is its own branch: a write blocked on
//! a peer that stopped reading cannot delay it.
//!
//! Memory: the outbound queue is bounded (`hub.rs`), every write has a timeout, and a close
//! the hub asks for (slow consumer, shutdown) goes before the frames still queued, which are
//! freed at once.

use std::convert::Infallible;
use std::fmt::Debug;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::Response;
use em_protocol::close::CloseCode;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout, timeout_at};

use em_protocol::{EntryId, ErrorCode, ErrorFrame, PROTOCOL_VERSION};

use crate::error::{Error, Result};
use crate::hub::{Inbox, Outbound, Outbox};

/// A socket's own part: its frames, its sign-in and its cleanup. Each text frame is handled
/// to completion before the next is read; replies go out through the handler's [`Outbox`].
pub trait Handler {
    /// Frames from the peer (the protocol's `ToServer`).
    type Frame: DeserializeOwned + Send;
    /// Frames to the peer (`ToVisitor`, `ToAgent`).
    type Reply: Serialize;
    /// What a `hello` signs in with, once its version is accepted.
    type Hello: Send;
    /// Who signed in on this connection.
    type Peer: Debug + Send;
    /// The socket's name in logs.
    const NAME: &'static str;

    /// The reply that carries an `error` frame (the protocol's enums are another crate's, so
    /// `From<ErrorFrame>` cannot be written here).
    fn error(frame: ErrorFrame) -> Self::Reply;
    /// Tells `hello` and unknown types from the frames the socket handles.
    fn sort(frame: Self::Frame) -> Sorted<Self::Frame, Self::Hello>;
    /// The connection's queue of replies.
    fn out(&self) -> &Outbox;
    /// Who signed in, or `None` until a `hello` is accepted.
    fn signed_in(&self) -> Option<Self::Peer>;
    /// A text frame before it is parsed; `Break` when it is refused (and answered).
    fn admit_text(&mut self, _text: &str) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A known frame before the handshake gate; `Break` when it is refused (and answered).
    fn admit(&mut self, _entry_id: Option<EntryId>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A `hello` of this server's protocol version, before sign-in.
    fn hello(&mut self, hello: Self::Hello) -> impl Future<Output = Result<()>> + Send;
    /// Any frame but `hello`, once `peer` signed in.
    fn handle(
        &mut self,
        peer: Self::Peer,
        frame: Self::Frame,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The connection is gone; forget it everywhere.
    fn on_close(self) -> impl Future<Output = ()> + Send;
    /// Silence after which the peer is taken for gone; read once, when the connection opens.
    fn idle_limit(&self) -> Duration {
        IDLE_LIMIT
    }
    /// Answers a frame that failed or was refused; the connection stays open.
    fn refuse(&self, e: &Error, entry_id: Option<EntryId>) {
        self.out().send(&Self::error(e.to_frame(entry_id)));
    }
}

/// A frame as the core sees it.
pub enum Sorted<F, H> {
    /// `hello`: the protocol version it speaks, and what it signs in with or why it cannot
    /// (a malformed `hello` is refused before its version is looked at).
    Hello { version: u32, sign_in: Result<H> },
    /// A type this server does not know (the protocol's catch-all).
    Unknown,
    /// Any other frame, with the `entryId` its error answer names (a `sendMessage`'s).
    Frame(F, Option<EntryId>),
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

/// After the close frame is out, how long the peer's close in reply is waited for (reading
/// what it still sends, so the connection ends without a reset): a live client answers at
/// once, and one that does not must not hold up a shutdown.
pub const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// The upgrade with this server's limits: frames over [`MAX_FRAME_BYTES`] are refused from
/// their header (tungstenite's own frame limit, 16 MiB, would be read into memory first), and
/// a small initial read buffer.
pub fn limits(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
}

/// Upgrades with this server's [`limits`] and serves the connection with `handler`.
pub fn upgrade<H>(ws: WebSocketUpgrade, inbox: Inbox, handler: H) -> Response
where
    H: Handler + Send + 'static,
{
    limits(ws).on_upgrade(move |ws| {
        let (write, read) = ws.split();
        serve(write, read, inbox, handler)
    })
}

/// A read error that calls for a close frame with a code (a protocol violation), or `None`
/// for a broken connection.
pub trait ReadError: std::fmt::Display {
    fn close_code(self) -> Option<CloseCode>;
}

impl ReadError for axum::Error {
    fn close_code(self) -> Option<CloseCode> {
        // axum wraps tungstenite's error; its kind says which rule the peer broke.
        match *self.into_inner().downcast::<tungstenite::Error>().ok()? {
            tungstenite::Error::Capacity(_) => Some(CloseCode::FrameTooLarge),
            tungstenite::Error::Utf8(_) => Some(CloseCode::InvalidUtf8),
            _ => None,
        }
    }
}

impl ReadError for Infallible {
    fn close_code(self) -> Option<CloseCode> {
        match self {}
    }
}

/// How the connection's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closes: send a close frame with this code.
    Close(CloseCode),
    /// The peer sent a close frame (the WebSocket layer answers it).
    PeerClosed,
    /// The connection broke, or every sender is gone.
    Gone,
}

/// Runs a connection until either side stops, sends a close frame saying why (bounded by the
/// close timeout), then calls [`Handler::on_close`]. The connection is listed in the hub
/// while this runs, so shutdown reaches it even before `hello`.
pub async fn serve<W, R, E, H>(mut write: W, mut read: R, mut inbox: Inbox, mut handler: H)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: ReadError,
    H: Handler,
{
    inbox.register();
    let limits = inbox.limits();
    let closer = inbox.closer();
    let start = Instant::now();
    let idle_limit = handler.idle_limit();
    let ping_every = PING_EVERY
        .min(idle_limit / 3)
        .max(Duration::from_millis(10));
    // Milliseconds since `start` of the last frame from the peer (any frame, pongs included).
    let heard = AtomicU64::new(0);
    let end = {
        let writer = async {
            let mut beat = tokio::time::interval_at(start + ping_every, ping_every);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let msg = tokio::select! {
                    out = inbox.recv() => match out {
                        Some(Outbound::Text(t)) => Message::Text(t),
                        Some(Outbound::Close(code)) => return End::Close(code),
                        None => return End::Gone,
                    },
                    _ = beat.tick() => Message::Ping(Default::default()),
                };
                match timeout(limits.write_timeout, write.send(msg)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Gone,
                    Err(_) => return End::Close(CloseCode::SlowConsumer),
                }
            }
        };
        let reader = async {
            while let Some(msg) = read.next().await {
                heard.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                match msg {
                    Ok(Message::Text(t)) => on_text(&mut handler, t.as_str()).await,
                    Ok(Message::Binary(_)) => handler.out().send(&H::error(bad_frame(
                        "binary frames are not supported; send JSON text",
                    ))),
                    Ok(Message::Close(_)) => return End::PeerClosed,
                    Ok(_) => {} // ping/pong are answered by the WebSocket layer
                    Err(e) => {
                        tracing::debug!(error = %e, "socket read failed");
                        return e.close_code().map_or(End::Gone, End::Close);
                    }
                }
            }
            End::Gone
        };
        let watchdog = async {
            loop {
                let last = Duration::from_millis(heard.load(Ordering::Relaxed));
                let due = start + last + idle_limit;
                if Instant::now() >= due {
                    return;
                }
                tokio::time::sleep_until(due).await;
            }
        };
        tokio::select! {
            code = closer.close_requested(limits.write_timeout) => End::Close(code),
            () = watchdog => End::Close(CloseCode::Idle),
            end = writer => end,
            end = reader => end,
        }
    };
    // Whatever is still queued is not sent: free it now, not after the close handshake.
    inbox.discard();
    let deadline = Instant::now() + limits.close_timeout;
    match end {
        End::Close(code) => {
            inbox.decided(code);
            tracing::debug!(code = code.code(), reason = code.reason(), "closing socket");
            let frame = CloseFrame {
                code: code.code(),
                reason: code.reason().into(),
            };
            if let Ok(Ok(())) = timeout_at(deadline, write.send(Message::Close(Some(frame)))).await
            {
                // The peer's close in reply ends the handshake; what it sent meanwhile is
                // read and dropped.
                let reply_by = deadline.min(Instant::now() + CLOSE_REPLY_WAIT);
                let _ = timeout_at(reply_by, async {
                    while let Some(Ok(msg)) = read.next().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        // The WebSocket layer queued its reply to the peer's close: push it out.
        End::PeerClosed => {
            let _ = timeout_at(deadline, write.flush()).await;
        }
        End::Gone => {}
    }
    handler.on_close().await;
    drop(inbox); // leaves the hub's live list last: shutdown waits for the cleanup above
}

/// One text frame: parsed, admitted, let through the handshake gate, handled; whatever fails
/// is answered with an `error` frame (naming the `sendMessage` it refuses) and the connection
/// stays open.
async fn on_text<H: Handler>(handler: &mut H, text: &str) {
    if handler.admit_text(text).is_break() {
        return;
    }
    let frame = match parse_frame::<H::Frame>(text) {
        Ok((f, ty)) => match H::sort(f) {
            Sorted::Unknown => return handler.out().send(&H::error(unknown_type(&ty))),
            sorted => sorted,
        },
        Err(e) => return handler.out().send(&H::error(e)),
    };
    let entry_id = match frame {
        Sorted::Frame(_, entry_id) => entry_id,
        _ => None,
    };
    if handler.admit(entry_id).is_break() {
        return;
    }
    if let Err(e) = gate(handler, frame).await {
        if !e.is_peer() {
            let peer = handler.signed_in();
            tracing::error!(?peer, error = %e, "{} frame failed", H::NAME);
        }
        handler.refuse(&e, entry_id);
    }
}

/// Before sign-in only a `hello` of this protocol version is handled; after, no `hello` is.
async fn gate<H: Handler>(handler: &mut H, frame: Sorted<H::Frame, H::Hello>) -> Result<()> {
    match (handler.signed_in(), frame) {
        (None, Sorted::Hello { version, sign_in }) => {
            let hello = sign_in?;
            if version != PROTOCOL_VERSION {
                handler.out().send(&H::error(ErrorFrame {
                    code: ErrorCode::UnsupportedVersion,
                    message: format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, not {version}"
                    ),
                    entry_id: None,
                    retry_after_ms: None,
                }));
                handler.out().close(CloseCode::UnsupportedVersion);
                return Ok(());
            }
            handler.hello(hello).await
        }
        (None, Sorted::Frame(..)) => Err(Error::peer(
            ErrorCode::HandshakeRequired,
            "the first frame must be hello",
        )),
        (Some(_), Sorted::Hello { .. }) => Err(Error::peer(
            ErrorCode::BadFrame,
            "hello was already accepted on this connection",
        )),
        (Some(peer), Sorted::Frame(frame, _)) => handler.handle(peer, frame).await,
        (_, Sorted::Unknown) => Ok(()), // answered before the gate
    }
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
