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

mod lines;
mod prechat;
mod window;

use lines::{Row, row_templates};
use window::Win;

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
    /// `displayMode: 'inline'`: the window fills the mount element; no floating button.
    pub inline: bool,
    /// `shouldOpenLinksInSameTab`.
    pub links_same_tab: bool,
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
    window_shown: Option<(WindowState, bool, bool)>,
    /// The page's own title while ours blinks in its place.
    page_title: Option<String>,
    unread: u32,
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
                (
                    "class",
                    if cfg.inline {
                        "embedded-messaging-inline"
                    } else {
                        "embedded-messaging"
                    },
                ),
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
            page_title: None,
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
        let shown = (state.window, state.launcher_hidden(), state.closed());
        if self.window_shown != Some(shown) {
            self.window_shown = Some(shown);
            dom::set_hidden(&self.launcher, shown.1);
            // Outside business hours (with `outside_hours = "offline"`): marked, still usable
            // (a message waits in the thread for the agents).
            dom::set_flag(&self.launcher, "data-offline", shown.2);
            if shown.2 {
                let _ = self
                    .launcher
                    .set_attribute("aria-description", "Offline: agents reply later");
            } else {
                let _ = self.launcher.remove_attribute("aria-description");
            }
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
        self.blink_title(state);
        if state.window != WindowState::Closed || self.win.is_some() {
            match self.win() {
                Ok(win) => win.render(state),
                Err(e) => crate::console::error(
                    &("cannot build the chat window: ".to_owned() + e.message()),
                ),
            }
        }
    }

    /// While the tab is hidden with unread messages, the title alternates with the count.
    fn blink_title(&mut self, state: &State) {
        match (state.title_flash, self.page_title.is_some()) {
            (true, false) => {
                self.page_title = Some(self.doc.title());
                let n = crate::json::int_string(i64::from(state.unread));
                let noun = if state.unread == 1 {
                    ") New message"
                } else {
                    ") New messages"
                };
                self.doc.set_title(&("(".to_owned() + &n + noun));
            }
            (false, true) => {
                if let Some(title) = self.page_title.take() {
                    self.doc.set_title(&title);
                }
            }
            _ => {}
        }
    }

    pub fn focus_input(&mut self) {
        if let Some(win) = &self.win
            // The pre-chat form, while it stands in for the composer.
            && !win.prechat.as_ref().is_some_and(|f| f.focus())
        {
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
        if let Some(title) = self.page_title.take() {
            self.doc.set_title(&title);
        }
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

/// A new visitor message's id and client time (one copy of the UUID and clock calls).
#[inline(never)]
pub fn fresh_entry() -> (EntryId, i64) {
    (EntryId(Uuid::new_v4()), js_sys::Date::now() as i64)
}

fn first_non_empty<'a>(options: &[&'a str]) -> &'a str {
    options
        .iter()
        .copied()
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}
