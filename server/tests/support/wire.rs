//! The wire under the test client: one WebSocket, frames parsed with `em_protocol` into what
//! the client acts on, and the two ways a connection ends (a fault, or a broken promise).

use em_protocol::{ConversationEntry, ConversationId, EntryId, ErrorFrame};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::peer::IDLE;

/// A frame from either socket, reduced to what the client acts on.
pub(crate) enum In {
    Welcome {
        credential: Option<String>,
    },
    Conversation {
        id: ConversationId,
    },
    Presence,
    Entry(ConversationEntry),
    Ack {
        entry_id: EntryId,
        seq: u64,
    },
    Assigned {
        id: ConversationId,
        history: Vec<ConversationEntry>,
    },
    /// The answer to `history`: older entries.
    History(Vec<ConversationEntry>),
    Error(ErrorFrame),
    Other,
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) enum Fault {
    /// The connection failed or went quiet: reconnect.
    Disconnected,
    /// The server broke a promise: stop the test.
    Violation(String),
}

pub(crate) fn violation<T>(msg: String) -> Result<T, Fault> {
    Err(Fault::Violation(msg))
}

pub(crate) async fn timeout_at<F: std::future::Future>(
    deadline: Instant,
    f: F,
) -> Result<F::Output, ()> {
    tokio::time::timeout_at(deadline, f).await.map_err(|_| ())
}

pub(crate) async fn send(ws: &mut Ws, frame: Value) -> Result<(), Fault> {
    match timeout(IDLE, ws.send(Message::text(frame.to_string()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Fault::Disconnected),
    }
}

/// The next text frame, parsed; `Disconnected` on close or error.
pub(crate) async fn recv(ws: &mut Ws, agent: bool) -> Result<In, Fault> {
    loop {
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            _ => return Err(Fault::Disconnected),
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => return Err(Fault::Disconnected),
            _ => continue,
        };
        return if agent {
            parse_agent(&text)
        } else {
            parse_visitor(&text)
        };
    }
}

pub(crate) fn parse_visitor(text: &str) -> Result<In, Fault> {
    use em_protocol::visitor::ToVisitor as T;
    let frame: T = serde_json::from_str(text)
        .or_else(|e| violation(format!("unparsable frame {text}: {e}")))?;
    Ok(match frame {
        T::Welcome { credential, .. } => In::Welcome {
            credential: Some(credential),
        },
        T::Conversation {
            conversation_id, ..
        } => In::Conversation {
            id: conversation_id,
        },
        T::Entry { entry } => In::Entry(entry),
        T::History { entries, .. } => In::History(entries),
        T::Ack { entry_id, seq, .. } => In::Ack { entry_id, seq },
        T::Error(e) => In::Error(e),
        _ => In::Other,
    })
}

pub(crate) fn parse_agent(text: &str) -> Result<In, Fault> {
    use em_protocol::agent::ToAgent as T;
    let frame: T = serde_json::from_str(text)
        .or_else(|e| violation(format!("unparsable frame {text}: {e}")))?;
    Ok(match frame {
        T::Welcome { .. } => In::Welcome { credential: None },
        T::Presence { .. } => In::Presence,
        T::Assigned {
            conversation,
            history,
        } => In::Assigned {
            id: conversation.conversation_id,
            history,
        },
        T::Entry { entry } => In::Entry(entry),
        T::History { entries, .. } => In::History(entries),
        T::Ack { entry_id, seq, .. } => In::Ack { entry_id, seq },
        T::Error(e) => In::Error(e),
        _ => In::Other,
    })
}
