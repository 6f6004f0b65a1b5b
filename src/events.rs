//! Window `CustomEvent`s: the `onEmbeddedMessaging*` names and their `detail` shapes.
//!
//! Each `detail` is a small `Serialize` struct written once through serde-wasm-bindgen's
//! JSON-compatible serializer (plain objects, `null` for `None`), in the shapes of API.md.

use em_protocol::{ConversationEntry, PrechatDisplay};
use serde::Serialize;
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use crate::state::{Event, role_str};
use crate::wire;

/// The event name of each `Event`.
pub fn name(event: &Event) -> &'static str {
    match event {
        Event::ButtonClicked => "onEmbeddedMessagingButtonClicked",
        Event::WindowMaximized => "onEmbeddedMessagingWindowMaximized",
        Event::WindowMinimized => "onEmbeddedMessagingWindowMinimized",
        Event::WindowClosed => "onEmbeddedMessagingWindowClosed",
        Event::InitSuccess => "onEmbeddedMessagingInitSuccess",
        Event::ConversationStarted(_) => "onEmbeddedMessagingConversationStarted",
        Event::ConversationOpened => "onEmbeddedMessagingConversationOpened",
        Event::MessageSent(_) => "onEmbeddedMessageSent",
        Event::ParticipantChanged(_) => "onEmbeddedMessagingConversationParticipantChanged",
        Event::SessionStatusUpdate(_) => "onEmbeddedMessagingSessionStatusUpdate",
        Event::ConversationClosed(_) => "onEmbeddedMessagingConversationClosed",
        Event::ConversationRouted(_) => "onEmbeddedMessagingConversationRouted",
        Event::FirstBotMessageSent => "onEmbeddedMessagingFirstBotMessageSent",
        Event::UnreadCountChanged(_) => "onEmbeddedMessagingUnreadCountChanged",
        Event::PrechatLoaded(_) => "onEmbeddedMessagingPreChatLoaded",
        Event::PrechatSubmitted(_) => "onEmbeddedMessagingPreChatSubmitted",
        Event::Ready => "onEmbeddedMessagingReady",
        Event::MessageDelivered(_) => "onEmbeddedMessageDelivered",
        Event::MessageRead(_) => "onEmbeddedMessageRead",
        Event::LinkClicked(..) => "onEmbeddedMessageLinkClicked",
        Event::IdentityTokenExpired => "onEmbeddedMessagingIdentityTokenExpired",
        Event::BusinessHoursStarted => "onEmbeddedMessagingBusinessHoursStarted",
        Event::BusinessHoursEnded => "onEmbeddedMessagingBusinessHoursEnded",
    }
}

/// API.md's `conversationEntry`; `entryPayload` is itself a JSON *string*.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationEntryDetail<'a> {
    pub identifier: String,
    pub entry_type: &'static str,
    pub entry_payload: String,
    pub sender: SenderDetail<'a>,
    pub sender_display_name: &'a str,
    /// Milliseconds as JS numbers (`f64`, exact below 2^53): serializing an `i64` adds
    /// serde-wasm-bindgen's out-of-range error, built with `format!`.
    pub transcripted_timestamp: f64,
    pub client_timestamp: Option<f64>,
}

#[derive(Serialize)]
pub struct SenderDetail<'a> {
    pub role: &'static str,
    pub subject: &'a str,
}

impl<'a> ConversationEntryDetail<'a> {
    pub fn new(e: &'a ConversationEntry) -> Self {
        ConversationEntryDetail {
            identifier: wire::id_string(&e.identifier.0),
            entry_type: e.entry_type(),
            entry_payload: wire::write_payload(&e.entry_payload),
            sender: SenderDetail {
                role: role_str(e.sender.role),
                subject: &e.sender.subject,
            },
            sender_display_name: &e.sender_display_name,
            transcripted_timestamp: e.transcripted_timestamp as f64,
            client_timestamp: e.client_timestamp.map(|t| t as f64),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryDetail<'a> {
    conversation_entry: ConversationEntryDetail<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartedDetail {
    conversation_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UnreadDetail {
    unread_count: u32,
}

/// `onEmbeddedMessagingButtonCreated`: `{ buttonVisibility: "Show" | "Hide" }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonCreatedDetail {
    pub button_visibility: &'static str,
}

/// `onEmbeddedMessagingInitError`: `{ code, message }`.
#[derive(Serialize)]
pub struct InitErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// A `detail` struct → a plain JS object.
pub fn to_js<T: Serialize>(detail: &T) -> JsValue {
    detail
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or_else(|_| js_sys::Object::new().into())
}

/// The `detail` of each `Event` (`{}` unless API.md says otherwise).
pub fn detail(event: &Event) -> JsValue {
    match event {
        Event::ConversationStarted(id) => to_js(&StartedDetail {
            conversation_id: wire::id_string(&id.0),
        }),
        Event::MessageSent(e)
        | Event::MessageDelivered(e)
        | Event::MessageRead(e)
        | Event::ParticipantChanged(e)
        | Event::SessionStatusUpdate(e)
        | Event::ConversationClosed(e)
        | Event::ConversationRouted(e) => to_js(&EntryDetail {
            conversation_entry: ConversationEntryDetail::new(e),
        }),
        Event::UnreadCountChanged(n) => to_js(&UnreadDetail { unread_count: *n }),
        Event::LinkClicked(e, link) => {
            let detail = to_js(&EntryDetail {
                conversation_entry: ConversationEntryDetail::new(e),
            });
            let _ = js_sys::Reflect::set(
                &detail,
                &JsValue::from_str("link"),
                &JsValue::from_str(link),
            );
            detail
        }
        Event::PrechatLoaded(display) | Event::PrechatSubmitted(display) => {
            // Set directly: one more serde detail struct costs more wasm than this.
            let detail = js_sys::Object::new();
            let display = match display {
                PrechatDisplay::Conversation => "Conversation",
                PrechatDisplay::Session => "Session",
            };
            let key = JsValue::from_str("prechatDisplay");
            let _ = js_sys::Reflect::set(&detail, &key, &JsValue::from_str(display));
            detail.into()
        }
        _ => js_sys::Object::new().into(),
    }
}

/// Dispatch one `Event` on `window`.
pub fn emit(event: &Event) {
    dispatch(name(event), &detail(event));
}

/// Dispatch `CustomEvent(name, { detail })` on `window`.
pub fn dispatch(name: &str, detail: &JsValue) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let init = CustomEventInit::new();
    init.set_detail(detail);
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = window.dispatch_event(&event);
    }
}
