//! JSON text ↔ protocol types, by hand, at the socket, storage and config edges.
//!
//! Why not serde (with serde-wasm-bindgen or serde_json): deriving through serde (internally
//! tagged enums buffer into `Content`) tripled the wasm (127 → 305 KB). These readers are
//! the same contract in a fraction of the bytes; the tests below check them against the
//! protocol crate's serde definitions for every frame, so they cannot drift.

use em_protocol::visitor::{ToServer, ToVisitor};
use em_protocol::{
    AbstractMessage, AuthMode, Branding, BusinessHoursStatus, Choices, ChoicesFormat,
    ConversationEntry, DeploymentConfig, EntryPayload, ErrorCode, ErrorFrame, OptionItem,
    OutsideHours, Participant, ParticipantChange, ParticipantOperation, Role, SessionStatus,
    StaticContent, TitleItem,
};
use uuid::Uuid;

use crate::json::{Json, Obj, quote};
use crate::state::{Context, Persisted, WindowState};

/// Why a value could not be read (names the field).
pub type Bad = &'static str;

// ---- reading ----

static NULL: Json = Json::Null;

fn get<'a>(v: &'a Json, key: &str) -> &'a Json {
    v.get(key).unwrap_or(&NULL)
}

fn string(v: &Json, key: &'static str) -> Result<String, Bad> {
    get(v, key).as_str().map(str::to_owned).ok_or(key)
}

fn opt_string(v: &Json, key: &str) -> String {
    get(v, key).as_str().unwrap_or_default().to_owned()
}

fn int(v: &Json, key: &'static str) -> Result<i64, Bad> {
    get(v, key).as_i64().ok_or(key)
}

fn uint(v: &Json, key: &'static str) -> Result<u64, Bad> {
    get(v, key).as_u64().ok_or(key)
}

fn uuid(v: &Json, key: &'static str) -> Result<Uuid, Bad> {
    get(v, key)
        .as_str()
        // `try_parse`, not `parse_str`: the latter builds a descriptive error (with `Debug` of
        // chars and string slicing) that we drop anyway, ~1.5 KB of wasm.
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or(key)
}

/// A server → visitor frame; `Unknown` for a type this client does not know.
pub fn read_frame(v: &Json) -> Result<ToVisitor, Bad> {
    Ok(match string(v, "type")?.as_str() {
        "welcome" => ToVisitor::Welcome {
            protocol_version: uint(v, "protocolVersion")? as u32,
            end_user_id: em_protocol::EndUserId(uuid(v, "endUserId")?),
            credential: string(v, "credential")?,
            conversation_id: uuid(v, "conversationId")
                .ok()
                .map(em_protocol::ConversationId),
        },
        "typing" => ToVisitor::Typing {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            sender: read_participant(get(v, "sender"))?,
            sender_display_name: opt_string(v, "senderDisplayName"),
            typing: get(v, "typing").as_bool().ok_or("typing")?,
        },
        "identityTokenExpired" => ToVisitor::IdentityTokenExpired {
            grace_seconds: uint(v, "graceSeconds").unwrap_or(0),
        },
        "conversation" => ToVisitor::Conversation {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            status: session_status(&string(v, "status")?).ok_or("status")?,
            last_seq: uint(v, "lastSeq")?,
            created: get(v, "created").as_bool().ok_or("created")?,
            replay_to: uint(v, "replayTo").ok(),
        },
        "entry" => ToVisitor::Entry {
            entry: read_entry(get(v, "entry"))?,
        },
        "history" => ToVisitor::History {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            entries: get(v, "entries")
                .as_array()
                .ok_or("entries")?
                .iter()
                .map(read_entry)
                .collect::<Result<_, _>>()?,
        },
        "ack" => ToVisitor::Ack {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            entry_id: em_protocol::EntryId(uuid(v, "entryId")?),
            seq: uint(v, "seq")?,
        },
        "error" => ToVisitor::Error(ErrorFrame {
            code: error_code(&string(v, "code")?),
            message: opt_string(v, "message"),
            entry_id: uuid(v, "entryId").ok().map(em_protocol::EntryId),
            retry_after_ms: uint(v, "retryAfterMs").ok(),
        }),
        "read" => ToVisitor::Read {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            seq: uint(v, "seq")?,
        },
        "pong" => ToVisitor::Pong,
        _ => ToVisitor::Unknown,
    })
}

/// A conversation entry; an unknown payload type reads as `EntryPayload::Unknown`.
pub fn read_entry(v: &Json) -> Result<ConversationEntry, Bad> {
    let sender = get(v, "sender");
    Ok(ConversationEntry {
        identifier: em_protocol::EntryId(uuid(v, "identifier")?),
        conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
        seq: uint(v, "seq")?,
        sender: read_participant(sender)?,
        sender_display_name: opt_string(v, "senderDisplayName"),
        transcripted_timestamp: int(v, "transcriptedTimestamp")?,
        client_timestamp: int(v, "clientTimestamp").ok(),
        entry_payload: read_payload(get(v, "entryPayload"))?,
    })
}

fn read_participant(v: &Json) -> Result<Participant, Bad> {
    Ok(Participant {
        role: role(&string(v, "role")?),
        subject: opt_string(v, "subject"),
    })
}

fn read_payload(v: &Json) -> Result<EntryPayload, Bad> {
    Ok(match string(v, "entryType")?.as_str() {
        "Message" => {
            let m = get(v, "abstractMessage");
            let abstract_message = match string(m, "messageType")?.as_str() {
                "StaticContentMessage" => {
                    let c = get(m, "staticContent");
                    AbstractMessage::StaticContentMessage {
                        id: em_protocol::EntryId(uuid(m, "id")?),
                        static_content: match string(c, "formatType")?.as_str() {
                            "Text" => StaticContent::Text {
                                text: string(c, "text")?,
                            },
                            _ => StaticContent::Unknown,
                        },
                    }
                }
                "ChoicesMessage" => {
                    let c = get(m, "choices");
                    let mut option_items = Vec::new();
                    for o in get(c, "optionItems").as_array().ok_or("optionItems")? {
                        let t = get(o, "titleItem");
                        option_items.push(OptionItem {
                            option_identifier: opt_string(o, "optionIdentifier"),
                            title_item: TitleItem {
                                item_type: opt_string(t, "itemType"),
                                title: string(t, "title")?,
                            },
                        });
                    }
                    AbstractMessage::ChoicesMessage {
                        id: em_protocol::EntryId(uuid(m, "id")?),
                        choices: Choices {
                            // Both render as buttons; only `Buttons` is told apart.
                            format_type: match opt_string(c, "formatType").as_str() {
                                "Buttons" => ChoicesFormat::Buttons,
                                "QuickReplies" => ChoicesFormat::QuickReplies,
                                _ => ChoicesFormat::Unknown,
                            },
                            text: opt_string(c, "text"),
                            option_items,
                        },
                    }
                }
                _ => AbstractMessage::Unknown,
            };
            EntryPayload::Message { abstract_message }
        }
        "ParticipantChanged" => {
            let list = get(v, "entries").as_array().ok_or("entries")?;
            let mut entries = Vec::new();
            for e in list {
                entries.push(ParticipantChange {
                    operation: match string(e, "operation")?.as_str() {
                        "add" => ParticipantOperation::Add,
                        "remove" => ParticipantOperation::Remove,
                        _ => return Err("operation"),
                    },
                    participant: read_participant(get(e, "participant"))?,
                    display_name: opt_string(e, "displayName"),
                });
            }
            EntryPayload::ParticipantChanged { entries }
        }
        "SessionStatusChanged" => EntryPayload::SessionStatusChanged {
            session_status: session_status(&string(v, "sessionStatus")?).ok_or("sessionStatus")?,
        },
        "RoutingResult" => EntryPayload::RoutingResult {
            routing_type: opt_string(v, "routingType"),
            failure_type: get(v, "failureType").as_str().map(str::to_owned),
            estimated_wait_time: v.get("estimatedWaitTime").and_then(|w| {
                Some(em_protocol::EstimatedWaitTime {
                    position: u32::try_from(w.get("position")?.as_u64()?).ok()?,
                    estimated_wait_time_in_seconds: w
                        .get("estimatedWaitTimeInSeconds")?
                        .as_u64()?,
                })
            }),
        },
        _ => EntryPayload::Unknown,
    })
}

/// The deployment config (`branding` fields default to empty).
pub fn read_config(v: &Json) -> Result<DeploymentConfig, Bad> {
    let b = get(v, "branding");
    Ok(DeploymentConfig {
        org_id: string(v, "orgId")?,
        deployment_name: string(v, "deploymentName")?,
        protocol_version: uint(v, "protocolVersion")? as u32,
        branding: Branding {
            title: opt_string(b, "title"),
            greeting: opt_string(b, "greeting"),
            agent_display_name: opt_string(b, "agentDisplayName"),
            button_color: opt_string(b, "buttonColor"),
            header_color: opt_string(b, "headerColor"),
            accent_color: opt_string(b, "accentColor"),
            font_family: opt_string(b, "fontFamily"),
            button_label: opt_string(b, "buttonLabel"),
            input_placeholder: opt_string(b, "inputPlaceholder"),
            language: opt_string(b, "language"),
        },
        auth: if opt_string(v, "auth") == "verified" {
            AuthMode::Verified
        } else {
            AuthMode::Anonymous
        },
        prechat_form: read_prechat(get(v, "prechatForm")),
        business_hours: read_hours(get(v, "businessHours")),
    })
}

/// `businessHours` (absent or unreadable → none: the button behaves as always open).
fn read_hours(h: &Json) -> Option<BusinessHoursStatus> {
    Some(BusinessHoursStatus {
        open: h.get("open")?.as_bool()?,
        next_change_at: get(h, "nextChangeAt").as_i64()?,
        outside_hours: if opt_string(h, "outsideHours") == "offline" {
            OutsideHours::Offline
        } else {
            OutsideHours::Hide
        },
    })
}

/// `prechatForm` (absent → none), with serde's defaults for missing keys.
fn read_prechat(v: &Json) -> Option<em_protocol::PrechatForm> {
    use em_protocol::{FieldKind, HiddenField, PrechatDisplay, PrechatField, PrechatForm};
    fn list<'a>(v: &'a Json, key: &str) -> &'a [Json] {
        get(v, key).as_array().unwrap_or_default()
    }
    if !matches!(v, Json::Obj(_)) {
        return None;
    }
    let max_length = |f: &Json| uint(f, "maxLength").unwrap_or(0) as u32;
    // Loops, not iterator chains: each `map(..).collect()` is its own generic code in the wasm.
    let mut form = PrechatForm::default();
    if opt_string(v, "display") == "Session" {
        form.display = PrechatDisplay::Session;
    }
    for f in list(v, "fields") {
        let mut choices = Vec::new();
        for c in list(f, "choices") {
            choices.push(opt_string_of(c));
        }
        form.fields.push(PrechatField {
            name: opt_string(f, "name"),
            label: opt_string(f, "label"),
            kind: match opt_string(f, "type").as_str() {
                "email" => FieldKind::Email,
                "choice" => FieldKind::Choice,
                _ => FieldKind::Text,
            },
            required: get(f, "required").as_bool().unwrap_or(false),
            max_length: max_length(f),
            choices,
        });
    }
    for f in list(v, "hiddenFields") {
        form.hidden_fields.push(HiddenField {
            name: opt_string(f, "name"),
            max_length: max_length(f),
        });
    }
    Some(form)
}

fn opt_string_of(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The code of a config error body `{ error: { code, message } }`.
pub fn read_config_error(v: &Json) -> Option<(ErrorCode, String)> {
    let e = get(v, "error");
    Some((
        error_code(get(e, "code").as_str()?),
        opt_string(e, "message"),
    ))
}

/// The stored record (anything unreadable → `None`).
pub fn read_persisted(v: &Json) -> Option<Persisted> {
    let id = |k: &'static str| uuid(v, k).ok();
    Some(Persisted {
        v: uint(v, "v").ok()? as u32,
        end_user_id: id("endUserId").map(em_protocol::EndUserId),
        credential: get(v, "credential").as_str().map(str::to_owned),
        conversation_id: id("conversationId").map(em_protocol::ConversationId),
        last_seq: uint(v, "lastSeq").unwrap_or(0),
        // Records written before `readSeq` existed: everything stored counts as read.
        read_seq: uint(v, "readSeq")
            .or_else(|_| uint(v, "lastSeq"))
            .unwrap_or(0),
        window: match opt_string(v, "window").as_str() {
            "maximized" => WindowState::Maximized,
            "minimized" => WindowState::Minimized,
            _ => WindowState::Closed,
        },
    })
}

// ---- writing ----

/// A UUID as its lowercase hyphenated string (no `fmt` machinery).
pub fn id_string(id: &Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// A visitor → server frame as JSON text.
pub fn write_frame(frame: &ToServer) -> String {
    let id = |u: &Uuid| id_string(u);
    match frame {
        ToServer::Hello {
            protocol_version,
            credential,
            identity_token,
        } => Obj::new()
            .str("type", "hello")
            .int("protocolVersion", i64::from(*protocol_version))
            .some_str("credential", credential.as_deref())
            .some_str("identityToken", identity_token.as_deref())
            .end(),
        ToServer::Identify { identity_token } => Obj::new()
            .str("type", "identify")
            .str("identityToken", identity_token)
            .end(),
        ToServer::EndConversation { conversation_id } => Obj::new()
            .str("type", "endConversation")
            .str("conversationId", &id(&conversation_id.0))
            .end(),
        ToServer::Typing {
            conversation_id,
            typing,
        } => Obj::new()
            .str("type", "typing")
            .str("conversationId", &id(&conversation_id.0))
            .bool("typing", *typing)
            .end(),
        ToServer::CreateConversation { conversation_id } => Obj::new()
            .str("type", "createConversation")
            .str("conversationId", &id(&conversation_id.0))
            .end(),
        ToServer::Resume {
            conversation_id,
            after_seq,
        } => Obj::new()
            .str("type", "resume")
            .str("conversationId", &id(&conversation_id.0))
            .int("afterSeq", *after_seq as i64)
            .end(),
        ToServer::History {
            conversation_id,
            before_seq,
        } => Obj::new()
            .str("type", "history")
            .str("conversationId", &id(&conversation_id.0))
            .int("beforeSeq", *before_seq as i64)
            .end(),
        ToServer::SendMessage {
            conversation_id,
            entry_id,
            text,
            client_timestamp,
        } => Obj::new()
            .str("type", "sendMessage")
            .str("conversationId", &id(&conversation_id.0))
            .str("entryId", &id(&entry_id.0))
            .str("text", text)
            .int("clientTimestamp", *client_timestamp)
            .end(),
        // The widget writes its context with `write_context` (no maps to build).
        ToServer::SetContext { .. } => Obj::new().str("type", "ping").end(),
        ToServer::Ping | ToServer::Unknown => Obj::new().str("type", "ping").end(),
    }
}

/// The `setContext` frame for `conversation_id`, straight from the widget's context pairs
/// (empty parts left out, as serde's `skip_serializing_if` does).
pub fn write_context(conversation_id: em_protocol::ConversationId, c: &Context) -> String {
    let mut o = Obj::new()
        .str("type", "setContext")
        .str("conversationId", &id_string(&conversation_id.0));
    for (key, pairs) in [
        ("prechatFields", &c.prechat),
        ("hiddenFields", &c.hidden),
        ("sessionContext", &c.session),
        ("autoResponseParameters", &c.auto_response),
    ] {
        if !pairs.is_empty() {
            let mut m = Obj::new();
            for (k, v) in pairs {
                m = m.str(k, v);
            }
            o = o.raw(key, &m.end());
        }
    }
    if let Some(p) = &c.page {
        let mut po = Obj::new().str("url", &p.url);
        if !p.title.is_empty() {
            po = po.str("title", &p.title);
        }
        o = o.raw("page", &po.end());
    }
    o.end()
}

/// An entry payload as JSON text (the events' `entryPayload` string).
pub fn write_payload(p: &EntryPayload) -> String {
    let o = Obj::new().str("entryType", p.entry_type());
    match p {
        EntryPayload::Message { abstract_message } => {
            let m = match abstract_message {
                AbstractMessage::StaticContentMessage { id, static_content } => {
                    let content = match static_content {
                        StaticContent::Text { text } => {
                            Obj::new().str("formatType", "Text").str("text", text)
                        }
                        StaticContent::Unknown => Obj::new().str("formatType", "Unknown"),
                    };
                    Obj::new()
                        .str("messageType", "StaticContentMessage")
                        .str("id", &id_string(&id.0))
                        .raw("staticContent", &content.end())
                }
                // Events carry only the visitor's own (text) messages, so never written.
                AbstractMessage::ChoicesMessage { .. } | AbstractMessage::Unknown => {
                    Obj::new().str("messageType", "Unknown")
                }
            };
            o.raw("abstractMessage", &m.end())
        }
        EntryPayload::ParticipantChanged { entries } => {
            let mut list = String::from("[");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                list.push_str(
                    &Obj::new()
                        .str(
                            "operation",
                            if e.operation == ParticipantOperation::Add {
                                "add"
                            } else {
                                "remove"
                            },
                        )
                        .raw("participant", &write_participant(&e.participant))
                        .str("displayName", &e.display_name)
                        .end(),
                );
            }
            list.push(']');
            o.raw("entries", &list)
        }
        EntryPayload::SessionStatusChanged { session_status } => {
            o.str("sessionStatus", session_status_str(*session_status))
        }
        EntryPayload::RoutingResult {
            routing_type,
            failure_type,
            ..
        } => {
            let o = o.str("routingType", routing_type);
            match failure_type {
                Some(f) => o.str("failureType", f),
                None => o,
            }
        }
        EntryPayload::Unknown => o,
    }
    .end()
}

/// `{"role", "subject"}`.
pub fn write_participant(p: &Participant) -> String {
    Obj::new()
        .str("role", crate::state::role_str(p.role))
        .str("subject", &p.subject)
        .end()
}

/// The stored record as JSON text.
pub fn write_persisted(p: &Persisted) -> String {
    let opt_id = |v: Option<Uuid>| v.map(|u| id_string(&u));
    Obj::new()
        .int("v", i64::from(p.v))
        .opt_str("endUserId", opt_id(p.end_user_id.map(|u| u.0)).as_deref())
        .opt_str("credential", p.credential.as_deref())
        .opt_str(
            "conversationId",
            opt_id(p.conversation_id.map(|u| u.0)).as_deref(),
        )
        .int("lastSeq", p.last_seq as i64)
        .int("readSeq", p.read_seq as i64)
        .str(
            "window",
            match p.window {
                WindowState::Closed => "closed",
                WindowState::Maximized => "maximized",
                WindowState::Minimized => "minimized",
            },
        )
        .end()
}

/// A JSON string literal of `s`.
pub fn quoted(s: &str) -> String {
    let mut out = String::new();
    quote(&mut out, s);
    out
}

// ---- enums ----

fn role(v: &str) -> Role {
    match v {
        "EndUser" => Role::EndUser,
        "Agent" => Role::Agent,
        "Chatbot" => Role::Chatbot,
        "System" => Role::System,
        _ => Role::Unknown,
    }
}

fn session_status(v: &str) -> Option<SessionStatus> {
    Some(match v {
        "New" => SessionStatus::New,
        "Waiting" => SessionStatus::Waiting,
        "Active" => SessionStatus::Active,
        "Inactive" => SessionStatus::Inactive,
        "Ended" => SessionStatus::Ended,
        _ => return None,
    })
}

fn session_status_str(v: SessionStatus) -> &'static str {
    match v {
        SessionStatus::New => "New",
        SessionStatus::Waiting => "Waiting",
        SessionStatus::Active => "Active",
        SessionStatus::Inactive => "Inactive",
        SessionStatus::Ended => "Ended",
    }
}

fn error_code(v: &str) -> ErrorCode {
    match v {
        "bad_frame" => ErrorCode::BadFrame,
        "unsupported_version" => ErrorCode::UnsupportedVersion,
        "handshake_required" => ErrorCode::HandshakeRequired,
        "unauthorized" => ErrorCode::Unauthorized,
        "unknown_deployment" => ErrorCode::UnknownDeployment,
        "origin_not_allowed" => ErrorCode::OriginNotAllowed,
        "not_found" => ErrorCode::NotFound,
        "conflict" => ErrorCode::Conflict,
        "invalid_message" => ErrorCode::InvalidMessage,
        "conversation_ended" => ErrorCode::ConversationEnded,
        "internal" => ErrorCode::Internal,
        "deployment_unpublished" => ErrorCode::DeploymentUnpublished,
        "identity_required" => ErrorCode::IdentityRequired,
        "identity_invalid" => ErrorCode::IdentityInvalid,
        "identity_expired" => ErrorCode::IdentityExpired,
        "invalid_field" => ErrorCode::InvalidField,
        "rate_limited" => ErrorCode::RateLimited,
        _ => ErrorCode::Unknown,
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
