//! Conversation entries, mirroring the commercial conversation-entry model.

use serde::{Deserialize, Serialize};

use crate::{ConversationId, EntryId};

/// Who sent an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    EndUser,
    Agent,
    Chatbot,
    System,
    #[serde(other)]
    Unknown,
}

/// A participant: its role and an opaque subject (end-user id, agent username, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub role: Role,
    pub subject: String,
}

/// MessagingSession status. `New` until the first visitor message, `Waiting` while routed
/// but unassigned, `Active` with an agent, `Inactive` when idle but open, `Ended` for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStatus {
    New,
    Waiting,
    Active,
    Inactive,
    Ended,
}

/// One entry of a conversation, as stored and as sent to every participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationEntry {
    pub identifier: EntryId,
    pub conversation_id: ConversationId,
    /// Per-conversation sequence number: 1, 2, 3... with no gaps. Resume is by `seq`.
    pub seq: u64,
    pub sender: Participant,
    pub sender_display_name: String,
    /// Server time the entry was persisted, milliseconds since the Unix epoch.
    pub transcripted_timestamp: i64,
    /// Client time the entry was written, when a client wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_timestamp: Option<i64>,
    pub entry_payload: EntryPayload,
}

impl ConversationEntry {
    /// The `entryType` name, as in the commercial model.
    pub fn entry_type(&self) -> &'static str {
        self.entry_payload.entry_type()
    }
}

/// The typed payload; the tag `entryType` is inside it, as in the commercial `entryPayload`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entryType")]
pub enum EntryPayload {
    #[serde(rename_all = "camelCase")]
    Message {
        abstract_message: AbstractMessage,
    },
    ParticipantChanged {
        entries: Vec<ParticipantChange>,
    },
    #[serde(rename_all = "camelCase")]
    SessionStatusChanged {
        session_status: SessionStatus,
    },
    /// Routing outcome: `failureType` is `None` when the conversation reached an agent or queue.
    #[serde(rename_all = "camelCase")]
    RoutingResult {
        routing_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_type: Option<String>,
        /// Place in the queue and expected wait, while the conversation waits for an agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_wait_time: Option<EstimatedWaitTime>,
    },
    /// An entry type this side does not know; ignored, never fatal.
    #[serde(other)]
    Unknown,
}

impl EntryPayload {
    /// A plain-text message.
    pub fn text(id: EntryId, text: impl Into<String>) -> Self {
        EntryPayload::Message {
            abstract_message: AbstractMessage::StaticContentMessage {
                id,
                static_content: StaticContent::Text { text: text.into() },
            },
        }
    }

    /// The text of a text message, if this is one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            EntryPayload::Message {
                abstract_message:
                    AbstractMessage::StaticContentMessage {
                        static_content: StaticContent::Text { text },
                        ..
                    },
            } => Some(text),
            _ => None,
        }
    }

    pub fn entry_type(&self) -> &'static str {
        match self {
            EntryPayload::Message { .. } => "Message",
            EntryPayload::ParticipantChanged { .. } => "ParticipantChanged",
            EntryPayload::SessionStatusChanged { .. } => "SessionStatusChanged",
            EntryPayload::RoutingResult { .. } => "RoutingResult",
            EntryPayload::Unknown => "Unknown",
        }
    }
}

/// Queue position (1 = next) and estimated wait of a waiting conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimatedWaitTime {
    pub position: u32,
    pub estimated_wait_time_in_seconds: u64,
}

/// The message inside a `Message` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "messageType")]
pub enum AbstractMessage {
    #[serde(rename_all = "camelCase")]
    StaticContentMessage {
        id: EntryId,
        static_content: StaticContent,
    },
    /// Buttons or quick replies. The visitor answers with an ordinary text message whose
    /// text is the chosen option's title.
    ChoicesMessage { id: EntryId, choices: Choices },
    #[serde(other)]
    Unknown,
}

/// Static message content by format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "formatType")]
pub enum StaticContent {
    Text {
        text: String,
    },
    #[serde(other)]
    Unknown,
}

/// The options of a `ChoicesMessage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Choices {
    pub format_type: ChoicesFormat,
    pub text: String,
    pub option_items: Vec<OptionItem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChoicesFormat {
    Buttons,
    QuickReplies,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionItem {
    pub option_identifier: String,
    pub title_item: TitleItem,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitleItem {
    /// Always `TitleItem`.
    pub item_type: String,
    pub title: String,
}

impl Choices {
    /// Quick replies with these titles (option identifiers are their indexes).
    pub fn quick_replies(text: impl Into<String>, titles: &[String]) -> Self {
        Choices {
            format_type: ChoicesFormat::QuickReplies,
            text: text.into(),
            option_items: titles
                .iter()
                .enumerate()
                .map(|(i, t)| OptionItem {
                    option_identifier: i.to_string(),
                    title_item: TitleItem {
                        item_type: "TitleItem".into(),
                        title: t.clone(),
                    },
                })
                .collect(),
        }
    }
}

/// One participant joining or leaving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantChange {
    pub operation: ParticipantOperation,
    pub participant: Participant,
    pub display_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParticipantOperation {
    #[serde(rename = "add")]
    Add,
    #[serde(rename = "remove")]
    Remove,
}
