//! What the page and the visitor tell the agent besides messages: pre-chat and hidden fields,
//! session context, auto-response parameters and the page, sent as one `setContext` (part of
//! `State::update`). The server merges, so sending the whole context again is always safe.
//! (Written straight from these pairs by `wire::write_context`: building the protocol's
//! `BTreeMap`s would add B-tree and sort code to the wasm.)

use em_protocol::agent::PageContext;

use super::*;

/// Which part of the context a page call or the pre-chat form changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextKind {
    /// The visible pre-chat form's values (`prechatAPI.setVisiblePrechatFields` prefills).
    Prechat,
    /// `prechatAPI.setHiddenPrechatFields`.
    Hidden,
    /// `utilAPI.setSessionContext`.
    Session,
    /// `autoResponseAPI.setAutoResponseParameters`.
    AutoResponse,
}

/// The context, as the widget will send it. Pairs keep the page's order; a key set twice
/// keeps the newest value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub prechat: Vec<(String, String)>,
    pub hidden: Vec<(String, String)>,
    pub session: Vec<(String, String)>,
    pub auto_response: Vec<(String, String)>,
    /// Where the visitor chats from (set once by the edge at boot).
    pub page: Option<PageContext>,
}

impl Context {
    fn part(&mut self, kind: ContextKind) -> &mut Vec<(String, String)> {
        match kind {
            ContextKind::Prechat => &mut self.prechat,
            ContextKind::Hidden => &mut self.hidden,
            ContextKind::Session => &mut self.session,
            ContextKind::AutoResponse => &mut self.auto_response,
        }
    }

    /// Set `pairs` (overwriting those keys) and drop `remove`. True when anything changed.
    pub fn change(
        &mut self,
        kind: ContextKind,
        pairs: Vec<(String, String)>,
        remove: &[String],
    ) -> bool {
        let part = self.part(kind);
        let before = part.clone();
        part.retain(|(k, _)| !remove.contains(k));
        for (key, value) in pairs {
            match part.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => part.push((key, value)),
            }
        }
        *part != before
    }

    pub fn is_empty(&self) -> bool {
        self.prechat.is_empty()
            && self.hidden.is_empty()
            && self.session.is_empty()
            && self.auto_response.is_empty()
            && self.page.is_none()
    }
}

impl State {
    /// Send the whole context to the open conversation (on joining, and on every change).
    pub(super) fn send_context(&self, fx: &mut Vec<Effect>) {
        if let (Link::Live, Some(id)) = (self.link, self.conversation_id)
            && !self.context.is_empty()
        {
            fx.push(Effect::SendContext(id));
        }
    }

    pub(super) fn change_context(
        &mut self,
        kind: ContextKind,
        pairs: Vec<(String, String)>,
        remove: &[String],
        fx: &mut Vec<Effect>,
    ) {
        if self.context.change(kind, pairs, remove) {
            self.send_context(fx);
        }
    }
}
