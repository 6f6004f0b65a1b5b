//! JS values ↔ protocol types, by hand (`Reflect`), at the socket, storage and config edges.
//!
//! Why not serde-wasm-bindgen: deriving through serde (internally tagged enums buffer into
//! `Content`) tripled the wasm (305 KB → see README budget); these readers are the same
//! contract in a fraction of the bytes. `tests/web.rs` checks them against `serde_json`
//! for every frame, so they cannot drift from the protocol crate.

use em_protocol::visitor::{ToServer, ToVisitor};
use em_protocol::{
    AbstractMessage, Branding, ConversationEntry, DeploymentConfig, EntryPayload, ErrorCode, ErrorFrame,
    Participant, ParticipantChange, ParticipantOperation, Role, SessionStatus, StaticContent,
};
use js_sys::{Array, Object, Reflect, JSON};
use uuid::Uuid;
use wasm_bindgen::JsValue;

use crate::state::{Persisted, WindowState};

/// Why a value could not be read (names the field).
pub type Bad = &'static str;

// ---- reading ----

fn get(v: &JsValue, key: &str) -> JsValue {
    if !v.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn string(v: &JsValue, key: &'static str) -> Result<String, Bad> {
    get(v, key).as_string().ok_or(key)
}

fn opt_string(v: &JsValue, key: &str) -> String {
    get(v, key).as_string().unwrap_or_default()
}

fn int(v: &JsValue, key: &'static str) -> Result<i64, Bad> {
    match get(v, key).as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 => Ok(n as i64),
        _ => Err(key),
    }
}

fn uint(v: &JsValue, key: &'static str) -> Result<u64, Bad> {
    int(v, key).and_then(|n| u64::try_from(n).map_err(|_| key))
}

fn uuid(v: &JsValue, key: &'static str) -> Result<Uuid, Bad> {
    get(v, key).as_string().and_then(|s| Uuid::parse_str(&s).ok()).ok_or(key)
}

/// A server → visitor frame; `Unknown` for a type this client does not know.
pub fn read_frame(v: &JsValue) -> Result<ToVisitor, Bad> {
    Ok(match string(v, "type")?.as_str() {
        "welcome" => ToVisitor::Welcome {
            protocol_version: uint(v, "protocolVersion")? as u32,
            end_user_id: em_protocol::EndUserId(uuid(v, "endUserId")?),
            credential: string(v, "credential")?,
        },
        "conversation" => ToVisitor::Conversation {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            status: session_status(&string(v, "status")?).ok_or("status")?,
            last_seq: uint(v, "lastSeq")?,
            created: get(v, "created").as_bool().ok_or("created")?,
        },
        "entry" => ToVisitor::Entry { entry: read_entry(&get(v, "entry"))? },
        "ack" => ToVisitor::Ack {
            conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
            entry_id: em_protocol::EntryId(uuid(v, "entryId")?),
            seq: uint(v, "seq")?,
        },
        "error" => ToVisitor::Error(ErrorFrame {
            code: error_code(&string(v, "code")?),
            message: opt_string(v, "message"),
            entry_id: uuid(v, "entryId").ok().map(em_protocol::EntryId),
        }),
        "pong" => ToVisitor::Pong,
        _ => ToVisitor::Unknown,
    })
}

/// A conversation entry; an unknown payload type reads as `EntryPayload::Unknown`.
pub fn read_entry(v: &JsValue) -> Result<ConversationEntry, Bad> {
    let sender = get(v, "sender");
    Ok(ConversationEntry {
        identifier: em_protocol::EntryId(uuid(v, "identifier")?),
        conversation_id: em_protocol::ConversationId(uuid(v, "conversationId")?),
        seq: uint(v, "seq")?,
        sender: read_participant(&sender)?,
        sender_display_name: opt_string(v, "senderDisplayName"),
        transcripted_timestamp: int(v, "transcriptedTimestamp")?,
        client_timestamp: int(v, "clientTimestamp").ok(),
        entry_payload: read_payload(&get(v, "entryPayload"))?,
    })
}

fn read_participant(v: &JsValue) -> Result<Participant, Bad> {
    Ok(Participant { role: role(&string(v, "role")?), subject: opt_string(v, "subject") })
}

fn read_payload(v: &JsValue) -> Result<EntryPayload, Bad> {
    Ok(match string(v, "entryType")?.as_str() {
        "Message" => {
            let m = get(v, "abstractMessage");
            let abstract_message = match string(&m, "messageType")?.as_str() {
                "StaticContentMessage" => {
                    let c = get(&m, "staticContent");
                    AbstractMessage::StaticContentMessage {
                        id: em_protocol::EntryId(uuid(&m, "id")?),
                        static_content: match string(&c, "formatType")?.as_str() {
                            "Text" => StaticContent::Text { text: string(&c, "text")? },
                            _ => StaticContent::Unknown,
                        },
                    }
                }
                _ => AbstractMessage::Unknown,
            };
            EntryPayload::Message { abstract_message }
        }
        "ParticipantChanged" => {
            let list = get(v, "entries");
            let list: Array = if Array::is_array(&list) { list.into() } else { return Err("entries") };
            let mut entries = Vec::new();
            for e in list.iter() {
                entries.push(ParticipantChange {
                    operation: match string(&e, "operation")?.as_str() {
                        "add" => ParticipantOperation::Add,
                        "remove" => ParticipantOperation::Remove,
                        _ => return Err("operation"),
                    },
                    participant: read_participant(&get(&e, "participant"))?,
                    display_name: opt_string(&e, "displayName"),
                });
            }
            EntryPayload::ParticipantChanged { entries }
        }
        "SessionStatusChanged" => EntryPayload::SessionStatusChanged {
            session_status: session_status(&string(v, "sessionStatus")?).ok_or("sessionStatus")?,
        },
        "RoutingResult" => EntryPayload::RoutingResult {
            routing_type: opt_string(v, "routingType"),
            failure_type: get(v, "failureType").as_string(),
        },
        _ => EntryPayload::Unknown,
    })
}

/// The deployment config (`branding` fields default to empty).
pub fn read_config(v: &JsValue) -> Result<DeploymentConfig, Bad> {
    let b = get(v, "branding");
    Ok(DeploymentConfig {
        org_id: string(v, "orgId")?,
        deployment_name: string(v, "deploymentName")?,
        protocol_version: uint(v, "protocolVersion")? as u32,
        branding: Branding {
            title: opt_string(&b, "title"),
            greeting: opt_string(&b, "greeting"),
            agent_display_name: opt_string(&b, "agentDisplayName"),
            button_color: opt_string(&b, "buttonColor"),
            header_color: opt_string(&b, "headerColor"),
            accent_color: opt_string(&b, "accentColor"),
            font_family: opt_string(&b, "fontFamily"),
            button_label: opt_string(&b, "buttonLabel"),
            input_placeholder: opt_string(&b, "inputPlaceholder"),
        },
    })
}

/// The code of a config error body `{ error: { code, message } }`.
pub fn read_config_error(v: &JsValue) -> Option<(ErrorCode, String)> {
    let e = get(v, "error");
    Some((error_code(&e_string(&e, "code")?), opt_string(&e, "message")))
}

fn e_string(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

/// The stored record (anything unreadable → `None`).
pub fn read_persisted(v: &JsValue) -> Option<Persisted> {
    let id = |k: &'static str| uuid(v, k).ok();
    Some(Persisted {
        v: uint(v, "v").ok()? as u32,
        end_user_id: id("endUserId").map(em_protocol::EndUserId),
        credential: get(v, "credential").as_string(),
        conversation_id: id("conversationId").map(em_protocol::ConversationId),
        last_seq: uint(v, "lastSeq").unwrap_or(0),
        window: match opt_string(v, "window").as_str() {
            "maximized" => WindowState::Maximized,
            "minimized" => WindowState::Minimized,
            _ => WindowState::Closed,
        },
    })
}

// ---- writing ----

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn n(v: impl Into<f64>) -> JsValue {
    JsValue::from_f64(v.into())
}

/// A UUID as its lowercase hyphenated string (no `fmt` machinery).
pub fn id_string(id: &Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

fn id(v: &Uuid) -> JsValue {
    s(&id_string(v))
}

/// A visitor → server frame as a JS object.
pub fn write_frame(frame: &ToServer) -> JsValue {
    match frame {
        ToServer::Hello { protocol_version, credential } => {
            let mut pairs = vec![("type", s("hello")), ("protocolVersion", n(*protocol_version))];
            if let Some(c) = credential {
                pairs.push(("credential", s(c)));
            }
            obj(&pairs)
        }
        ToServer::CreateConversation { conversation_id } => {
            obj(&[("type", s("createConversation")), ("conversationId", id(&conversation_id.0))])
        }
        ToServer::Resume { conversation_id, after_seq } => obj(&[
            ("type", s("resume")),
            ("conversationId", id(&conversation_id.0)),
            ("afterSeq", n(*after_seq as f64)),
        ]),
        ToServer::SendMessage { conversation_id, entry_id, text, client_timestamp } => obj(&[
            ("type", s("sendMessage")),
            ("conversationId", id(&conversation_id.0)),
            ("entryId", id(&entry_id.0)),
            ("text", s(text)),
            ("clientTimestamp", n(*client_timestamp as f64)),
        ]),
        ToServer::Ping | ToServer::Unknown => obj(&[("type", s("ping"))]),
    }
}

/// An entry payload as a JS object (its JSON string is the events' `entryPayload`).
pub fn write_payload(p: &EntryPayload) -> JsValue {
    match p {
        EntryPayload::Message { abstract_message } => {
            let m = match abstract_message {
                AbstractMessage::StaticContentMessage { id: mid, static_content } => {
                    let content = match static_content {
                        StaticContent::Text { text } => obj(&[("formatType", s("Text")), ("text", s(text))]),
                        StaticContent::Unknown => obj(&[("formatType", s("Unknown"))]),
                    };
                    obj(&[
                        ("messageType", s("StaticContentMessage")),
                        ("id", id(&mid.0)),
                        ("staticContent", content),
                    ])
                }
                AbstractMessage::Unknown => obj(&[("messageType", s("Unknown"))]),
            };
            obj(&[("entryType", s("Message")), ("abstractMessage", m)])
        }
        EntryPayload::ParticipantChanged { entries } => {
            let list: Array = entries
                .iter()
                .map(|e| {
                    obj(&[
                        ("operation", s(if e.operation == ParticipantOperation::Add { "add" } else { "remove" })),
                        ("participant", write_participant(&e.participant)),
                        ("displayName", s(&e.display_name)),
                    ])
                })
                .collect();
            obj(&[("entryType", s("ParticipantChanged")), ("entries", list.into())])
        }
        EntryPayload::SessionStatusChanged { session_status } => obj(&[
            ("entryType", s("SessionStatusChanged")),
            ("sessionStatus", s(session_status_str(*session_status))),
        ]),
        EntryPayload::RoutingResult { routing_type, failure_type } => {
            let mut pairs = vec![("entryType", s("RoutingResult")), ("routingType", s(routing_type))];
            if let Some(f) = failure_type {
                pairs.push(("failureType", s(f)));
            }
            obj(&pairs)
        }
        EntryPayload::Unknown => obj(&[("entryType", s("Unknown"))]),
    }
}

fn write_participant(p: &Participant) -> JsValue {
    obj(&[("role", s(crate::state::role_str(p.role))), ("subject", s(&p.subject))])
}

/// The stored record as a JS object.
pub fn write_persisted(p: &Persisted) -> JsValue {
    let opt_id = |v: Option<Uuid>| v.map_or(JsValue::NULL, |u| id(&u));
    obj(&[
        ("v", n(p.v)),
        ("endUserId", opt_id(p.end_user_id.map(|u| u.0))),
        ("credential", p.credential.as_deref().map_or(JsValue::NULL, s)),
        ("conversationId", opt_id(p.conversation_id.map(|u| u.0))),
        ("lastSeq", n(p.last_seq as f64)),
        (
            "window",
            s(match p.window {
                WindowState::Closed => "closed",
                WindowState::Maximized => "maximized",
                WindowState::Minimized => "minimized",
            }),
        ),
    ])
}

/// `JSON.stringify(value)` (empty on failure).
pub fn stringify(value: &JsValue) -> String {
    JSON::stringify(value).ok().and_then(|s| s.as_string()).unwrap_or_default()
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
        _ => ErrorCode::Unknown,
    }
}
