//! The chat window in its open shadow root: header, transcript, composer, minimized bar, live
//! region, and the listeners that turn clicks and keys into `Msg`s.

use super::*;

/// The shadow root and everything in it.
pub(super) struct Win {
    pub(super) shadow: ShadowRoot,
    /// `shouldOpenLinksInSameTab`.
    pub(super) links_same_tab: bool,
    /// "End conversation", shown while a conversation is open.
    pub(super) end: HtmlElement,
    pub(super) input_enabled: bool,
    pub(super) window: HtmlElement,
    pub(super) status: HtmlElement,
    pub(super) list: HtmlElement,
    pub(super) input: HtmlTextAreaElement,
    pub(super) live: HtmlElement,
    pub(super) bar: HtmlElement,
    pub(super) composer: HtmlElement,
    pub(super) ended: HtmlElement,
    pub(super) bar_badge: HtmlElement,
    pub(super) templates: [HtmlElement; 3],
    /// Scrolls the transcript to its end at the next frame (one layout per frame, not per line).
    pub(super) scroll_to_end: Closure<dyn FnMut()>,
    pub(super) raf: Option<i32>,
    pub(super) unread: u32,
    pub(super) ended_shown: bool,
    /// `State::shown` at the last render.
    pub(super) shown: usize,
    /// How many rows are in the DOM.
    pub(super) rendered: usize,
    /// Rendered lines by `Item::key`.
    pub(super) rows: Vec<Option<Row>>,
    /// The active quick replies: their line and their group of buttons.
    pub(super) menu: Option<(u32, HtmlElement)>,
    pub(super) epoch: u32,
    pub(super) window_shown: Option<WindowState>,
    pub(super) status_text: String,
    /// The pre-chat form, built when first shown (view/prechat.rs).
    pub(super) prechat: Option<super::prechat::Form>,
    pub(super) dispatch: Dispatch,
    pub(super) _listeners: Vec<EventListener>,
}

impl Win {
    pub(super) fn new(
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
        let end = dom::text_child(
            &header,
            "button",
            &[
                ("type", "button"),
                ("class", "end-btn"),
                ("data-testid", "end-conversation"),
                ("aria-label", "End conversation"),
                ("hidden", ""),
            ],
            "End",
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
        if cfg.inline {
            // Inline, the window is part of the page: nothing to minimize or close.
            dom::set_flag(&host, "data-inline", true);
            dom::set_hidden(&minimize, true);
            dom::set_hidden(&close, true);
        }

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
        listeners.push(EventListener::new(&end, "click", move |_| {
            d(Msg::EndConversationClicked)
        }));
        let (d, field) = (dispatch.clone(), input.clone());
        listeners.push(EventListener::new(&input, "input", move |_| {
            d(Msg::Typing(!field.value().trim().is_empty()))
        }));
        let d = dispatch.clone();
        listeners.push(EventListener::new(&new_conversation, "click", move |_| {
            d(Msg::NewConversationClicked)
        }));
        let d = dispatch.clone();
        listeners.push(EventListener::new(&list, "click", move |e| {
            let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
                return;
            };
            if let Some(entry_id) = retry_target(&target) {
                d(Msg::RetryClicked { entry_id });
            } else if let Some((entry_id, link)) = link_target(&target) {
                d(Msg::LinkClicked { entry_id, link });
            } else if let Ok(Some(choice)) = target.closest("[data-testid=quick-reply]") {
                let (entry_id, now) = crate::view::fresh_entry();
                d(Msg::ChoiceClicked {
                    title: choice.get_attribute("value").unwrap_or_default(),
                    entry_id,
                    now,
                });
            }
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
            links_same_tab: cfg.links_same_tab,
            end,
            input_enabled: true,
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
            menu: None,
            epoch: 0,
            window_shown: None,
            status_text: String::new(),
            prechat: None,
            dispatch: dispatch.clone(),
            _listeners: listeners,
        })
    }

    /// Bring the window up to date with `state` (only what changed is touched).
    pub(super) fn render(&mut self, state: &mut State) {
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
        // The pre-chat form (view/prechat.rs) stands in for the composer until submitted.
        if self.prechat.is_none()
            && state.prechat_shown()
            && let Some(body) = self.list.parent_element()
        {
            let form = super::prechat::Form::new(&body, &state.prechat.form, &self.dispatch);
            self.prechat = Some(form);
        }
        if let Some(form) = &mut self.prechat
            && form.render(state)
        {
            dom::set_hidden(&self.composer, ended || form.shown);
        }
        dom::set_hidden(&self.end, ended || !state.conversation_open());
        let enabled = state.input_enabled();
        if self.input_enabled != enabled {
            self.input_enabled = enabled;
            dom::set_flag(&self.input, "disabled", !enabled);
        }

        // The transcript is patched only while it can be seen (a hidden window costs nothing).
        if state.window == WindowState::Maximized || state.epoch != self.epoch {
            scroll |= self.render_lines(state);
            self.render_menu(state);
        }
        if scroll && state.window == WindowState::Maximized {
            self.request_scroll();
        }
    }
}

impl Drop for Win {
    fn drop(&mut self) {
        if let (Some(id), Some(window)) = (self.raf.take(), web_sys::window()) {
            let _ = window.cancel_animation_frame(id);
        }
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

/// The entry and URL of a clicked link in a message (the browser follows it as usual).
fn link_target(target: &Element) -> Option<(EntryId, String)> {
    let a = target.closest("a[href]").ok()??;
    let id = a.closest("li").ok()??.get_attribute("data-entry-id")?;
    Some((
        EntryId(Uuid::try_parse(&id).ok()?),
        a.get_attribute("href")?,
    ))
}

/// The entry whose retry button was clicked, if that is what the click was on.
fn retry_target(target: &Element) -> Option<EntryId> {
    let button = target.closest("[data-testid=message-retry]").ok()??;
    let id = button.closest("li").ok()??.get_attribute("data-entry-id")?;
    Some(EntryId(Uuid::try_parse(&id).ok()?))
}

/// The composer's text as a `SendClicked` with a fresh entry id and the current time.
fn submit(field: &HtmlTextAreaElement) -> Msg {
    let (entry_id, now) = crate::view::fresh_entry();
    Msg::SendClicked {
        text: field.value(),
        entry_id,
        now,
    }
}
