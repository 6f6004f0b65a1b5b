//! All DOM of the widget: built once, then patched from the `State`.
//!
//! Light DOM: `div#embedded-messaging` holding the launcher button (page CSS may restyle it)
//! and, once the window is first needed, a host element whose open shadow root holds the
//! window, the minimized bar and the live region (page views that never chat skip building
//! it, which keeps the way to Ready short). Lines are keyed by entry id: new ones are inserted at their place, changed
//! ones patched in place (pending → sent). Text only ever goes in through `set_text_content`.

use std::rc::Rc;

use em_protocol::{EntryId, Role};
use gloo::events::{EventListener, EventListenerOptions};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{
    CssStyleSheet, Document, Element, HtmlElement, HtmlTextAreaElement, KeyboardEvent, ShadowRoot,
};

use crate::dom::{self, icons};
use crate::error::Error;
use crate::state::{Body, Delivery, Item, Msg, State, WindowState, role_str};
use crate::style;

/// Where the view sends what the visitor did.
pub type Dispatch = Rc<dyn Fn(Msg)>;

/// The words and looks the view is built with (branding + page settings).
#[derive(Clone, Debug, Default)]
pub struct ViewConfig {
    pub title: String,
    pub greeting: String,
    pub button_label: String,
    pub placeholder: String,
    pub hide_button: bool,
    /// `(bottom, right)` CSS lengths.
    pub position: Option<(String, String)>,
    pub button_color: String,
    pub header_color: String,
    pub accent_color: String,
    pub font_family: String,
}

/// A rendered line.
struct Row {
    li: HtmlElement,
    time: HtmlElement,
    error: Option<HtmlElement>,
    seq: Option<u64>,
    status: &'static str,
    time_ms: i64,
}

/// The mounted widget DOM: the launcher at once, the window when first needed.
pub struct View {
    doc: Document,
    root: HtmlElement,
    launcher: HtmlElement,
    launcher_badge: HtmlElement,
    doc_sheet: CssStyleSheet,
    cfg: ViewConfig,
    dispatch: Dispatch,
    /// Built on first open (or first announcement): page views that never chat skip it.
    win: Option<Win>,
    window_shown: Option<(WindowState, bool)>,
    unread: u32,
    _listeners: Vec<EventListener>,
}

/// The shadow root and everything in it.
struct Win {
    shadow: ShadowRoot,
    window: HtmlElement,
    status: HtmlElement,
    list: HtmlElement,
    input: HtmlTextAreaElement,
    live: HtmlElement,
    bar: HtmlElement,
    composer: HtmlElement,
    ended: HtmlElement,
    bar_badge: HtmlElement,
    templates: [HtmlElement; 3],
    /// Scrolls the transcript to its end at the next frame (one layout per frame, not per line).
    scroll_to_end: Closure<dyn FnMut()>,
    raf: Option<i32>,
    unread: u32,
    ended_shown: bool,
    /// `State::shown` at the last render.
    shown: usize,
    /// How many rows are in the DOM.
    rendered: usize,
    /// Rendered lines by `Item::key`.
    rows: Vec<Option<Row>>,
    epoch: u32,
    window_shown: Option<WindowState>,
    status_text: String,
    _listeners: Vec<EventListener>,
}

impl View {
    /// Build the DOM inside `mount` and wire its listeners to `dispatch`.
    pub fn new(
        doc: &Document,
        mount: &Element,
        cfg: &ViewConfig,
        dispatch: Dispatch,
    ) -> Result<View, Error> {
        let root = dom::el(
            doc,
            "div",
            &[
                ("id", "embedded-messaging"),
                ("class", "embedded-messaging"),
            ],
        )?;
        apply_branding(&root, cfg);
        let doc_sheet = dom::sheet(style::DOCUMENT_CSS)?;

        let label = first_non_empty(&[&cfg.button_label, &cfg.title, "Chat with us"]);
        let launcher = dom::child(
            &root,
            "button",
            &[
                ("id", "embeddedMessagingConversationButton"),
                ("class", "embeddedMessagingConversationButton"),
                ("type", "button"),
                ("data-testid", "launcher"),
                ("aria-label", label),
                ("aria-haspopup", "dialog"),
                ("aria-expanded", "false"),
            ],
        )?;
        dom::icon(&launcher, icons::CHAT)?;
        let launcher_badge = dom::child(
            &launcher,
            "span",
            &[
                ("class", "embeddedMessagingUnreadBadge"),
                ("data-testid", "launcher-unread"),
                ("aria-hidden", "true"),
                ("hidden", ""),
            ],
        )?;
        dom::set_hidden(&launcher, cfg.hide_button);
        let d = dispatch.clone();
        let listeners = vec![EventListener::new(&launcher, "click", move |_| {
            d(Msg::LauncherClicked)
        })];
        mount.append_child(&root)?;
        dom::adopt_in_document(doc, &doc_sheet);
        Ok(View {
            doc: doc.clone(),
            root,
            launcher,
            launcher_badge,
            doc_sheet,
            cfg: cfg.clone(),
            dispatch,
            win: None,
            window_shown: None,
            unread: 0,
            _listeners: listeners,
        })
    }

    /// The window, built now if it is not yet.
    fn win(&mut self) -> Result<&mut Win, Error> {
        if self.win.is_none() {
            self.win = Some(Win::new(&self.doc, &self.root, &self.cfg, &self.dispatch)?);
        }
        self.win.as_mut().ok_or_else(|| Error::Js("window".into()))
    }
}

impl Win {
    fn new(
        doc: &Document,
        root: &Element,
        cfg: &ViewConfig,
        dispatch: &Dispatch,
    ) -> Result<Win, Error> {
        let host = dom::child(
            root,
            "div",
            &[
                ("class", "embedded-messaging-host"),
                ("data-testid", "host"),
            ],
        )?;
        let shadow =
            host.attach_shadow(&web_sys::ShadowRootInit::new(web_sys::ShadowRootMode::Open))?;
        let shadow_sheet: wasm_bindgen::JsValue = dom::sheet(style::SHADOW_CSS)?.into();
        shadow.set_adopted_style_sheets(&js_sys::Array::of1(&shadow_sheet));
        let shadow_el: &web_sys::Node = &shadow;

        let title = first_non_empty(&[&cfg.title, "Chat with us"]);
        let window = dom::el(
            doc,
            "div",
            &[
                ("class", "window"),
                ("role", "dialog"),
                ("aria-labelledby", "em-title"),
                ("aria-describedby", "em-status"),
                ("data-testid", "window"),
                ("hidden", ""),
            ],
        )?;
        shadow_el.append_child(&window)?;
        let header = dom::child(&window, "div", &[("class", "header")])?;
        let heading = dom::child(&header, "div", &[("class", "heading")])?;
        dom::text_child(
            &heading,
            "h2",
            &[
                ("id", "em-title"),
                ("class", "title"),
                ("data-testid", "title"),
            ],
            title,
        )?;
        let status = dom::text_child(
            &heading,
            "p",
            &[
                ("id", "em-status"),
                ("class", "status"),
                ("data-testid", "status"),
            ],
            "Connecting…",
        )?;
        let minimize = dom::child(
            &header,
            "button",
            &[
                ("type", "button"),
                ("class", "icon-btn"),
                ("data-testid", "minimize"),
                ("aria-label", "Minimize chat window"),
            ],
        )?;
        dom::icon(&minimize, icons::MINIMIZE)?;
        let close = dom::child(
            &header,
            "button",
            &[
                ("type", "button"),
                ("class", "icon-btn"),
                ("data-testid", "close"),
                ("aria-label", "Close chat window"),
            ],
        )?;
        dom::icon(&close, icons::CLOSE)?;

        let body = dom::child(
            &window,
            "div",
            &[("class", "body"), ("data-testid", "transcript")],
        )?;
        dom::text_child(
            &body,
            "p",
            &[("class", "greeting"), ("data-testid", "greeting")],
            &cfg.greeting,
        )?;
        let list = dom::child(
            &body,
            "ol",
            &[
                ("class", "messages"),
                ("data-testid", "messages"),
                ("aria-label", "Conversation"),
            ],
        )?;

        let composer = dom::child(&window, "div", &[("class", "composer")])?;
        let placeholder = first_non_empty(&[&cfg.placeholder, "Type your message"]);
        let input: HtmlTextAreaElement = dom::child(
            &composer,
            "textarea",
            &[
                ("class", "input"),
                ("data-testid", "input"),
                ("rows", "1"),
                ("maxlength", "4000"),
                ("aria-label", placeholder),
                ("placeholder", placeholder),
            ],
        )?
        .unchecked_into();
        let send = dom::child(
            &composer,
            "button",
            &[
                ("type", "button"),
                ("class", "send"),
                ("data-testid", "send"),
                ("aria-label", "Send message"),
            ],
        )?;
        dom::icon(&send, icons::SEND)?;
        let ended = dom::child(&window, "div", &[("class", "ended"), ("hidden", "")])?;
        let new_conversation = dom::text_child(
            &ended,
            "button",
            &[
                ("type", "button"),
                ("class", "new-conv"),
                ("data-testid", "new-conversation"),
            ],
            "Start a new conversation",
        )?;

        let bar = dom::el(
            doc,
            "button",
            &[
                ("type", "button"),
                ("class", "bar"),
                ("data-testid", "minimized"),
                ("aria-label", &("Restore chat window: ".to_owned() + title)),
                ("hidden", ""),
            ],
        )?;
        dom::icon(&bar, icons::CHAT)?;
        dom::text_child(&bar, "span", &[("class", "bar-label")], title)?;
        let bar_badge = dom::child(
            &bar,
            "span",
            &[
                ("class", "badge"),
                ("data-testid", "unread"),
                ("hidden", ""),
            ],
        )?;
        shadow_el.append_child(&bar)?;
        let live = dom::el(
            doc,
            "div",
            &[
                ("class", "sr-only"),
                ("data-testid", "live"),
                ("aria-live", "polite"),
                ("aria-atomic", "true"),
            ],
        )?;
        shadow_el.append_child(&live)?;

        let mut listeners = wire(dispatch, &minimize, &close, &bar, &window, &input, &send);
        let d = dispatch.clone();
        listeners.push(EventListener::new(&new_conversation, "click", move |_| {
            d(Msg::NewConversationClicked)
        }));
        let (d, scroller) = (dispatch.clone(), body.clone());
        listeners.push(EventListener::new(&body, "scroll", move |_| {
            let top = scroller.scroll_top();
            let gap = scroller.scroll_height() - top - scroller.client_height();
            d(Msg::Scrolled {
                at_bottom: gap < 40,
                at_top: top < 40,
            });
        }));
        let scroller = body.clone();
        let scroll_to_end = Closure::<dyn FnMut()>::new(move || scroller.set_scroll_top(i32::MAX));

        Ok(Win {
            shadow,
            window,
            status,
            list,
            input,
            live,
            bar,
            composer,
            ended,
            bar_badge,
            templates: row_templates(doc)?,
            scroll_to_end,
            raf: None,
            unread: 0,
            ended_shown: false,
            shown: 0,
            rendered: 0,
            rows: Vec::new(),
            epoch: 0,
            window_shown: None,
            status_text: String::new(),
            _listeners: listeners,
        })
    }

    /// Bring the window up to date with `state` (only what changed is touched).
    fn render(&mut self, state: &mut State) {
        let mut scroll = false;
        if self.window_shown != Some(state.window) {
            scroll = state.window == WindowState::Maximized;
            self.window_shown = Some(state.window);
            dom::set_hidden(&self.window, state.window != WindowState::Maximized);
            dom::set_hidden(&self.bar, state.window != WindowState::Minimized);
        }
        let status = state.status_text();
        if status != self.status_text {
            self.status.set_text_content(Some(&status));
            let live = if state.link == crate::state::Link::Live {
                "true"
            } else {
                "false"
            };
            let _ = self.status.set_attribute("data-live", live);
            self.status_text = status;
        }

        if self.unread != state.unread {
            self.unread = state.unread;
            show_count(&self.bar_badge, state.unread);
            let label = if state.unread == 1 {
                " new message"
            } else {
                " new messages"
            };
            let _ = self.bar_badge.set_attribute(
                "aria-label",
                &(crate::json::int_string(i64::from(state.unread)) + label),
            );
        }
        let ended = state.session == Some(em_protocol::SessionStatus::Ended);
        if self.ended_shown != ended {
            self.ended_shown = ended;
            dom::set_hidden(&self.composer, ended);
            dom::set_hidden(&self.ended, !ended);
        }

        // The transcript is patched only while it can be seen (a hidden window costs nothing).
        if state.window == WindowState::Maximized || state.epoch != self.epoch {
            scroll |= self.render_lines(state);
        }
        if scroll && state.window == WindowState::Maximized {
            self.request_scroll();
        }
    }

    /// Patch the list from the state's changed lines; true when a new last line wants scrolling.
    fn render_lines(&mut self, state: &mut State) -> bool {
        let mut scroll = false;
        // Only the newest `state.shown` lines are in the DOM (older ones on scrolling up).
        let len = state.items.len();
        let floor = len.saturating_sub(state.shown);
        let dirty = state.take_dirty();
        let mut order: Vec<usize> = if state.epoch != self.epoch {
            self.epoch = state.epoch;
            self.list.set_text_content(None);
            self.rows.clear();
            self.rendered = 0;
            (floor..len).rev().collect()
        } else {
            dirty
        };
        if state.shown > self.shown {
            // Scrolled up: add the lines between the new floor and the oldest rendered one.
            let top = (floor..len)
                .find(|&i| self.row(state.items[i].key).is_some())
                .unwrap_or(len);
            // (Descending like the dirty list, so each line's successor is already placed.)
            order.extend((floor..top).rev());
        }
        self.shown = state.shown;
        for i in order {
            let Some(item) = state.items.get(i) else {
                continue;
            };
            let key = item.key as usize;
            if self.rows.len() <= key {
                self.rows.resize_with(key + 1, || None);
            }
            if self.rows[key].is_none() && i < floor {
                continue; // above the shown history
            }
            let next = state.items[i + 1..]
                .iter()
                .find_map(|n| self.row(n.key))
                .map(|r| r.li.clone());
            let place = match &mut self.rows[key] {
                Some(row) => {
                    patch(row, item);
                    let moved = row.seq != item.seq;
                    row.seq = item.seq;
                    moved.then(|| row.li.clone())
                }
                None => match build_row(&self.templates, item) {
                    Ok(row) => {
                        let li = row.li.clone();
                        self.rows[key] = Some(row);
                        self.rendered += 1;
                        Some(li)
                    }
                    Err(_) => None,
                },
            };
            if let Some(li) = place {
                // A new last line scrolls into view if the visitor was at the end or wrote it.
                scroll |= next.is_none() && (state.at_bottom || item.role == Role::EndUser);
                let _ = self
                    .list
                    .insert_before(&li, next.as_ref().map(|n| n.as_ref()));
            }
        }
        // Lines pushed above the shown history by new ones leave the DOM (every line from
        // the floor up is rendered, so the rest are below it).
        for item in state.items[..floor].iter().rev() {
            if self.rendered <= len - floor {
                break;
            }
            if let Some(row) = self.rows.get_mut(item.key as usize).and_then(Option::take) {
                row.li.remove();
                self.rendered -= 1;
            }
        }
        scroll
    }

    fn row(&self, key: u32) -> Option<&Row> {
        self.rows.get(key as usize)?.as_ref()
    }

    fn request_scroll(&mut self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(id) = self.raf.take() {
            let _ = window.cancel_animation_frame(id);
        }
        self.raf = window
            .request_animation_frame(self.scroll_to_end.as_ref().unchecked_ref())
            .ok();
    }
}

impl Drop for Win {
    fn drop(&mut self) {
        if let (Some(id), Some(window)) = (self.raf.take(), web_sys::window()) {
            let _ = window.cancel_animation_frame(id);
        }
    }
}

impl View {
    /// The launcher button (light DOM).
    pub fn launcher(&self) -> &HtmlElement {
        &self.launcher
    }

    /// The open shadow root holding the window (building the window if needed).
    pub fn shadow(&mut self) -> Result<ShadowRoot, Error> {
        Ok(self.win()?.shadow.clone())
    }

    /// Bring the DOM up to date with `state` (only what changed is touched).
    pub fn render(&mut self, state: &mut State) {
        let shown = (state.window, state.button_hidden);
        if self.window_shown != Some(shown) {
            self.window_shown = Some(shown);
            dom::set_hidden(
                &self.launcher,
                state.button_hidden || state.window != WindowState::Closed,
            );
            let expanded = if state.window == WindowState::Maximized {
                "true"
            } else {
                "false"
            };
            let _ = self.launcher.set_attribute("aria-expanded", expanded);
        }
        if self.unread != state.unread {
            self.unread = state.unread;
            show_count(&self.launcher_badge, state.unread);
        }
        if state.window != WindowState::Closed || self.win.is_some() {
            match self.win() {
                Ok(win) => win.render(state),
                Err(e) => crate::console::error(
                    &("cannot build the chat window: ".to_owned() + &e.to_string()),
                ),
            }
        }
    }

    pub fn focus_input(&mut self) {
        if let Some(win) = &self.win {
            let _ = win.input.focus();
        }
    }

    pub fn focus_launcher(&self) {
        if !self.launcher.has_attribute("hidden") {
            let _ = self.launcher.focus();
        }
    }

    pub fn focus_minimized(&mut self) {
        if let Some(win) = &self.win {
            let _ = win.bar.focus();
        }
    }

    pub fn clear_input(&mut self) {
        if let Some(win) = &self.win {
            win.input.set_value("");
        }
    }

    /// Say `text` in the polite live region.
    pub fn announce(&mut self, text: &str) {
        if let Ok(win) = self.win() {
            win.live.set_text_content(Some(text));
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.win = None;
        self.root.remove();
        dom::unadopt_in_document(&self.doc, &self.doc_sheet);
    }
}

/// A count badge: the number, hidden at 0.
fn show_count(badge: &HtmlElement, n: u32) {
    badge.set_text_content(Some(&crate::json::int_string(i64::from(n))));
    dom::set_hidden(badge, n == 0);
}

/// Branding and position as custom properties (CSSOM, allowed under a strict CSP).
fn apply_branding(root: &HtmlElement, cfg: &ViewConfig) {
    let style = root.style();
    let colors = [
        ("--em-button", &cfg.button_color),
        ("--em-header", &cfg.header_color),
        ("--em-accent", &cfg.accent_color),
    ];
    for (prop, value) in colors {
        if !value.is_empty() && web_sys::css::supports_with_value("color", value).unwrap_or(false) {
            let _ = style.set_property(prop, value);
        }
    }
    if !cfg.font_family.is_empty() {
        let _ = style.set_property("--em-font", &cfg.font_family);
    }
    if let Some((bottom, right)) = &cfg.position {
        let _ = style.set_property("--em-bottom", bottom);
        let _ = style.set_property("--em-right", right);
    }
}

#[allow(clippy::too_many_arguments)]
fn wire(
    dispatch: &Dispatch,
    minimize: &HtmlElement,
    close: &HtmlElement,
    bar: &HtmlElement,
    window: &HtmlElement,
    input: &HtmlTextAreaElement,
    send: &HtmlElement,
) -> Vec<EventListener> {
    let on = |target: &HtmlElement, msg: Msg| {
        let d = dispatch.clone();
        EventListener::new(target, "click", move |_| d(msg.clone()))
    };
    let d = dispatch.clone();
    let escape = EventListener::new(window, "keydown", move |e| {
        if e.dyn_ref::<KeyboardEvent>()
            .is_some_and(|k| k.key() == "Escape")
        {
            d(Msg::EscapePressed);
        }
    });
    let (d, field) = (dispatch.clone(), input.clone());
    let enter = EventListener::new_with_options(
        input,
        "keydown",
        EventListenerOptions::enable_prevent_default(),
        move |e| {
            let Some(k) = e.dyn_ref::<KeyboardEvent>() else {
                return;
            };
            if k.key() == "Enter" && !k.shift_key() && !k.is_composing() {
                e.prevent_default();
                d(submit(&field));
            }
        },
    );
    let (d, field) = (dispatch.clone(), input.clone());
    let click_send = EventListener::new(send, "click", move |_| {
        d(submit(&field));
        let _ = field.focus();
    });
    vec![
        on(minimize, Msg::MinimizeClicked),
        on(close, Msg::CloseClicked),
        on(bar, Msg::RestoreClicked),
        escape,
        enter,
        click_send,
    ]
}

/// The composer's text as a `SendClicked` with a fresh entry id and the current time.
fn submit(field: &HtmlTextAreaElement) -> Msg {
    Msg::SendClicked {
        text: field.value(),
        entry_id: EntryId(Uuid::new_v4()),
        now: js_sys::Date::now() as i64,
    }
}

/// Row skeletons, cloned per line (one native clone instead of ~20 calls across the
/// wasm boundary): agent/bot line with a sender name, line without, centred notice.
fn row_templates(doc: &Document) -> Result<[HtmlElement; 3], Error> {
    let row = |class: &str| dom::el(doc, "li", &[("class", class), ("data-testid", "message")]);
    let named = row("msg")?;
    dom::child(
        &named,
        "span",
        &[("class", "sender"), ("data-testid", "message-sender")],
    )?;
    let plain = row("msg")?;
    let notice = row("msg notice")?;
    for li in [&named, &plain] {
        dom::child(
            li,
            "div",
            &[("class", "bubble"), ("data-testid", "message-text")],
        )?;
    }
    dom::child(&notice, "span", &[("data-testid", "message-text")])?;
    for li in [&named, &plain, &notice] {
        dom::child(
            li,
            "time",
            &[("class", "meta"), ("data-testid", "message-time")],
        )?;
    }
    Ok([named, plain, notice])
}

fn build_row(templates: &[HtmlElement; 3], item: &Item) -> Result<Row, Error> {
    let missing = || Error::Js("row template".into());
    let (which, role, text) = match &item.body {
        Body::Notice(text) => (2, "System", text),
        Body::Text(text)
            if matches!(item.role, Role::Agent | Role::Chatbot) && !item.sender_name.is_empty() =>
        {
            (0, role_str(item.role), text)
        }
        Body::Text(text) => (1, role_str(item.role), text),
    };
    let li: HtmlElement = templates[which]
        .clone_node_with_deep(true)?
        .unchecked_into();
    li.set_attribute("data-role", role)?;
    li.set_attribute("data-entry-id", &crate::wire::id_string(&item.id.0))?;
    let time: HtmlElement = li
        .last_element_child()
        .ok_or_else(missing)?
        .unchecked_into();
    time.previous_element_sibling()
        .ok_or_else(missing)?
        .set_text_content(Some(text));
    if which == 0 {
        li.first_element_child()
            .ok_or_else(missing)?
            .set_text_content(Some(&item.sender_name));
    }
    let mut row = Row {
        li,
        time,
        error: None,
        seq: item.seq,
        status: "",
        time_ms: i64::MIN,
    };
    patch(&mut row, item);
    Ok(row)
}

/// Update a row's changing parts: seq, delivery status, time, failure note.
fn patch(row: &mut Row, item: &Item) {
    if let Some(seq) = item.seq {
        let _ = row
            .li
            .set_attribute("data-seq", &crate::json::int_string(seq as i64));
    }
    let status = item.delivery.as_str();
    if row.status != status {
        row.status = status;
        let _ = row.li.set_attribute("data-status", status);
    }
    if row.time_ms != item.time {
        row.time_ms = item.time;
        set_time(&row.time, item.time);
    }
    match (&item.delivery, &row.error) {
        (Delivery::Failed(reason), None) => {
            let text = "Not delivered: ".to_owned() + reason;
            row.error = dom::text_child(
                &row.li,
                "p",
                &[("class", "error"), ("data-testid", "message-error")],
                &text,
            )
            .ok();
        }
        (Delivery::Failed(_), Some(_)) => {}
        (_, Some(e)) => {
            e.remove();
            row.error = None;
        }
        (_, None) => {}
    }
}

/// `<time datetime="ISO">HH:MM</time>` in local time.
fn set_time(el: &HtmlElement, ms: i64) {
    if ms.unsigned_abs() > 8_640_000_000_000_000 {
        return;
    }
    let _ = el.set_attribute("datetime", &iso_time(ms));
    let date = js_sys::Date::new(&(ms as f64).into());
    let mut text = String::with_capacity(5);
    push2(&mut text, date.get_hours());
    text.push(':');
    push2(&mut text, date.get_minutes());
    el.set_text_content(Some(&text));
}

fn push2(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (what `toISOString` gives for
/// years 0–9999), computed here to save two boundary crossings per line.
pub fn iso_time(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::with_capacity(24);
    let y = year.clamp(0, 9999) as u32;
    push2(&mut out, y / 100);
    push2(&mut out, y % 100);
    for (sep, n) in [
        ('-', month),
        ('-', day),
        ('T', rem / 3_600_000),
        (':', rem / 60_000 % 60),
        (':', rem / 1000 % 60),
    ] {
        out.push(sep);
        push2(&mut out, n as u32);
    }
    out.push('.');
    let milli = (rem % 1000) as u32;
    out.push(char::from(b'0' + (milli / 100) as u8));
    push2(&mut out, milli % 100);
    out.push('Z');
    out
}

fn first_non_empty<'a>(options: &[&'a str]) -> &'a str {
    options
        .iter()
        .copied()
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_time_matches_to_iso_string() {
        // The datetime attribute is exactly what Date.prototype.toISOString gives.
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::iso_time(1_700_000_060_000),
            "2023-11-14T22:14:20.000Z"
        );
        assert_eq!(super::iso_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(super::iso_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            super::iso_time(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
