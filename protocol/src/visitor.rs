//! Frames on the visitor socket (`/embeddedservice/v1/ws?orgId=&esConfigName=`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent::PageContext;
use crate::{ConversationEntry, ConversationId, EndUserId, EntryId, ErrorFrame, SessionStatus};

/// Visitor → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ToServer {
    /// First frame. Without `credential` the server issues a new anonymous identity. A
    /// deployment with `auth: "verified"` requires `identity_token` (a JWT) instead, and maps
    /// its `sub` to one end user, so the same person resumes from any browser.
    Hello {
        protocol_version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity_token: Option<String>,
    },
    /// A fresh identity token on an open connection (after `identityTokenExpired`, or a new
    /// one before expiry). Same `sub`: answered by `welcome`, the session continues. The
    /// server verifies it and never stores it.
    Identify { identity_token: String },
    /// Create (or, with the same id and owner, re-open) a conversation. Idempotent.
    CreateConversation { conversation_id: ConversationId },
    /// Replay the entries with `seq > after_seq`, then stream live entries. A server replays
    /// a page at a time: with `after_seq` 0 the newest page (older ones come by `history`),
    /// otherwise the first page after it, and `conversation.replay_to` says where it stops.
    Resume {
        conversation_id: ConversationId,
        after_seq: u64,
    },
    /// The newest page of entries with `seq < before_seq` (scrolling up), answered by `history`.
    History {
        conversation_id: ConversationId,
        before_seq: u64,
    },
    /// A text message. `entry_id` is client-generated; resending it is always safe.
    SendMessage {
        conversation_id: ConversationId,
        entry_id: EntryId,
        text: String,
        client_timestamp: i64,
    },
    /// Pre-chat and hidden fields and the page, for routing and the agent. Merged into what
    /// the conversation already has; no answer unless it fails.
    SetContext {
        conversation_id: ConversationId,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        prechat_fields: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        hidden_fields: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page: Option<PageContext>,
        /// `utilAPI.setSessionContext`: variables for the bot, routing rules and the agent.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        session_context: BTreeMap<String, String>,
        /// `autoResponseAPI`: values merged into the deployment's automated messages.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        auto_response_parameters: BTreeMap<String, String>,
    },
    /// The visitor ends the conversation (status `Ended`, sender `EndUser`). The next message
    /// goes to a new conversation. Ending an ended conversation is a no-op.
    EndConversation { conversation_id: ConversationId },
    /// The visitor started (`true`) or stopped typing; relayed to the agent, not stored.
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// Keep-alive; answered by `pong`.
    Ping,
    /// A frame type this server does not know: answered with `error` `bad_frame`, not fatal.
    #[serde(other)]
    Unknown,
}

/// Server → visitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ToVisitor {
    /// Handshake answer. `credential` is the secret to store and present next time (empty in
    /// verified mode: the identity token is the credential, and the client stores no secret).
    /// `conversation_id` is the end user's open conversation, if any, so a verified visitor
    /// resumes it from any browser.
    Welcome {
        protocol_version: u32,
        end_user_id: EndUserId,
        credential: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
    },
    /// State of a conversation, sent in answer to `createConversation` and `resume`
    /// before any replayed entry. `created` is true only when this call created it.
    /// `replay_to`: the replay of this `resume` stops at this `seq`, short of `last_seq` (one
    /// page); resume again after it for the rest. Absent when the replay reaches `last_seq`.
    Conversation {
        conversation_id: ConversationId,
        status: SessionStatus,
        last_seq: u64,
        created: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replay_to: Option<u64>,
    },
    /// A persisted entry (replayed or live). Render each `seq` once.
    Entry {
        entry: ConversationEntry,
    },
    /// The answer to `history`: up to a page of older entries, oldest first (none when there
    /// are none; more exist while the first one's `seq` is above 1).
    History {
        conversation_id: ConversationId,
        entries: Vec<ConversationEntry>,
    },
    /// `sendMessage` with `entry_id` is persisted as `seq` (also for a resent duplicate).
    Ack {
        conversation_id: ConversationId,
        entry_id: EntryId,
        seq: u64,
    },
    Error(ErrorFrame),
    Pong,
    /// Verified mode: the token's `exp` passed. Send `identify` with a fresh token within
    /// `grace_seconds` to continue; after that the server sends `error` `identity_expired`
    /// and closes, and the client clears the session.
    IdentityTokenExpired {
        grace_seconds: u64,
    },
    /// Someone else in the conversation started or stopped typing. Not an entry: not stored.
    Typing {
        conversation_id: ConversationId,
        sender: crate::Participant,
        sender_display_name: String,
        typing: bool,
    },
    /// The agent side has read the conversation up to `seq` (the visitor's messages with
    /// `seq <= seq` were seen). Not an entry; also sent after `conversation` on `resume`.
    Read {
        conversation_id: ConversationId,
        seq: u64,
    },
    /// A frame type this client does not know: ignored.
    #[serde(other)]
    Unknown,
}
