//! Wire types shared by the widget and the server: plain serde types, no IO.
//!
//! `SPEC.md` beside this crate is the written contract for other implementers.
//! Frames are JSON text frames tagged by `"type"`; one enum per direction:
//! [`visitor::ToServer`] / [`visitor::ToVisitor`] on the visitor socket,
//! [`agent::ToServer`] / [`agent::ToAgent`] on the agent socket.

pub mod agent;
pub mod close;
pub mod config;
pub mod entry;
pub mod error;
pub mod ids;
pub mod visitor;

pub use config::{
    AuthMode, Branding, BusinessHoursStatus, ConfigError, DeploymentConfig, FieldKind, HiddenField,
    OutsideHours, PrechatDisplay, PrechatField, PrechatForm,
};
pub use entry::{
    AbstractMessage, Choices, ChoicesFormat, ConversationEntry, EntryPayload, EstimatedWaitTime,
    OptionItem, Participant, ParticipantChange, ParticipantOperation, Role, SessionStatus,
    StaticContent, TitleItem,
};
pub use error::{ErrorCode, ErrorFrame};
pub use ids::{ConversationId, EndUserId, EntryId};

/// Version spoken in the `hello` handshake; a server refuses any other with `unsupported_version`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest text message, in characters, a server must accept.
pub const MAX_TEXT_CHARS: usize = 4000;

/// HTTP paths, relative to the messaging endpoint (`scrt2URL`).
pub mod paths {
    /// `GET ?orgId=&esConfigName=&language=` → [`crate::DeploymentConfig`].
    pub const CONFIG: &str = "/embeddedservice/v1/embedded-service-config";
    /// Visitor WebSocket: `?orgId=&esConfigName=`; the `Origin` header is checked at upgrade.
    pub const VISITOR_SOCKET: &str = "/embeddedservice/v1/ws";
    /// Agent WebSocket.
    pub const AGENT_SOCKET: &str = "/agent/ws";
}
