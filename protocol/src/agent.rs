//! Frames on the agent socket (`/agent/ws`), used by the agent console.

use serde::{Deserialize, Serialize};

use crate::{ConversationEntry, ConversationId, EndUserId, EntryId, ErrorFrame, SessionStatus};

/// Agent presence. Only `Online` agents receive new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    Online,
    Offline,
}

/// Agent → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ToServer {
    /// First frame: sign in with a configured username and credential.
    Hello {
        protocol_version: u32,
        username: String,
        credential: String,
    },
    SetPresence { presence: Presence },
    /// A reply; `entry_id` is client-generated and deduplicated like the visitor's.
    SendMessage {
        conversation_id: ConversationId,
        entry_id: EntryId,
        text: String,
    },
    /// End the messaging session; the visitor sees it ended.
    EndSession { conversation_id: ConversationId },
    Ping,
    #[serde(other)]
    Unknown,
}

/// Server → agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ToAgent {
    Welcome {
        protocol_version: u32,
        username: String,
        display_name: String,
        capacity: u32,
    },
    /// The current presence, after `setPresence`.
    Presence { presence: Presence },
    /// A conversation is (or still is, after a reconnect) assigned to this agent.
    Assigned {
        conversation: ConversationSummary,
        history: Vec<ConversationEntry>,
    },
    /// A new entry in an assigned conversation.
    Entry { entry: ConversationEntry },
    Ack {
        conversation_id: ConversationId,
        entry_id: EntryId,
        seq: u64,
    },
    /// The conversation left this agent (ended).
    Released { conversation_id: ConversationId },
    Error(ErrorFrame),
    Pong,
    #[serde(other)]
    Unknown,
}

/// What an agent sees about a conversation besides its entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub conversation_id: ConversationId,
    pub end_user_id: EndUserId,
    pub org_id: String,
    pub deployment_name: String,
    pub status: SessionStatus,
}
