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
        if other.credential == self.forgotten {
            // A tab wrote the record of the visitor just cleared before it heard of the clear:
            // stale. Remove it again rather than bring that visitor back.
            fx.push(Effect::ClearStorage);
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

#[cfg(test)]
mod tests {
    use super::super::tests::{conversation, live, send, sent_frames, text, welcome};
    use super::*;

    #[test]
    fn a_new_leader_reconnects_at_once_and_only_the_leader_blinks() {
        // A hidden follower with an unread agent line does not blink; when the leader's tab
        // closes and this one takes over, it reconnects without waiting and starts blinking.
        let mut s = live();
        assert_eq!(
            s.update(Msg::LeaderChanged { here: false }),
            vec![Effect::Connect]
        );
        for msg in [Msg::SocketOpened, welcome("cred"), conversation(0, false)] {
            s.update(msg);
        }
        s.update(Msg::VisibilityChanged { hidden: true });
        let fx = s.update(text(1, 1, Role::Agent, "psst"));
        assert!(fx.contains(&Effect::Emit(Event::UnreadCountChanged(1))));
        assert!(
            !fx.contains(&Effect::Blink(true)),
            "a follower does not blink"
        );
        let fx = s.update(Msg::LeaderChanged { here: true });
        assert_eq!(fx, vec![Effect::Blink(true), Effect::Connect]);
        assert_eq!(s.link, Link::Connecting);
        // Losing the lead again stops the blink here (the other tab blinks instead).
        let fx = s.update(Msg::LeaderChanged { here: false });
        assert_eq!(fx, vec![Effect::Blink(false)]);
    }

    #[test]
    fn a_tab_with_no_link_or_one_opening_ignores_a_new_leader() {
        // Offline: nothing to move; Connecting: the link opens through whoever leads.
        let mut s = State::new(Persisted::default(), "Agent");
        assert_eq!(s.update(Msg::LeaderChanged { here: false }), vec![]);
        s.update(Msg::LauncherClicked);
        assert_eq!(s.link, Link::Connecting);
        assert_eq!(s.update(Msg::LeaderChanged { here: true }), vec![]);
        // Backoff: the retry happens now, not after the timer.
        s.update(Msg::SocketClosed);
        assert_eq!(s.link, Link::Backoff);
        assert_eq!(
            s.update(Msg::LeaderChanged { here: false }),
            vec![Effect::Connect]
        );
    }

    #[test]
    fn another_tabs_answers_on_the_shared_connection_change_nothing_but_resends() {
        // Every tab sees every frame of the one connection. Another tab's `conversation`
        // (its resume) only makes a live tab resend what it has pending (the server drops
        // duplicates): no second ConversationOpened, no setContext again. A welcome no hello
        // of ours waits for is ignored.
        let mut s = live();
        s.update(send(1, "hi"));
        let fx = s.update(conversation(0, false));
        assert_eq!(fx.len(), 1, "{fx:?}");
        assert!(matches!(
            &sent_frames(&fx)[..],
            [ToServer::SendMessage { text, .. }] if text == "hi"
        ));
        let mut off = State::new(Persisted::default(), "Agent");
        assert_eq!(off.update(welcome("cred")), vec![]);
        assert_eq!(off.link, Link::Offline);
        off.update(Msg::LauncherClicked);
        off.update(Msg::SocketClosed);
        assert_eq!(off.update(welcome("cred")), vec![]);
        assert_eq!(off.link, Link::Backoff);
    }
}
