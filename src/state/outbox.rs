//! The visitor's own messages: pending lines, the persisted outbox, retry, and a new
//! conversation after an ended one (part of `State::update`).

use super::*;

impl State {
    /// Put back the messages a previous page (or tab) left unsent: pending ones go out once
    /// the conversation is live, failed ones keep their reason and retry button.
    pub fn restore_outbox(&mut self, outbox: Vec<Outgoing>) {
        for o in outbox {
            if o.text.trim().is_empty() || self.index_of(o.id).is_some() {
                continue;
            }
            self.push_own(o);
        }
    }

    /// The messages not yet stored by the server, in the order they were written.
    pub fn outbox(&self) -> Vec<Outgoing> {
        self.items
            .iter()
            .filter(|i| i.seq.is_none() && i.delivery != Delivery::Sent)
            .filter_map(|i| match &i.body {
                Body::Text(text) => Some(Outgoing {
                    id: i.id,
                    text: text.clone(),
                    time: i.client_time.unwrap_or(i.time),
                    failed: match &i.delivery {
                        Delivery::Failed(why) => Some(why.clone()),
                        _ => None,
                    },
                }),
                Body::Notice(_) => None,
            })
            .collect()
    }

    /// Add a pending message and send it when possible; false when there is nothing to send.
    pub(super) fn send_text(
        &mut self,
        text: String,
        entry_id: EntryId,
        now: i64,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let text = text.trim();
        if text.is_empty() || self.index_of(entry_id).is_some() {
            return false;
        }
        self.set_menu(None);
        self.push_own(Outgoing {
            id: entry_id,
            text: text.to_owned(),
            time: now,
            failed: None,
        });
        fx.push(Effect::PersistOutbox);
        if self.session == Some(SessionStatus::Ended) {
            // The conversation is over: this message starts the next one.
            self.new_conversation(fx);
        } else {
            self.send_last(fx);
        }
        true
    }

    /// A line for the visitor's own message, pending (or failed) at the end.
    pub(super) fn push_own(&mut self, o: Outgoing) {
        let key = self.new_key();
        self.items.push(Item {
            key,
            id: o.id,
            seq: None,
            role: Role::EndUser,
            sender_name: String::new(),
            sender_subject: self
                .end_user_id
                .map(|u| crate::wire::id_string(&u.0))
                .unwrap_or_default(),
            body: Body::Text(o.text),
            time: o.time,
            client_time: Some(o.time),
            delivery: match o.failed {
                Some(why) => Delivery::Failed(why),
                None => Delivery::Pending,
            },
            sent_event_fired: false,
            dirty: false,
        });
        self.touch(self.items.len() - 1);
    }

    /// Send the last line now if the conversation is live; otherwise it waits in the outbox
    /// (and an idle widget starts connecting).
    pub(super) fn send_last(&mut self, fx: &mut Vec<Effect>) {
        match (self.link, self.conversation_id) {
            // During a `rate_limited` wait it stays pending; `limit_passed` sends it.
            (Link::Live, Some(_)) if self.throttled => {}
            (Link::Live, Some(conversation_id)) => {
                fx.push(Effect::Send(send_frame(conversation_id, self.items.last())));
            }
            (Link::Offline, _) => self.connect(fx),
            _ => {} // goes out once the conversation is live
        }
    }

    /// Leave the ended conversation; pending lines move to a new one.
    pub(super) fn new_conversation(&mut self, fx: &mut Vec<Effect>) {
        self.forget_conversation();
        self.opened_fired = false;
        self.prechat_again();
        fx.push(Effect::Persist);
        match self.link {
            Link::Live => {
                self.link = Link::Joining;
                self.join(fx);
            }
            Link::Offline => self.connect(fx),
            _ => {} // joins once welcomed
        }
    }

    /// Send a failed message again (in a new conversation if this one has ended).
    pub(super) fn retry(&mut self, entry_id: EntryId, fx: &mut Vec<Effect>) {
        let Some(i) = self.index_of(entry_id) else {
            return;
        };
        if !matches!(self.items[i].delivery, Delivery::Failed(_)) {
            return;
        }
        self.items[i].delivery = Delivery::Pending;
        self.touch(i);
        fx.push(Effect::PersistOutbox);
        if self.session == Some(SessionStatus::Ended) {
            self.new_conversation(fx);
        } else if let (Link::Live, Some(conversation_id)) = (self.link, self.conversation_id) {
            fx.push(Effect::Send(send_frame(conversation_id, self.items.get(i))));
        } else if self.link == Link::Offline {
            self.connect(fx);
        }
    }
}
