//! Other tabs and what the visitor has read: one conversation, one unread count, one
//! connection and one title blink per browser (part of `State::update`).

use super::*;

impl State {
    /// Another tab created an identity or a conversation first: use the same one (one visitor,
    /// one thread across tabs) instead of creating a second.
    pub(super) fn adopt(&mut self, other: Persisted, fx: &mut Vec<Effect>) {
        if other.v != 1 || self.conversation_id.is_some() || other.credential.is_none() {
            return;
        }
        if other.conversation_id.is_none() && self.credential.is_some() {
            return;
        }
        self.end_user_id = other.end_user_id;
        self.credential = other.credential;
        self.conversation_id = other.conversation_id;
        self.stored_seq = other.last_seq;
        // Say hello again as that visitor and resume its conversation. A socket still
        // connecting says hello with the adopted credential anyway: dropping it would only
        // log a browser warning.
        if self.conversation_id.is_some()
            && matches!(self.link, Link::Handshaking | Link::Joining | Link::Live)
        {
            self.connect(fx);
        }
    }

    /// The visitor sees the window (it is open, the tab visible): everything so far is read.
    pub(crate) fn viewing(&self) -> bool {
        self.window == WindowState::Maximized && !self.page_hidden
    }

    /// Everything up to the newest line is read, here and (through the record) in other tabs.
    pub(super) fn mark_read(&mut self, fx: &mut Vec<Effect>) {
        if self.unread > 0 {
            self.unread = 0;
            fx.push(Effect::Emit(Event::UnreadCountChanged(0)));
        }
        if self.max_seq > self.read_seq {
            self.read_seq = self.max_seq;
            fx.push(Effect::Persist);
        }
    }

    /// Another tab showed lines to the visitor: they are read here too (one unread count).
    pub(super) fn read_elsewhere(&mut self, other: &Persisted, fx: &mut Vec<Effect>) {
        if other.v != 1
            || other.conversation_id != self.conversation_id
            || other.read_seq <= self.read_seq
        {
            return;
        }
        self.read_seq = other.read_seq;
        let unread = self
            .items
            .iter()
            .filter(|i| {
                matches!(i.role, Role::Agent | Role::Chatbot)
                    && matches!(i.body, Body::Text(_))
                    && i.seq.is_some_and(|s| s > self.read_seq)
            })
            .count() as u32;
        if unread != self.unread {
            self.unread = unread;
            fx.push(Effect::Emit(Event::UnreadCountChanged(unread)));
        }
        if unread == 0 && self.blinking {
            self.blinking = false;
            self.title_flash = false;
            fx.push(Effect::Blink(false));
        }
    }

    /// The tab holding the browser's one connection changed (`src/link.js`). Our link went
    /// through the old leader (or is this tab's own now): reconnect at once instead of waiting
    /// for the heartbeat; what is pending goes out again once the conversation is back. Only
    /// the leader blinks the title.
    pub(super) fn leader_changed(&mut self, here: bool, fx: &mut Vec<Effect>) {
        self.leader = here;
        if here {
            self.blink(fx);
        } else if self.blinking {
            self.blinking = false;
            self.title_flash = false;
            fx.push(Effect::Blink(false));
        }
        if matches!(
            self.link,
            Link::Handshaking | Link::Joining | Link::Live | Link::Backoff
        ) {
            self.connect(fx);
        }
    }
}
