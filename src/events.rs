//! Window `CustomEvent`s: the `onEmbeddedMessaging*` names and their `detail` shapes.

use em_protocol::ConversationEntry;
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use crate::json::Obj;
use crate::state::Event;
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
    }
}

/// The `detail` of each `Event` as JSON text (`{}` unless API.md says otherwise).
pub fn detail_json(event: &Event) -> String {
    match event {
        Event::ConversationStarted(id) => Obj::new()
            .str("conversationId", &wire::id_string(&id.0))
            .end(),
        Event::MessageSent(e)
        | Event::ParticipantChanged(e)
        | Event::SessionStatusUpdate(e)
        | Event::ConversationClosed(e)
        | Event::ConversationRouted(e) => Obj::new()
            .raw("conversationEntry", &conversation_entry(e))
            .end(),
        Event::UnreadCountChanged(n) => Obj::new().int("unreadCount", i64::from(*n)).end(),
        _ => "{}".into(),
    }
}

/// The `detail` of each `Event` as a JS object.
pub fn detail(event: &Event) -> JsValue {
    js_sys::JSON::parse(&detail_json(event)).unwrap_or_else(|_| js_sys::Object::new().into())
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

/// `{ key: "value", ... }` from string pairs, as a JS object.
pub fn object(pairs: &[(&str, &str)]) -> JsValue {
    let mut o = Obj::new();
    for (k, v) in pairs {
        o = o.str(k, v);
    }
    js_sys::JSON::parse(&o.end()).unwrap_or_else(|_| js_sys::Object::new().into())
}

/// The API.md `conversationEntry` as JSON text; `entryPayload` is itself a JSON *string*.
pub fn conversation_entry(e: &ConversationEntry) -> String {
    let o = Obj::new()
        .str("identifier", &wire::id_string(&e.identifier.0))
        .str("entryType", e.entry_type())
        .str("entryPayload", &wire::write_payload(&e.entry_payload))
        .raw("sender", &wire::write_participant(&e.sender))
        .str("senderDisplayName", &e.sender_display_name)
        .int("transcriptedTimestamp", e.transcripted_timestamp);
    match e.client_timestamp {
        Some(t) => o.int("clientTimestamp", t),
        None => o.raw("clientTimestamp", "null"),
    }
    .end()
}
