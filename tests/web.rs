//! Browser tests (headless Chromium): DOM rendering, events, keyboard, and the wire readers.
//! All tests share one page: each builds its own container and tears it down.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use em_protocol::visitor::ToVisitor;
use em_protocol::*;
use embedded_messaging::runtime::Runtime;
use embedded_messaging::state::{HISTORY_PAGE, Msg, Persisted, State, WindowState};
use embedded_messaging::view::{View, ViewConfig};
use embedded_messaging::wire;
use gloo::events::EventListener;
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{Document, Element, HtmlElement, KeyboardEvent, KeyboardEventInit};

wasm_bindgen_test_configure!(run_in_browser);

const C: u128 = 0xC0FFEE;

fn doc() -> Document {
    web_sys::window().unwrap().document().unwrap()
}

fn cid() -> ConversationId {
    ConversationId(Uuid::from_u128(C))
}

fn eid(n: u128) -> EntryId {
    EntryId(Uuid::from_u128(0xE000 + n))
}

fn config() -> ViewConfig {
    ViewConfig {
        title: "Chat with Acme".into(),
        greeting: "Hi! Ask us anything.".into(),
        button_label: "Chat with an agent".into(),
        placeholder: "Type your message".into(),
        position: Some(("25px".into(), "30px".into())),
        button_color: "#123456".into(),
        ..ViewConfig::default()
    }
}

/// A fresh container in `<body>`, removed when dropped.
struct Container(HtmlElement);

impl Container {
    fn new() -> Container {
        let el: HtmlElement = doc().create_element("div").unwrap().unchecked_into();
        doc().body().unwrap().append_child(&el).unwrap();
        Container(el)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.0.remove();
    }
}

/// A view whose dispatched `Msg`s are collected.
fn view_in(c: &Container) -> (View, Rc<RefCell<Vec<Msg>>>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = got.clone();
    let view = View::new(
        &doc(),
        &c.0,
        &config(),
        Rc::new(move |m| sink.borrow_mut().push(m)),
    )
    .unwrap();
    (view, got)
}

/// A state with a live conversation.
fn live_state() -> State {
    let mut s = State::new(
        Persisted {
            v: 1,
            credential: Some("c".into()),
            conversation_id: Some(cid()),
            window: WindowState::Maximized,
            ..Persisted::default()
        },
        "Agent",
    );
    s.update(Msg::Booted);
    s.update(Msg::SocketOpened);
    s.update(frame(ToVisitor::Welcome {
        protocol_version: 1,
        end_user_id: EndUserId(Uuid::from_u128(5)),
        credential: "c".into(),
        conversation_id: None,
    }));
    s.update(frame(ToVisitor::Conversation {
        conversation_id: cid(),
        status: SessionStatus::Active,
        last_seq: 0,
        created: false,
        replay_to: None,
    }));
    s
}

fn frame(f: ToVisitor) -> Msg {
    Msg::FrameReceived(f)
}

fn text_entry(seq: u64, n: u128, role: Role, name: &str, text: &str) -> Msg {
    frame(ToVisitor::Entry {
        entry: ConversationEntry {
            identifier: eid(n),
            conversation_id: cid(),
            seq,
            sender: Participant {
                role,
                subject: "s".into(),
            },
            sender_display_name: name.into(),
            transcripted_timestamp: 1_700_000_000_000 + seq as i64 * 60_000,
            client_timestamp: None,
            entry_payload: EntryPayload::text(eid(n), text),
        },
    })
}

fn shadow_query(view: &mut View, selector: &str) -> Element {
    view.shadow()
        .unwrap()
        .query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no {selector}"))
}

fn shadow_all(view: &mut View, selector: &str) -> Vec<Element> {
    let list = view.shadow().unwrap().query_selector_all(selector).unwrap();
    (0..list.length())
        .map(|i| list.item(i).unwrap().unchecked_into())
        .collect()
}

fn stringify(v: &JsValue) -> String {
    js_sys::JSON::stringify(v).unwrap().as_string().unwrap()
}

fn attr(el: &Element, name: &str) -> String {
    el.get_attribute(name).unwrap_or_default()
}

#[wasm_bindgen_test]
fn renders_entries_in_seq_order_with_roles_and_testids() {
    // Lines render once each, in seq order whatever the arrival order, with role, ids, seq,
    // sender name on the agent side only, text, and a <time datetime>.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let mut s = live_state();
    s.update(text_entry(
        2,
        2,
        Role::Agent,
        "Ada",
        "Hello, how can I help?",
    ));
    s.update(text_entry(1, 1, Role::EndUser, "", "I have a question"));
    view.render(&mut s);
    s.update(text_entry(
        3,
        3,
        Role::Chatbot,
        "Bot",
        "<img src=x onerror=alert(1)>",
    ));
    s.update(text_entry(
        2,
        2,
        Role::Agent,
        "Ada",
        "Hello, how can I help?",
    ));
    view.render(&mut s);

    let rows = shadow_all(
        &mut view,
        "ol[data-testid=messages] > li[data-testid=message]",
    );
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                attr(r, "data-role"),
                attr(r, "data-seq"),
                attr(r, "data-status"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("EndUser".into(), "1".into(), "sent".into()),
            ("Agent".into(), "2".into(), "sent".into()),
            ("Chatbot".into(), "3".into(), "sent".into()),
        ]
    );
    assert_eq!(attr(&rows[1], "data-entry-id"), wire::id_string(&eid(2).0));
    let text = |r: &Element, sel: &str| {
        r.query_selector(sel)
            .unwrap()
            .map(|e| e.text_content().unwrap_or_default())
    };
    assert_eq!(
        text(&rows[0], "[data-testid=message-sender]"),
        None,
        "no sender name on the visitor side"
    );
    assert_eq!(
        text(&rows[1], "[data-testid=message-sender]").as_deref(),
        Some("Ada")
    );
    assert_eq!(
        text(&rows[1], "[data-testid=message-text]").as_deref(),
        Some("Hello, how can I help?")
    );
    assert_eq!(
        text(&rows[2], "[data-testid=message-text]").as_deref(),
        Some("<img src=x onerror=alert(1)>")
    );
    assert!(
        rows[2].query_selector("img").unwrap().is_none(),
        "message text is never parsed as HTML"
    );
    let time = rows[0]
        .query_selector("time[data-testid=message-time]")
        .unwrap()
        .unwrap();
    assert_eq!(attr(&time, "datetime"), "2023-11-14T22:14:20.000Z");
    assert_eq!(time.text_content().unwrap().len(), 5, "HH:MM");
    assert_eq!(
        shadow_query(&mut view, "[data-testid=greeting]")
            .text_content()
            .unwrap(),
        "Hi! Ask us anything."
    );
}

#[wasm_bindgen_test]
fn pending_line_flips_to_sent_in_place_without_duplicate() {
    // A sent message renders as pending at once; the ack patches the same <li> to sent with
    // its seq, and the server's echo of it adds no second line.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let mut s = live_state();
    s.update(Msg::SendClicked {
        text: "hello".into(),
        entry_id: eid(9),
        now: 1_700_000_000_000,
    });
    view.render(&mut s);
    let li = shadow_query(&mut view, "li[data-testid=message]");
    assert_eq!(attr(&li, "data-status"), "pending");
    assert_eq!(li.get_attribute("data-seq"), None);
    assert_eq!(attr(&li, "data-role"), "EndUser");

    s.update(frame(ToVisitor::Ack {
        conversation_id: cid(),
        entry_id: eid(9),
        seq: 1,
    }));
    view.render(&mut s);
    s.update(text_entry(1, 9, Role::EndUser, "", "hello"));
    view.render(&mut s);
    let rows = shadow_all(&mut view, "li[data-testid=message]");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_same_node(Some(&li)), "patched in place");
    assert_eq!(
        (attr(&li, "data-status"), attr(&li, "data-seq")),
        ("sent".into(), "1".into())
    );
}

#[wasm_bindgen_test]
fn failed_message_shows_the_reason() {
    // An error frame about a message marks its line failed with a visible reason.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let mut s = live_state();
    s.update(Msg::SendClicked {
        text: "late".into(),
        entry_id: eid(4),
        now: 0,
    });
    s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::ConversationEnded,
        message: "the conversation has ended".into(),
        entry_id: Some(eid(4)),
        retry_after_ms: None,
    })));
    view.render(&mut s);
    let li = shadow_query(&mut view, "li[data-testid=message]");
    assert_eq!(attr(&li, "data-status"), "failed");
    assert_eq!(
        shadow_query(&mut view, "[data-testid=message-error]")
            .text_content()
            .unwrap(),
        "Not delivered: the conversation has ended"
    );
}

#[wasm_bindgen_test]
fn launcher_and_window_markup() {
    // The launcher is a light-DOM button with the public id/class, testid and label; the window
    // is a labelled dialog in an open shadow root with title, status, composer and live region;
    // branding and position are CSS custom properties; no <style> element is injected.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let root =
        c.0.query_selector("div#embedded-messaging.embedded-messaging")
            .unwrap()
            .expect("root div");
    let launcher = root
        .query_selector("button#embeddedMessagingConversationButton")
        .unwrap()
        .expect("launcher");
    assert!(launcher.is_same_node(Some(view.launcher())));
    assert_eq!(
        attr(&launcher, "class"),
        "embeddedMessagingConversationButton"
    );
    assert_eq!(attr(&launcher, "data-testid"), "launcher");
    assert_eq!(attr(&launcher, "aria-label"), "Chat with an agent");
    assert_eq!(attr(&launcher, "type"), "button");
    let style = root.unchecked_ref::<HtmlElement>().style();
    assert_eq!(style.get_property_value("--em-bottom").unwrap(), "25px");
    assert_eq!(style.get_property_value("--em-right").unwrap(), "30px");
    assert_eq!(style.get_property_value("--em-button").unwrap(), "#123456");
    let computed = web_sys::window()
        .unwrap()
        .get_computed_style(&launcher)
        .unwrap()
        .unwrap();
    assert_eq!(
        computed.get_property_value("position").unwrap(),
        "fixed",
        "document sheet adopted"
    );
    assert_eq!(computed.get_property_value("bottom").unwrap(), "25px");

    assert!(
        root.query_selector("[data-testid=host]").unwrap().is_none(),
        "the window is built when first needed"
    );
    view.shadow().unwrap();
    let host = root.query_selector("[data-testid=host]").unwrap().unwrap();
    assert_eq!(
        host.shadow_root().map(|r| r.mode()),
        Some(web_sys::ShadowRootMode::Open)
    );
    let dialog = shadow_query(&mut view, "div[role=dialog][data-testid=window]");
    let title = shadow_query(
        &mut view,
        &("#".to_owned() + &attr(&dialog, "aria-labelledby")),
    );
    assert_eq!(attr(&title, "data-testid"), "title");
    assert_eq!(title.text_content().unwrap(), "Chat with Acme");
    assert!(dialog.has_attribute("hidden"), "closed at first");
    for id in ["minimize", "close", "send"] {
        let b = shadow_query(&mut view, &("button[data-testid=".to_owned() + id + "]"));
        assert!(!attr(&b, "aria-label").is_empty(), "{id} has a label");
    }
    let input = shadow_query(&mut view, "textarea[data-testid=input]");
    assert_eq!(attr(&input, "aria-label"), "Type your message");
    assert_eq!(
        attr(&shadow_query(&mut view, "[data-testid=live]"), "aria-live"),
        "polite"
    );
    assert!(doc().query_selector("style").unwrap().is_none());
    assert!(
        view.shadow()
            .unwrap()
            .query_selector("style")
            .unwrap()
            .is_none()
    );

    let mut s = live_state();
    view.render(&mut s);
    assert!(!dialog.has_attribute("hidden"), "maximized");
    assert!(
        launcher.has_attribute("hidden"),
        "the launcher hides while the window shows"
    );
    assert_eq!(
        shadow_query(&mut view, "[data-testid=status]")
            .text_content()
            .unwrap(),
        "Waiting for an agent…"
    );
    let width = web_sys::window()
        .unwrap()
        .get_computed_style(&dialog)
        .unwrap()
        .unwrap();
    let w = web_sys::window().unwrap();
    let (vw, vh) = (
        w.inner_width().unwrap().as_f64().unwrap(),
        w.inner_height().unwrap().as_f64().unwrap(),
    );
    let expected = if vw > 480.0 && vh > 520.0 {
        "320px".to_owned()
    } else {
        vw.to_string() + "px"
    };
    assert_eq!(
        width.get_property_value("width").unwrap(),
        expected,
        "320 wide, full screen when small"
    );
    drop(view);
    assert!(
        c.0.first_child().is_none(),
        "dropping the view removes its DOM"
    );
}

fn key(target: &Element, key: &str, shift: bool) -> bool {
    let init = KeyboardEventInit::new();
    init.set_key(key);
    init.set_shift_key(shift);
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_composed(true);
    let event = KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    target.dispatch_event(&event).unwrap()
}

#[wasm_bindgen_test]
fn enter_sends_and_shift_enter_does_not() {
    // Enter in the composer dispatches SendClicked with the text (default prevented);
    // Shift+Enter does nothing so the textarea gets its newline; Escape asks to minimize.
    let c = Container::new();
    let (mut view, got) = view_in(&c);
    let input: web_sys::HtmlTextAreaElement =
        shadow_query(&mut view, "textarea[data-testid=input]").unchecked_into();
    input.set_value("line one");
    assert!(key(&input, "Enter", true), "Shift+Enter keeps its default");
    assert!(got.borrow().is_empty());
    assert!(
        !key(&input, "Enter", false),
        "Enter's default (newline) is prevented"
    );
    let msgs = got.borrow().clone();
    assert!(
        matches!(&msgs[..], [Msg::SendClicked { text, .. }] if text == "line one"),
        "{msgs:?}"
    );
    got.borrow_mut().clear();
    key(&input, "Escape", false);
    assert_eq!(*got.borrow(), vec![Msg::EscapePressed]);
    got.borrow_mut().clear();
    shadow_query(&mut view, "button[data-testid=send]")
        .unchecked_into::<HtmlElement>()
        .click();
    assert!(matches!(&got.borrow()[..], [Msg::SendClicked { .. }]));
}

/// `(event name, detail as JSON)` in the order they were dispatched.
type EventLog = Rc<RefCell<Vec<(String, String)>>>;

/// Records window events until the listeners are dropped.
fn record(names: &[&'static str]) -> (Vec<EventListener>, EventLog) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let window = web_sys::window().unwrap();
    let listeners = names
        .iter()
        .map(|name| {
            let log = log.clone();
            EventListener::new(&window, *name, move |e| {
                let detail = e.unchecked_ref::<web_sys::CustomEvent>().detail();
                log.borrow_mut().push((e.type_(), stringify(&detail)));
            })
        })
        .collect();
    (listeners, log)
}

#[wasm_bindgen_test]
fn window_states_fire_events_and_move_focus() {
    // Through the real runtime: launcher click → ButtonClicked + Maximized and focus in the
    // composer; Escape → Minimized (the bar shows); bar click → Maximized; close → Closed and
    // focus back on the launcher; launchChat resolves; teardown removes everything.
    let c = Container::new();
    let key_name = "embeddedMessaging:test:window-states";
    let state = State::new(Persisted::default(), "Agent");
    let rt = Runtime::start(
        state,
        "ws://127.0.0.1:9/nowhere".into(),
        key_name.into(),
        |d| View::new(&doc(), &c.0, &config(), d),
    )
    .unwrap();
    rt.dispatch(Msg::Booted);
    let (_l, log) = record(&[
        "onEmbeddedMessagingButtonClicked",
        "onEmbeddedMessagingWindowMaximized",
        "onEmbeddedMessagingWindowMinimized",
        "onEmbeddedMessagingWindowClosed",
    ]);
    let launcher: HtmlElement =
        c.0.query_selector("[data-testid=launcher]")
            .unwrap()
            .unwrap()
            .unchecked_into();
    launcher.click();
    let host = c.0.query_selector("[data-testid=host]").unwrap().unwrap();
    let shadow = host.shadow_root().unwrap();
    let q = |sel: &str| -> HtmlElement {
        shadow
            .query_selector(sel)
            .unwrap()
            .unwrap()
            .unchecked_into()
    };
    assert_eq!(
        log.borrow().clone(),
        vec![
            ("onEmbeddedMessagingButtonClicked".into(), "{}".into()),
            ("onEmbeddedMessagingWindowMaximized".into(), "{}".into())
        ]
    );
    assert!(!q("[data-testid=window]").has_attribute("hidden"));
    assert_eq!(
        shadow
            .active_element()
            .map(|e| attr(&e, "data-testid"))
            .as_deref(),
        Some("input")
    );
    let stored = web_sys::window()
        .unwrap()
        .local_storage()
        .unwrap()
        .unwrap()
        .get_item(key_name)
        .unwrap()
        .unwrap();
    assert!(stored.contains("\"window\":\"maximized\""), "{stored}");

    log.borrow_mut().clear();
    key(&q("[data-testid=input]"), "Escape", false);
    assert_eq!(
        log.borrow().clone(),
        vec![("onEmbeddedMessagingWindowMinimized".into(), "{}".into())]
    );
    assert!(q("[data-testid=window]").has_attribute("hidden"));
    assert!(!q("[data-testid=minimized]").has_attribute("hidden"));

    log.borrow_mut().clear();
    q("[data-testid=minimized]").click();
    assert_eq!(
        log.borrow().clone(),
        vec![("onEmbeddedMessagingWindowMaximized".into(), "{}".into())]
    );

    log.borrow_mut().clear();
    let launched = rt.launch_chat();
    assert!(
        log.borrow().is_empty(),
        "launchChat on an open window fires nothing"
    );
    q("[data-testid=close]").click();
    assert_eq!(
        log.borrow().clone(),
        vec![("onEmbeddedMessagingWindowClosed".into(), "{}".into())]
    );
    assert!(!launcher.has_attribute("hidden"));
    assert!(
        doc()
            .active_element()
            .is_some_and(|e| e.is_same_node(Some(&launcher))),
        "focus returns to the launcher"
    );
    drop(launched);

    rt.shut_down();
    embedded_messaging::storage::clear(key_name);
    assert!(c.0.first_child().is_none(), "teardown removes the DOM");
}

#[wasm_bindgen_test]
fn conversation_entry_detail_has_the_api_shape() {
    // onEmbeddedMessageSent's conversationEntry: API.md field names, entryPayload a JSON string.
    let entry = ConversationEntry {
        identifier: eid(1),
        conversation_id: cid(),
        seq: 3,
        sender: Participant {
            role: Role::EndUser,
            subject: "u".into(),
        },
        sender_display_name: "Guest".into(),
        transcripted_timestamp: 10,
        client_timestamp: Some(9),
        entry_payload: EntryPayload::text(eid(1), "hi"),
    };
    let detail = embedded_messaging::events::detail(
        &embedded_messaging::state::Event::MessageSent(entry.clone()),
    );
    let got: serde_json::Value = serde_json::from_str(&stringify(&detail)).unwrap();
    let e = &got["conversationEntry"];
    assert_eq!(e["identifier"], wire::id_string(&eid(1).0));
    assert_eq!(e["entryType"], "Message");
    assert_eq!(
        e["sender"],
        serde_json::json!({"role": "EndUser", "subject": "u"})
    );
    assert_eq!(e["senderDisplayName"], "Guest");
    assert_eq!(
        (
            e["transcriptedTimestamp"].as_i64(),
            e["clientTimestamp"].as_i64()
        ),
        (Some(10), Some(9))
    );
    let payload: EntryPayload =
        serde_json::from_str(e["entryPayload"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(payload, entry.entry_payload);
}

#[wasm_bindgen_test]
fn unread_badges_and_ended_session_composer() {
    // Agent lines that arrive while minimized show a count on the bar and the launcher; an
    // ended session swaps the composer for a "Start a new conversation" button.
    let c = Container::new();
    let (mut view, got) = view_in(&c);
    let mut s = live_state();
    s.update(Msg::MinimizeClicked);
    s.update(text_entry(1, 1, Role::Agent, "Ada", "are you there?"));
    view.render(&mut s);
    let badge = shadow_query(&mut view, "[data-testid=unread]");
    assert!(!badge.has_attribute("hidden"));
    assert_eq!(badge.text_content().unwrap(), "1");
    assert_eq!(attr(&badge, "aria-label"), "1 new message");
    let launcher_badge = view
        .launcher()
        .query_selector("[data-testid=launcher-unread]")
        .unwrap()
        .unwrap();
    assert_eq!(launcher_badge.text_content().unwrap(), "1");

    s.update(Msg::RestoreClicked);
    s.update(frame(ToVisitor::Entry {
        entry: ConversationEntry {
            identifier: eid(2),
            conversation_id: cid(),
            seq: 2,
            sender: Participant {
                role: Role::System,
                subject: String::new(),
            },
            sender_display_name: String::new(),
            transcripted_timestamp: 1,
            client_timestamp: None,
            entry_payload: EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Ended,
            },
        },
    }));
    view.render(&mut s);
    assert!(badge.has_attribute("hidden"), "opening clears the count");
    assert_eq!(
        shadow_query(&mut view, "[data-testid=status]")
            .text_content()
            .unwrap(),
        "Conversation ended"
    );
    let notice = shadow_all(&mut view, "li[data-testid=message]")
        .pop()
        .unwrap();
    assert_eq!(
        (
            attr(&notice, "data-role"),
            notice
                .text_content()
                .unwrap()
                .starts_with("Conversation ended")
        ),
        ("System".into(), true)
    );
    assert!(shadow_query(&mut view, ".composer").has_attribute("hidden"));
    let restart: HtmlElement =
        shadow_query(&mut view, "[data-testid=new-conversation]").unchecked_into();
    restart.click();
    assert_eq!(got.borrow().last(), Some(&Msg::NewConversationClicked));
}

#[wasm_bindgen_test]
fn ten_thousand_entries_keep_the_newest_in_the_dom_and_load_older_on_scroll_up() {
    // A 10,000-entry history rendered as socket traffic is (one render per animation frame,
    // here every 1,000 frames) keeps only the newest HISTORY_PAGE lines in the DOM, in seq
    // order; scrolling to the top adds the page before them. Timings are logged, not asserted.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let mut s = live_state();
    let perf = web_sys::window().unwrap().performance().unwrap();
    let frames: Vec<String> = (1..=10_000u64)
        .map(|seq| {
            serde_json::to_string(&ToVisitor::Entry {
                entry: ConversationEntry {
                    identifier: eid(100_000 + u128::from(seq)),
                    conversation_id: cid(),
                    seq,
                    sender: Participant {
                        role: if seq % 2 == 0 {
                            Role::Agent
                        } else {
                            Role::EndUser
                        },
                        subject: "s".into(),
                    },
                    sender_display_name: "Ada".into(),
                    transcripted_timestamp: 1_700_000_000_000 + seq as i64,
                    client_timestamp: None,
                    entry_payload: EntryPayload::text(eid(1), "a message of ordinary length"),
                },
            })
            .unwrap()
        })
        .collect();
    let t0 = perf.now();
    for (n, json) in frames.iter().enumerate() {
        let seq = n as u64 + 1;
        let frame =
            wire::read_frame(&embedded_messaging::json::Json::parse(json).unwrap()).unwrap();
        s.update(Msg::FrameReceived(frame));
        if seq.is_multiple_of(1000) {
            view.render(&mut s);
        }
    }
    let elapsed = perf.now() - t0;
    web_sys::console::log_1(&JsValue::from_str(
        &("10,000 entries parsed, applied and rendered: ".to_owned()
            + &elapsed.to_string()
            + " ms"),
    ));
    let seqs = |view: &mut View| -> Vec<String> {
        let rows = view
            .shadow()
            .unwrap()
            .query_selector_all("li[data-testid=message]")
            .unwrap();
        (0..rows.length())
            .map(|i| {
                rows.item(i)
                    .unwrap()
                    .unchecked_into::<Element>()
                    .get_attribute("data-seq")
                    .unwrap()
            })
            .collect()
    };
    let shown = seqs(&mut view);
    assert_eq!(shown.len(), HISTORY_PAGE);
    assert_eq!(
        (shown[0].as_str(), shown[HISTORY_PAGE - 1].as_str()),
        ("9801", "10000")
    );
    s.update(Msg::Scrolled {
        at_bottom: false,
        at_top: true,
    });
    view.render(&mut s);
    let shown = seqs(&mut view);
    assert_eq!(shown.len(), 2 * HISTORY_PAGE);
    assert_eq!(
        (shown[0].as_str(), shown[HISTORY_PAGE].as_str()),
        ("9601", "9801")
    );
    assert!(
        shown
            .windows(2)
            .all(|w| w[0].parse::<u64>().unwrap() < w[1].parse::<u64>().unwrap())
    );
}

#[wasm_bindgen_test]
fn hidden_tab_title_blinks_and_is_restored() {
    // While the tab is hidden with unread lines, the title alternates with the count; when the
    // tab shows again (or the view goes away) the page's own title is back.
    let c = Container::new();
    let (mut view, _) = view_in(&c);
    let original = doc().title();
    let mut s = live_state();
    s.update(Msg::VisibilityChanged { hidden: true });
    s.update(text_entry(1, 1, Role::Agent, "Ada", "hello?"));
    s.update(Msg::BlinkTick);
    view.render(&mut s);
    assert_eq!(doc().title(), "(1) New message");
    s.update(Msg::BlinkTick);
    view.render(&mut s);
    assert_eq!(doc().title(), original);
    s.update(Msg::BlinkTick);
    view.render(&mut s);
    assert_eq!(doc().title(), "(1) New message");
    s.update(Msg::VisibilityChanged { hidden: false });
    view.render(&mut s);
    assert_eq!(doc().title(), original);
    s.update(Msg::VisibilityChanged { hidden: true });
    s.update(text_entry(2, 2, Role::Agent, "Ada", "still there?"));
    s.update(Msg::BlinkTick);
    view.render(&mut s);
    assert_ne!(doc().title(), original);
    drop(view);
    assert_eq!(doc().title(), original);
}

fn js_object(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

#[wasm_bindgen_test]
fn settings_are_read_through_serde_and_a_wrong_type_falls_back_to_the_default() {
    // Known settings are read (camelCase), unknown keys are ignored, a mistyped setting keeps
    // its default instead of failing the rest, and targetElement must be a DOM element.
    use embedded_messaging::settings::Settings;
    let s = Settings::from_js(&js_object(
        r#"{"language":"pt_BR","hideChatButtonOnLoad":true,"chatButtonPosition":"1%, 2%",
            "devMode":"yes","snippetConfig":{"scrt2URL":"x"},"somethingElse":[1,2]}"#,
    ));
    assert_eq!(s.language.as_deref(), Some("pt_BR"));
    assert!(s.hide_chat_button_on_load);
    assert_eq!(s.button_position, Some(("1%".into(), "2%".into())));
    assert!(!s.dev_mode, "a mistyped devMode keeps the default");
    let s = Settings::from_js(&js_object(
        r#"{"language":12,"hideChatButtonOnLoad":null,"chatButtonPosition":"left"}"#,
    ));
    assert_eq!(
        (s.language, s.hide_chat_button_on_load, s.button_position),
        (None, false, None)
    );
    let c = Container::new();
    let with_target = js_sys::Object::new();
    js_sys::Reflect::set(&with_target, &"targetElement".into(), &c.0).unwrap();
    let s = Settings::from_js(&with_target);
    assert!(s.target_element.unwrap().is_same_node(Some(&c.0)));
    assert!(Settings::from_js(&JsValue::NULL).target_element.is_none());
}

#[wasm_bindgen_test]
fn init_args_are_read_through_serde_and_checked() {
    // init's {orgId, deploymentName, siteURL, scrt2URL}: read with their wire names, the trailing
    // slash of scrt2URL dropped; a missing or empty one is an error naming it.
    use embedded_messaging::settings::InitArgs;
    let a = InitArgs::from_js(&js_object(
        r#"{"orgId":"00D000000000001","deploymentName":"D","siteURL":"https://s","scrt2URL":"https://m/"}"#,
    ))
    .unwrap();
    assert_eq!(
        (a.org_id.as_str(), a.scrt2_url.as_str(), a.site_url.as_str()),
        ("00D000000000001", "https://m", "https://s")
    );
    let e = InitArgs::from_js(&js_object(
        r#"{"orgId":"00D000000000001","deploymentName":"","siteURL":"https://s","scrt2URL":"https://m"}"#,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("deploymentName"), "{e}");
    assert!(InitArgs::from_js(&js_object(r#"{"orgId":"00D000000000001"}"#)).is_err());
}

#[wasm_bindgen_test]
fn small_event_details_have_the_api_shape() {
    // ConversationStarted, UnreadCountChanged and the detail-less events: API.md shapes.
    use embedded_messaging::events::detail;
    use embedded_messaging::state::Event;
    assert_eq!(
        stringify(&detail(&Event::ConversationStarted(cid()))),
        format!(r#"{{"conversationId":"{}"}}"#, wire::id_string(&cid().0))
    );
    assert_eq!(
        stringify(&detail(&Event::UnreadCountChanged(3))),
        r#"{"unreadCount":3}"#
    );
    assert_eq!(stringify(&detail(&Event::WindowMaximized)), "{}");
}

#[wasm_bindgen_test]
fn failed_message_offers_a_keyboard_reachable_retry_that_dispatches_and_goes_away() {
    // A refused message shows its reason and a real <button> Retry (focusable, labelled);
    // clicking it dispatches RetryClicked for that entry; once pending again, the note and
    // the button are gone.
    let c = Container::new();
    let (mut view, got) = view_in(&c);
    let mut s = live_state();
    s.update(Msg::SendClicked {
        text: "way too long".into(),
        entry_id: eid(7),
        now: 0,
    });
    s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::InvalidMessage,
        message: "the message is too long".into(),
        entry_id: Some(eid(7)),
        retry_after_ms: None,
    })));
    view.render(&mut s);
    let li = shadow_query(&mut view, "li[data-testid=message]");
    assert_eq!(attr(&li, "data-status"), "failed");
    let retry: HtmlElement =
        shadow_query(&mut view, "li [data-testid=message-retry]").unchecked_into();
    assert_eq!(retry.tag_name(), "BUTTON");
    assert_eq!(attr(&retry, "type"), "button");
    assert_eq!(
        attr(&retry, "aria-label"),
        "Retry sending: the message is too long"
    );
    retry.focus().unwrap();
    assert!(
        view.shadow()
            .unwrap()
            .active_element()
            .is_some_and(|a| a.is_same_node(Some(&retry))),
        "reachable by keyboard focus"
    );
    retry.click();
    assert_eq!(
        got.borrow().last(),
        Some(&Msg::RetryClicked { entry_id: eid(7) })
    );
    s.update(Msg::RetryClicked { entry_id: eid(7) });
    view.render(&mut s);
    assert_eq!(attr(&li, "data-status"), "pending");
    assert!(
        shadow_all(
            &mut view,
            "[data-testid=message-retry], [data-testid=message-error]"
        )
        .is_empty()
    );
}

#[wasm_bindgen_test]
fn outbox_is_stored_beside_the_record_and_read_back() {
    // The `…:outbox` key holds the unsent messages as JSON (what a reload restores); an
    // empty outbox removes the key.
    use embedded_messaging::state::Outgoing;
    use embedded_messaging::storage;
    let key = "embeddedMessaging:test-outbox";
    let outbox = vec![Outgoing {
        id: eid(1),
        text: "kept".into(),
        time: 3,
        failed: None,
    }];
    storage::save_outbox(key, &outbox);
    let ls = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    assert!(ls.get_item(&storage::outbox_key(key)).unwrap().is_some());
    assert_eq!(storage::load_outbox(key), outbox);
    storage::save_outbox(key, &[]);
    assert!(ls.get_item(&storage::outbox_key(key)).unwrap().is_none());
    assert!(storage::load_outbox(key).is_empty());
}

#[wasm_bindgen_test]
fn quick_replies_render_as_focusable_buttons_and_a_click_sends_the_title() {
    // A bot ChoicesMessage shows its text as a bot line with one real <button> per option
    // (labelled by its title, reachable by keyboard); clicking one dispatches ChoiceClicked
    // with that title; once the state has sent it, the buttons are gone and the answer is a
    // pending visitor line.
    let c = Container::new();
    let (mut view, got) = view_in(&c);
    let mut s = live_state();
    let titles = ["Opening hours".to_owned(), "Order status".to_owned()];
    s.update(frame(ToVisitor::Entry {
        entry: ConversationEntry {
            identifier: eid(1),
            conversation_id: cid(),
            seq: 1,
            sender: Participant {
                role: Role::Chatbot,
                subject: "bot".into(),
            },
            sender_display_name: "Assistant".into(),
            transcripted_timestamp: 1_700_000_000_000,
            client_timestamp: None,
            entry_payload: EntryPayload::Message {
                abstract_message: AbstractMessage::ChoicesMessage {
                    id: eid(1),
                    choices: Choices::quick_replies("What can I help you with?", &titles),
                },
            },
        },
    }));
    view.render(&mut s);
    let li = shadow_query(&mut view, "li[data-testid=message]");
    assert_eq!(attr(&li, "data-role"), "Chatbot");
    assert_eq!(
        shadow_query(&mut view, "li [data-testid=message-text]").text_content(),
        Some("What can I help you with?".into())
    );
    let buttons = shadow_all(&mut view, "li [data-testid=quick-reply]");
    assert_eq!(buttons.len(), 2);
    let labels: Vec<String> = buttons
        .iter()
        .map(|b| b.text_content().unwrap_or_default())
        .collect();
    assert_eq!(labels, titles);
    let second: HtmlElement = buttons[1].clone().unchecked_into();
    assert_eq!(second.tag_name(), "BUTTON");
    second.focus().unwrap();
    assert!(
        view.shadow()
            .unwrap()
            .active_element()
            .is_some_and(|a| a.is_same_node(Some(&second))),
        "reachable by keyboard focus"
    );
    second.click();
    let clicked = got.borrow().last().cloned();
    let Some(Msg::ChoiceClicked {
        title, entry_id, ..
    }) = clicked
    else {
        panic!("{clicked:?}")
    };
    assert_eq!(title, "Order status");
    s.update(Msg::ChoiceClicked {
        title,
        entry_id,
        now: 1_700_000_001_000,
    });
    view.render(&mut s);
    assert!(shadow_all(&mut view, "[data-testid=quick-reply]").is_empty());
    let mine = shadow_query(&mut view, "li[data-role=EndUser]");
    assert_eq!(attr(&mine, "data-status"), "pending");
    assert_eq!(
        mine.text_content().map(|t| t.contains("Order status")),
        Some(true)
    );
}
