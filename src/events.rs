//! Window `CustomEvent`s: the `onEmbeddedMessaging*` names and their `detail` shapes.

use em_protocol::ConversationEntry;
use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use crate::state::{role_str, Event};
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

/// The `detail` of each `Event` (`{}` unless API.md says otherwise).
pub fn detail(event: &Event) -> JsValue {
    let obj = Object::new();
    match event {
        Event::ConversationStarted(id) => set(&obj, "conversationId", &JsValue::from_str(&wire::id_string(&id.0))),
        Event::MessageSent(e)
        | Event::ParticipantChanged(e)
        | Event::SessionStatusUpdate(e)
        | Event::ConversationClosed(e)
        | Event::ConversationRouted(e) => set(&obj, "conversationEntry", &conversation_entry(e)),
        Event::UnreadCountChanged(n) => set(&obj, "unreadCount", &JsValue::from_f64(f64::from(*n))),
        _ => {}
    }
    obj.into()
}

/// Dispatch one `Event` on `window`.
pub fn emit(event: &Event) {
    dispatch(name(event), &detail(event));
}

/// Dispatch `CustomEvent(name, { detail })` on `window`.
pub fn dispatch(name: &str, detail: &JsValue) {
    let Some(window) = web_sys::window() else { return };
    let init = CustomEventInit::new();
    init.set_detail(detail);
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = window.dispatch_event(&event);
    }
}

/// `{ key: value, ... }` from string pairs.
pub fn object(pairs: &[(&str, &str)]) -> JsValue {
    let obj = Object::new();
    for (k, v) in pairs {
        set(&obj, k, &JsValue::from_str(v));
    }
    obj.into()
}

/// The API.md `conversationEntry`: `entryPayload` is a JSON *string*.
pub fn conversation_entry(e: &ConversationEntry) -> JsValue {
    let obj = Object::new();
    set(&obj, "identifier", &JsValue::from_str(&wire::id_string(&e.identifier.0)));
    set(&obj, "entryType", &JsValue::from_str(e.entry_type()));
    set(&obj, "entryPayload", &JsValue::from_str(&wire::stringify(&wire::write_payload(&e.entry_payload))));
    let sender = object(&[("role", role_str(e.sender.role)), ("subject", &e.sender.subject)]);
    set(&obj, "sender", &sender);
    set(&obj, "senderDisplayName", &JsValue::from_str(&e.sender_display_name));
    set(&obj, "transcriptedTimestamp", &JsValue::from_f64(e.transcripted_timestamp as f64));
    let client = e.client_timestamp.map_or(JsValue::NULL, |t| JsValue::from_f64(t as f64));
    set(&obj, "clientTimestamp", &client);
    obj.into()
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}
