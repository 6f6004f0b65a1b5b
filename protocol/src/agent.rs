//! Frames on the agent socket (`/agent/ws`), used by the agent console.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ConversationEntry, ConversationId, EndUserId, EntryId, ErrorFrame, SessionStatus};

/// Agent presence. Only `Online` agents receive new work; `Busy` and `Away` keep what they
/// have; `Offline` is also what an agent without a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    Online,
    Busy,
    Away,
    Offline,
}

/// Agent → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ToServer {
    /// First frame: sign in with a configured username and exactly one of `credential` (the
    /// password) or `session_token` (from an earlier `welcome`).
    Hello {
        protocol_version: u32,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
    SetPresence {
        presence: Presence,
    },
    /// A reply; `entry_id` is client-generated and deduplicated like the visitor's.
    SendMessage {
        conversation_id: ConversationId,
        entry_id: EntryId,
        text: String,
    },
    /// End the messaging session; the visitor sees it ended.
    EndSession {
        conversation_id: ConversationId,
    },
    /// Hand an assigned conversation to another agent (`toAgent`) or back to a queue
    /// (`toQueue`); exactly one of the two.
    Transfer {
        conversation_id: ConversationId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_queue: Option<String>,
    },
    /// The agent started (`true`) or stopped typing in a conversation; relayed to the visitor.
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// The agent has seen the conversation up to `seq`; relayed to the visitor as `read`.
    /// The newest page of entries with `seq < before_seq` of an assigned conversation,
    /// answered by `history` (the console scrolled up past what `assigned` carried).
    History {
        conversation_id: ConversationId,
        before_seq: u64,
    },
    MarkRead {
        conversation_id: ConversationId,
        seq: u64,
    },
    Ping,
    /// Revoke this connection's session token and close every socket signed in with it.
    SignOut,
    #[serde(other)]
    Unknown,
}

/// Server → agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ToAgent {
    Welcome {
        protocol_version: u32,
        username: String,
        display_name: String,
        capacity: u32,
        /// Other agents, for transfers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        agents: Vec<AgentRef>,
        /// Queue names, for transfers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        queues: Vec<String>,
        /// After a password sign-in: the token to sign in with from now on instead of the
        /// password (short-lived; revoked by `signOut`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
    /// The current presence, after `setPresence`.
    Presence {
        presence: Presence,
    },
    /// A conversation is (or still is, after a reconnect) assigned to this agent, with the
    /// newest page of its history (older entries by `history`).
    Assigned {
        conversation: ConversationSummary,
        history: Vec<ConversationEntry>,
    },
    /// A new entry in an assigned conversation.
    Entry {
        entry: ConversationEntry,
    },
    /// The answer to `history`: up to a page of older entries, oldest first.
    History {
        conversation_id: ConversationId,
        entries: Vec<ConversationEntry>,
    },
    Ack {
        conversation_id: ConversationId,
        entry_id: EntryId,
        seq: u64,
    },
    /// The conversation left this agent (ended, transferred, or re-routed after it reopened).
    Released {
        conversation_id: ConversationId,
    },
    /// The visitor of an assigned conversation started or stopped typing.
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// The context of an assigned conversation changed (the visitor's `setContext`): the whole
    /// new context, and nothing else (the history is not sent again).
    Context {
        conversation_id: ConversationId,
        context: ConversationContext,
    },
    Error(ErrorFrame),
    Pong,
    #[serde(other)]
    Unknown,
}

/// Another agent, as a transfer target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRef {
    pub username: String,
    pub display_name: String,
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
    /// The queue the conversation was routed through.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub queue: String,
    /// What the agent should know before answering.
    #[serde(default)]
    pub context: ConversationContext,
}

/// Pre-chat and hidden fields, the page, and what the bot collected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConversationContext {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prechat_fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hidden_fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageContext>,
    /// Variables the bot collected (e.g. `orderNumber`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The page's `utilAPI.setSessionContext` variables.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub session_context: BTreeMap<String, String>,
    /// The verified visitor's JWT `sub` (verified deployments only; the token is never kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_subject: Option<String>,
}

/// The page the visitor chats from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageContext {
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
}
