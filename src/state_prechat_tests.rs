//! Native tests of the pre-chat form and `prechatAPI`: every refusal, and the form's gate.
//!
//! The gate on a new conversation: shown, submitted, sent before the first message, per session.

use super::prechat::{field_error, has_script, is_email};
use super::tests::{C, cid, conversation, send, sent_frames, welcome};
use super::*;
use crate::json::Json;
use em_protocol::{FieldKind, HiddenField, PrechatDisplay, PrechatField, PrechatForm};

/// The demo deployment `Demo_Prechat`'s form.
fn demo_form(display: PrechatDisplay) -> PrechatForm {
    let field = |name: &str, kind, required, max_length, choices: &[&str]| PrechatField {
        name: name.into(),
        label: name.into(),
        kind,
        required,
        max_length,
        choices: choices.iter().map(|c| c.to_string()).collect(),
    };
    PrechatForm {
        display,
        fields: vec![
            field("_firstName", FieldKind::Text, true, 40, &[]),
            field("_email", FieldKind::Email, true, 80, &[]),
            field(
                "Topic",
                FieldKind::Choice,
                false,
                255,
                &["Billing", "Orders", "Other"],
            ),
        ],
        hidden_fields: vec![
            HiddenField {
                name: "Plan".into(),
                max_length: 20,
            },
            HiddenField {
                name: "CustomerId".into(),
                max_length: 40,
            },
        ],
    }
}

/// A new visitor on a deployment with the demo form.
fn new_visitor(display: PrechatDisplay) -> State {
    let mut s = State::new(Persisted::default(), "Agent");
    s.prechat = Prechat::new(demo_form(display), None).0;
    s.update(Msg::Booted);
    s
}

fn submit(values: &[&str]) -> Msg {
    Msg::PrechatSubmitted {
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

const GOOD: [&str; 3] = ["Ada", "ada@example.com", "Billing"];

fn emitted(fx: &[Effect]) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

/// A `prechatAPI` call as the loader makes it: the method's index and `JSON.stringify(arg)`.
fn call(p: &Prechat, method: &str, json: &str) -> (Option<Msg>, Vec<String>) {
    let op = PRECHAT_API.iter().position(|m| *m == method).unwrap();
    p.call(op, &Json::parse(json).unwrap_or(Json::Null))
}

fn hidden(set: &[(&str, &str)], remove: &[&str]) -> Option<Msg> {
    Some(Msg::ContextChanged {
        kind: ContextKind::Hidden,
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
    })
}

#[test]
fn hidden_fields_are_checked_one_by_one_and_bad_ones_skipped() {
    let p = Prechat::new(demo_form(PrechatDisplay::Conversation), None).0;
    let set = "setHiddenPrechatFields";
    let (msg, bad) = call(
        &p,
        set,
        r#"{"Plan":"Gold","Plan2":"x","CustomerId":"c-42"}"#,
    );
    assert_eq!(
        msg,
        hidden(&[("Plan", "Gold"), ("CustomerId", "c-42")], &[])
    );
    assert_eq!(
        bad,
        vec![
            "prechatAPI.setHiddenPrechatFields: field \"Plan2\" is not a hidden pre-chat field of this deployment (it has: Plan, CustomerId); fix the name or add the field to the deployment. The field was skipped."
        ]
    );
    let refused = |json: &str| {
        let (msg, bad) = call(&p, set, json);
        assert_eq!(msg, hidden(&[], &[]), "nothing set for {json}");
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].starts_with("prechatAPI.setHiddenPrechatFields: field \""));
        assert!(bad[0].ends_with(". The field was skipped."));
        bad[0].clone()
    };
    assert!(
        refused(r#"{"Plan":"twenty-one characters"}"#)
            .contains("\"Plan\" is longer than its maxLength of 20 characters; shorten it")
    );
    assert!(
        refused(r#"{"Plan":" JavaScript\t:x()"}"#).contains(
            "\"Plan\" contains a script (a javascript: URL or <script>); pass plain text"
        )
    );
    assert!(refused(r#"{"CustomerId":"<SCRIPT>x</script>"}"#).contains("contains a script"));
    assert!(refused(r#"{"Plan":20}"#).contains("\"Plan\" is not a string; pass text"));
    // Removing: names only; anything else is refused as a whole.
    assert_eq!(
        call(&p, "removeHiddenPrechatFields", r#"["Plan",3]"#),
        (hidden(&[], &["Plan"]), vec![])
    );
    let (msg, bad) = call(&p, "removeHiddenPrechatFields", r#"{"Plan":"x"}"#);
    assert_eq!(msg, None);
    assert_eq!(
        bad,
        vec![
            "prechatAPI.removeHiddenPrechatFields: pass an array of field names; nothing was removed."
        ]
    );
    for not_an_object in ["null", r#""Plan""#, r#"["Plan"]"#, "not json"] {
        let (msg, bad) = call(&p, set, not_an_object);
        assert_eq!(msg, None);
        assert_eq!(
            bad,
            vec![
                "prechatAPI.setHiddenPrechatFields: pass an object of field names and values; nothing was set."
            ]
        );
    }
    // A deployment without a form declares no hidden field.
    let (_, bad) = call(&Prechat::default(), set, r#"{"Plan":"Gold"}"#);
    assert!(bad[0].contains("(it has: )"), "{}", bad[0]);
}

#[test]
fn visible_prefills_are_checked_one_by_one_and_bad_ones_skipped() {
    let p = Prechat::new(demo_form(PrechatDisplay::Conversation), None).0;
    let set = "setVisiblePrechatFields";
    let (msg, bad) = call(
        &p,
        set,
        r#"{"_firstName":{"value":"Ada","isEditableByEndUser":false},"_lastName":{"value":"Lovelace"},
            "_email":{"value":"not-an-email"},"Topic":{"value":"Orders"}}"#,
    );
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        msg,
        Some(Msg::PrechatPrefilled {
            set: vec![pair("_firstName", "Ada"), pair("Topic", "Orders")],
            locked: vec!["_firstName".into()],
            remove: vec![],
        })
    );
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(
        bad.iter()
            .all(|m| m.starts_with("prechatAPI.setVisiblePrechatFields: field "))
    );
    assert!(bad[0].contains("\"_lastName\" is not a visible pre-chat field of this deployment (it has: _firstName, _email, Topic)"));
    assert!(bad[1].contains("\"_email\" is not an email address"));
    let refused = |json: &str| call(&p, set, json).1.concat();
    assert!(
        refused(r#"{"Topic":{"value":"Refunds"}}"#)
            .contains("\"Topic\" is not one of its choices (Billing, Orders, Other)")
    );
    let long = format!(r#"{{"_firstName":{{"value":"{}"}}}}"#, "a".repeat(41));
    assert!(refused(&long).contains("\"_firstName\" is longer than its maxLength of 40"));
    assert!(
        refused(r#"{"_firstName":"Ada"}"#).contains(
            "\"_firstName\" needs { value: \"text\", isEditableByEndUser: true or false }"
        )
    );
    assert_eq!(
        call(&p, "unsetVisiblePrechatFields", r#"["_email"]"#),
        (
            Some(Msg::PrechatPrefilled {
                set: vec![],
                locked: vec![],
                remove: vec!["_email".into()]
            }),
            vec![]
        )
    );
}

#[test]
fn each_rule_of_the_form_refuses_with_its_own_message() {
    let form = demo_form(PrechatDisplay::Conversation);
    let [name, email, topic] = [&form.fields[0], &form.fields[1], &form.fields[2]];
    assert_eq!(field_error(name, ""), "Please fill in this field.");
    assert_eq!(
        field_error(topic, ""),
        "",
        "an optional field may stay empty"
    );
    assert_eq!(
        field_error(name, &"é".repeat(40)),
        "",
        "characters, not bytes"
    );
    assert_eq!(
        field_error(name, &"é".repeat(41)),
        "Use at most 40 characters."
    );
    assert_eq!(field_error(name, "<script>"), "Please enter plain text.");
    assert_eq!(
        field_error(email, "ada@example"),
        "Enter an email address like name@example.com."
    );
    assert_eq!(field_error(email, "ada@example.com"), "");
    assert_eq!(field_error(topic, "Refunds"), "Choose one of the options.");
    assert_eq!(field_error(topic, "Other"), "");

    for ok in ["a@b.co", "first.last+tag@mail.example.org"] {
        assert!(is_email(ok), "{ok}");
    }
    for bad in [
        "", "a", "@b.co", "a@", "a@b", "a@.co", "a@b.", "a@@b.co", "a b@c.co",
    ] {
        assert!(!is_email(bad), "{bad}");
    }
    assert!(has_script("java\nscript:alert(1)"));
    assert!(has_script("x < script"));
    assert!(!has_script("JavaScript is fine to mention"));
}

#[test]
fn a_new_conversation_waits_for_the_form_and_its_values_go_before_the_first_message() {
    let mut s = State::new(Persisted::default(), "Agent");
    s.prechat = Prechat::new(demo_form(PrechatDisplay::Conversation), None).0;
    assert!(
        emitted(&s.update(Msg::Booted)).is_empty(),
        "not loaded while the window is closed"
    );
    assert!(s.prechat_shown());
    s.update(Msg::ContextChanged {
        kind: ContextKind::Hidden,
        set: vec![("Plan".into(), "Gold".into())],
        remove: vec![],
    });
    let fx = s.update(Msg::LauncherClicked);
    assert!(emitted(&fx).contains(&Event::PrechatLoaded(PrechatDisplay::Conversation)));
    assert!(fx.contains(&Effect::FocusInput));
    assert_eq!(s.status_text(), "Fill in the form to start");
    s.update(Msg::SocketOpened);
    let fx = s.update(welcome("k"));
    assert!(
        !fx.contains(&Effect::NewConversationId),
        "no conversation before the form is submitted"
    );
    assert_eq!(s.link, Link::Joining);
    // While the visitor types, the idle socket is kept alive.
    assert_eq!(
        sent_frames(&s.update(Msg::KeepAliveTick)),
        vec![ToServer::Ping]
    );
    s.update(Msg::FrameReceived(ToVisitor::Pong));
    let fx = s.update(Msg::KeepAliveTick);
    assert_eq!(sent_frames(&fx), vec![ToServer::Ping]);
    assert!(
        !fx.contains(&Effect::Connect),
        "answered: not a dead socket"
    );

    // Refused: errors per field, focus goes back to the form, still no conversation.
    let fx = s.update(submit(&["", "ada@example", "Billing"]));
    assert_eq!(
        s.prechat.errors,
        vec![
            "Please fill in this field.".to_string(),
            "Enter an email address like name@example.com.".into(),
            String::new()
        ]
    );
    assert!(fx.contains(&Effect::FocusInput));
    assert!(!fx.contains(&Effect::NewConversationId));
    assert!(emitted(&fx).is_empty());
    assert!(s.prechat_shown());

    let fx = s.update(submit(&[" Ada ", "ada@example.com", "Billing"]));
    assert!(!s.prechat_shown());
    assert!(s.prechat.errors.is_empty());
    assert_eq!(
        emitted(&fx),
        vec![Event::PrechatSubmitted(PrechatDisplay::Conversation)]
    );
    assert!(fx.contains(&Effect::NewConversationId));
    assert!(!fx.iter().any(|e| matches!(e, Effect::RememberPrechat(_))));
    assert!(
        emitted(&s.update(Msg::LaunchRequested)).is_empty(),
        "loaded fires once per form"
    );
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(send(1, "hello"));
    let fx = s.update(conversation(0, true));
    let context_at = fx.iter().position(|e| *e == Effect::SendContext(cid(C)));
    let message_at = fx
        .iter()
        .position(|e| matches!(e, Effect::Send(ToServer::SendMessage { .. })));
    assert!(context_at.is_some() && context_at < message_at, "{fx:?}");
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        s.context.prechat,
        vec![
            pair("_firstName", "Ada"),
            pair("_email", "ada@example.com"),
            pair("Topic", "Billing")
        ]
    );
    assert_eq!(s.context.hidden, vec![pair("Plan", "Gold")]);
}

#[test]
fn a_form_submitted_before_the_socket_is_welcomed_creates_the_conversation_on_welcome() {
    let mut s = new_visitor(PrechatDisplay::Conversation);
    s.update(Msg::LauncherClicked);
    let fx = s.update(submit(&GOOD));
    assert!(!fx.contains(&Effect::NewConversationId), "not welcomed yet");
    s.update(Msg::SocketOpened);
    assert!(s.update(welcome("k")).contains(&Effect::NewConversationId));
}

#[test]
fn a_resumed_conversation_never_shows_the_form() {
    let mut s = State::new(
        Persisted {
            v: 1,
            credential: Some("k".into()),
            conversation_id: Some(cid(C)),
            ..Persisted::default()
        },
        "Agent",
    );
    s.prechat = Prechat::new(demo_form(PrechatDisplay::Conversation), None).0;
    s.update(Msg::Booted);
    assert!(!s.prechat_shown());
    let fx = s.update(Msg::LauncherClicked);
    assert!(
        emitted(&fx)
            .iter()
            .all(|e| !matches!(e, Event::PrechatLoaded(_)))
    );
    s.update(Msg::SocketOpened);
    let sent = sent_frames(&s.update(welcome("k")));
    assert!(matches!(sent[..], [ToServer::Resume { .. }]), "{sent:?}");
}

/// A visitor who filled the form, chatted, and whose conversation the agent ended.
fn ended_after_the_form(display: PrechatDisplay) -> (State, Vec<Effect>) {
    let mut s = new_visitor(display);
    s.update(Msg::LauncherClicked);
    s.update(Msg::SocketOpened);
    s.update(welcome("k"));
    let fx = s.update(submit(&GOOD));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(conversation(0, true));
    s.update(Msg::FrameReceived(ToVisitor::Error(
        em_protocol::ErrorFrame {
            code: ErrorCode::ConversationEnded,
            message: "ended".into(),
            entry_id: Some(EntryId(uuid::Uuid::from_u128(9))),
            retry_after_ms: None,
        },
    )));
    assert_eq!(s.session, Some(SessionStatus::Ended));
    (s, fx)
}

#[test]
fn display_conversation_asks_again_before_the_next_conversation() {
    let (mut s, _) = ended_after_the_form(PrechatDisplay::Conversation);
    let fx = s.update(Msg::NewConversationClicked);
    assert!(s.prechat_shown());
    assert!(!fx.contains(&Effect::NewConversationId));
    assert!(emitted(&fx).contains(&Event::PrechatLoaded(PrechatDisplay::Conversation)));
    assert!(s.update(submit(&GOOD)).contains(&Effect::NewConversationId));
}

#[test]
fn display_session_asks_once_per_browser_session_and_remembers_the_values() {
    let (mut s, fx) = ended_after_the_form(PrechatDisplay::Session);
    let remembered = fx.iter().find_map(|e| match e {
        Effect::RememberPrechat(json) => Some(json.clone()),
        _ => None,
    });
    let remembered = remembered.expect("remembered in sessionStorage");
    assert_eq!(
        remembered,
        r#"{"_firstName":"Ada","_email":"ada@example.com","Topic":"Billing"}"#
    );
    let fx = s.update(Msg::NewConversationClicked);
    assert!(!s.prechat_shown(), "not again in this session");
    assert!(fx.contains(&Effect::NewConversationId));

    // The next page of the same session: no form, and the values go to a new conversation.
    let (p, values) = Prechat::new(demo_form(PrechatDisplay::Session), Some(&remembered));
    assert!(p.submitted);
    assert_eq!(values.len(), 3);
    assert_eq!(values[0], ("_firstName".to_string(), "Ada".to_string()));
    // What a per-conversation form stored is not taken, nor a broken record.
    let (p, values) = Prechat::new(demo_form(PrechatDisplay::Conversation), Some(&remembered));
    assert!(!p.submitted && values.is_empty());
    let (p, _) = Prechat::new(demo_form(PrechatDisplay::Session), Some("not json"));
    assert!(!p.submitted);
}

#[test]
fn prefills_fill_the_form_and_read_only_ones_keep_the_pages_value() {
    let mut s = new_visitor(PrechatDisplay::Conversation);
    let epoch = s.prechat.epoch;
    s.update(Msg::PrechatPrefilled {
        set: vec![
            ("_firstName".into(), "Ada".into()),
            ("_email".into(), "ada@example.com".into()),
        ],
        locked: vec!["_firstName".into()],
        remove: vec![],
    });
    assert_ne!(s.prechat.epoch, epoch, "the view refills its inputs");
    assert_eq!(s.prechat_prefill("_firstName"), Some(("Ada", false)));
    assert_eq!(s.prechat_prefill("_email"), Some(("ada@example.com", true)));
    s.update(Msg::PrechatPrefilled {
        set: vec![],
        locked: vec![],
        remove: vec!["_email".into()],
    });
    assert_eq!(s.prechat_prefill("_email"), None);
    s.update(Msg::LauncherClicked);
    s.update(submit(&["Mallory", "ada@example.com", ""]));
    assert_eq!(
        s.context.prechat,
        vec![
            ("_firstName".to_string(), "Ada".to_string()),
            ("_email".into(), "ada@example.com".into())
        ],
        "the read-only name stays the page's; the empty topic is not sent"
    );
}

#[test]
fn clear_session_asks_the_next_visitor_again() {
    let (mut s, _) = ended_after_the_form(PrechatDisplay::Session);
    assert!(s.prechat.submitted);
    let fx = s.update(Msg::ClearSessionRequested { end: false });
    assert!(
        fx.contains(&Effect::ClearStorage),
        "the remembered values go too"
    );
    assert!(s.context.prechat.is_empty());
    assert!(s.prechat_shown());
    let fx = s.update(Msg::LauncherClicked);
    assert!(emitted(&fx).contains(&Event::PrechatLoaded(PrechatDisplay::Session)));
}
