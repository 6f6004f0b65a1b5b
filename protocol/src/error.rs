//! The `error` frame and its stable codes.

use serde::{Deserialize, Serialize};

use crate::EntryId;

/// Stable, machine-readable error codes. Clients match on these, never on `message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known frame shape. The connection stays open.
    BadFrame,
    /// `hello` named a protocol version the server does not speak. The server closes.
    UnsupportedVersion,
    /// A frame other than `hello` arrived before the handshake completed.
    HandshakeRequired,
    /// The credential is unknown, or the peer may not touch that conversation.
    Unauthorized,
    /// No such org id / deployment.
    UnknownDeployment,
    /// The page origin is not in the deployment's allowed origins.
    OriginNotAllowed,
    /// The conversation does not exist (or is not visible to this peer).
    NotFound,
    /// The id is already used by something else (e.g. another visitor's conversation).
    Conflict,
    /// A text message is empty or longer than [`crate::MAX_TEXT_CHARS`].
    InvalidMessage,
    /// The conversation has ended; start a new one.
    ConversationEnded,
    /// The deployment exists but is not published: no button.
    DeploymentUnpublished,
    /// Verified deployment: `hello` carried no identity token.
    IdentityRequired,
    /// The identity token was refused: malformed, bad signature, `alg` not RS256/ES256,
    /// wrong `iss` or `aud`, no `sub`, already expired, or a different `sub` than the session.
    /// `message` says which.
    IdentityInvalid,
    /// The token expired and no fresh one came within the grace period; clear the session.
    IdentityExpired,
    /// A pre-chat or hidden field was refused (unknown name, not a string, too long, script
    /// URL, not one of the choices, required but empty). `message` names the field; the
    /// frame's other fields were kept.
    InvalidField,
    /// Too many frames, messages, conversations or connections from this client: nothing was
    /// done; send the same frame again after `retryAfterMs` (every frame is idempotent).
    RateLimited,
    /// The server failed; the client may retry the same frame (it is idempotent).
    Internal,
    /// A code this client does not know.
    #[serde(other)]
    Unknown,
}

/// Payload of the `error` frame, on both sockets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    pub code: ErrorCode,
    /// Human-readable, for logs and consoles.
    pub message: String,
    /// The client entry the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<EntryId>,
    /// `rate_limited`: how long to wait before sending the frame again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}
