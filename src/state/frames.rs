//! Frames from the server: handshake, conversation, acks, errors (part of `State::update`).

use super::*;

impl State {
    pub(super) fn frame(&mut self, frame: ToVisitor, fx: &mut Vec<Effect>) {
        match frame {
            ToVisitor::IdentityTokenExpired { .. } => {
                self.token_expired = true;
                fx.push(Effect::Emit(Event::IdentityTokenExpired));
            }
            ToVisitor::Welcome {
                end_user_id,
                credential,
                conversation_id,
                ..
            } => {
                if matches!(self.link, Link::Joining | Link::Live) {
                    // The answer to `identify`: same visitor, same conversation, carry on.
                    self.token_expired = false;
                    return;
                }
                if self.link != Link::Handshaking {
                    // Another tab's welcome on the shared connection: no hello of ours is waiting.
                    return;
                }
                // Verified: the token is the credential; nothing secret is stored.
                let credential = Some(credential).filter(|c| !c.is_empty());
                if self.conversation_id.is_none() {
                    // The visitor's open conversation (from another browser, when verified).
                    self.conversation_id = conversation_id;
                }
                if self.end_user_id != Some(end_user_id) || self.credential != credential {
                    self.end_user_id = Some(end_user_id);
                    self.credential = credential;
                    fx.push(Effect::Persist);
                }
                if !self.welcomed_once {
                    self.welcomed_once = true;
                    fx.push(Effect::Emit(Event::InitSuccess));
                }
                self.link = Link::Joining;
                self.join(fx);
            }
            ToVisitor::Conversation {
                conversation_id,
                status,
                last_seq,
                created,
                replay_to,
            } => {
                if Some(conversation_id) != self.conversation_id {
                    return;
                }
                // A replay of one page: once it is here, resume again for the next.
                self.replay_to = replay_to;
                if self.link == Link::Live {
                    // Another tab's resume on the shared connection (state/tabs.rs): that tab
                    // may have lost frames in a hand-over, so ours might have been lost too.
                    self.resend_pending(conversation_id, fx);
                    return;
                }
                self.link = Link::Live;
                self.was_live = true;
                self.attempt = 0;
                self.session = Some(status);
                self.live_after = last_seq.max(self.max_seq);
                if created {
                    fx.push(Effect::Emit(Event::ConversationStarted(conversation_id)));
                }
                if !self.opened_fired {
                    self.opened_fired = true;
                    fx.push(Effect::Emit(Event::ConversationOpened));
                }
                self.send_context(fx);
                self.resend_pending(conversation_id, fx);
            }
            ToVisitor::Entry { entry } => {
                self.entry(entry, fx);
                if let (Some(to), Some(conversation_id)) = (self.replay_to, self.conversation_id)
                    && self.resume_after() >= to
                {
                    self.replay_to = None;
                    fx.push(Effect::Send(ToServer::Resume {
                        conversation_id,
                        after_seq: self.resume_after(),
                    }));
                }
            }
            ToVisitor::History {
                conversation_id,
                entries,
            } => {
                if Some(conversation_id) != self.conversation_id {
                    return;
                }
                self.history_pending = false;
                // Older lines go in above the shown ones, and stay shown.
                let before = self.items.len();
                for entry in entries {
                    self.entry(entry, fx);
                }
                self.shown += self.items.len() - before;
            }
            ToVisitor::Ack {
                conversation_id,
                entry_id,
                seq,
            } => {
                if Some(conversation_id) == self.conversation_id {
                    self.ack(entry_id, seq, fx);
                }
            }
            ToVisitor::Error(err) => self.error(err, fx),
            ToVisitor::Typing {
                conversation_id,
                sender_display_name,
                typing,
                ..
            } => {
                if Some(conversation_id) == self.conversation_id {
                    self.other_typing = typing.then_some(sender_display_name);
                }
            }
            ToVisitor::Read {
                conversation_id,
                seq,
            } => {
                if Some(conversation_id) != self.conversation_id || seq <= self.agent_read {
                    return;
                }
                // Only lines already shown: a resume's `read` comes before the replay, so a
                // reload does not announce old reads again (SPEC section 3.3).
                for item in &self.items {
                    if item.role == Role::EndUser
                        && item.seq.is_some_and(|s| s > self.agent_read && s <= seq)
                    {
                        let entry = entry_of(item, conversation_id);
                        fx.push(Effect::Emit(Event::MessageRead(entry)));
                    }
                }
                self.agent_read = seq;
            }
            ToVisitor::Pong | ToVisitor::Unknown => {}
        }
    }

    /// The `rate_limited` wait is over: send again what the server may have refused, each
    /// idempotent (a second `hello` is only sent while the first is unanswered).
    pub(super) fn limit_passed(&mut self, fx: &mut Vec<Effect>) {
        if !std::mem::replace(&mut self.throttled, false) {
            return; // a new connection since; it starts afresh
        }
        match (self.link, self.conversation_id) {
            (Link::Handshaking, _) => fx.push(self.hello()),
            // A refused `createConversation` is resumed: `not_found` then creates it anew.
            (Link::Joining, _) => self.join(fx),
            (Link::Live, Some(conversation_id)) => {
                self.send_context(fx);
                self.resend_pending(conversation_id, fx);
            }
            _ => {}
        }
    }

    /// Resend whatever is still pending: the server deduplicates by entry id. Not while a
    /// `rate_limited` wait runs: they go when it is over.
    pub(super) fn resend_pending(&self, conversation_id: ConversationId, fx: &mut Vec<Effect>) {
        if self.throttled {
            return;
        }
        for item in self
            .items
            .iter()
            .filter(|i| i.delivery == Delivery::Pending)
        {
            fx.push(Effect::Send(send_frame(conversation_id, Some(item))));
        }
    }

    /// After `welcome`: resume the conversation we have, or ask for an id to create one.
    pub(super) fn join(&mut self, fx: &mut Vec<Effect>) {
        match self.conversation_id {
            Some(conversation_id) => fx.push(Effect::Send(ToServer::Resume {
                conversation_id,
                after_seq: self.resume_after(),
            })),
            // The pre-chat form creates it once submitted (state/prechat.rs).
            None if self.prechat_shown() => {}
            None => fx.push(Effect::NewConversationId),
        }
    }

    pub(super) fn error(&mut self, err: em_protocol::ErrorFrame, fx: &mut Vec<Effect>) {
        if err.code == ErrorCode::RateLimited {
            // Nothing was done and nothing is wrong with the frame: a refused message stays
            // pending (it is not failed) and everything goes again once the wait is over.
            if !self.throttled {
                self.throttled = true;
                let delay_ms = err.retry_after_ms.unwrap_or(1000).clamp(50, 60_000) as u32;
                fx.push(Effect::WaitForLimit { delay_ms });
            }
            return;
        }
        if let Some(entry_id) = err.entry_id {
            if err.code == ErrorCode::Internal {
                // The server failed, not the message: it stays pending and is resent on reconnect.
                fx.push(Effect::Warn(
                    "the server could not store a message yet; it will be resent: ".to_owned()
                        + &err.message,
                ));
                return;
            }
            if let Some(i) = self.index_of(entry_id)
                && self.items[i].delivery != Delivery::Sent
            {
                self.items[i].delivery = Delivery::Failed(err.message.clone());
                self.touch(i);
                fx.push(Effect::PersistOutbox);
            }
            if err.code == ErrorCode::ConversationEnded {
                // Say so and offer a new conversation (a retry then goes there).
                self.session = Some(SessionStatus::Ended);
                self.agent = None;
            }
            fx.push(Effect::Warn("message not sent: ".to_owned() + &err.message));
            return;
        }
        match err.code {
            ErrorCode::Unauthorized => {
                // The stored identity is gone or not ours: start over as a new visitor.
                self.forget_identity();
                fx.push(Effect::Persist);
                self.link = Link::Handshaking;
                fx.push(self.hello());
            }
            ErrorCode::IdentityRequired | ErrorCode::IdentityInvalid => self.identity_refused(
                "userVerificationAPI.setIdentityToken: the server refused the identity token: "
                    .to_owned()
                    + &err.message
                    + ". Set a valid one with setIdentityToken.",
                false,
                fx,
            ),
            ErrorCode::IdentityExpired => self.identity_refused(
                "the identity token expired and no fresh one was set in time; the session was cleared. Call userVerificationAPI.setIdentityToken with a new token.".into(),
                true,
                fx,
            ),
            ErrorCode::UnsupportedVersion => {
                // The server will close; reconnecting cannot help.
                self.link = Link::Offline;
                fx.push(Effect::Warn(
                    "the messaging server speaks another protocol version; update the widget. Not reconnecting.".into(),
                ));
            }
            ErrorCode::NotFound | ErrorCode::Conflict if self.link == Link::Joining => {
                self.forget_conversation();
                fx.push(Effect::Persist);
                self.join(fx);
            }
            _ => fx.push(Effect::Warn("server error: ".to_owned() + &err.message)),
        }
    }

    pub(super) fn forget_identity(&mut self) {
        self.end_user_id = None;
        self.credential = None;
        self.forget_conversation();
    }

    /// Drop the conversation and its lines; lines still pending move to the next one.
    pub(super) fn forget_conversation(&mut self) {
        self.conversation_id = None;
        self.set_menu(None);
        self.session = None;
        self.agent = None;
        self.items
            .retain(|i| i.seq.is_none() && i.delivery == Delivery::Pending);
        self.seen.clear();
        self.replay_to = None;
        self.history_pending = false;
        self.max_seq = 0;
        self.agent_read = 0;
        self.stored_seq = 0;
        self.live_after = u64::MAX;
        self.epoch = self.epoch.wrapping_add(1);
        self.dirty = self.items.iter().filter(|i| i.dirty).count();
    }

    pub(super) fn ack(&mut self, entry_id: EntryId, seq: u64, fx: &mut Vec<Effect>) {
        let Some(i) = self.index_of(entry_id) else {
            return;
        };
        self.touch(i);
        if self.items[i].seq.is_none() {
            let mut item = self.items.remove(i);
            item.seq = Some(seq);
            item.delivery = Delivery::Sent;
            self.place(item);
            self.note_seq(seq, fx);
            fx.push(Effect::PersistOutbox);
        } else if self.items[i].delivery != Delivery::Sent {
            self.items[i].delivery = Delivery::Sent;
        }
        let conversation_id = self.conversation_id;
        let item = self.index_of(entry_id).map(|i| &mut self.items[i]);
        if let (Some(item), Some(conversation_id)) = (item, conversation_id)
            && !item.sent_event_fired
        {
            item.sent_event_fired = true;
            let entry = entry_of(item, conversation_id);
            // A resent message acknowledged after the resume's `read` that covers it.
            let read =
                (seq <= self.agent_read).then(|| Effect::Emit(Event::MessageRead(entry.clone())));
            fx.extend([
                Effect::Emit(Event::MessageSent(entry.clone())),
                Effect::Emit(Event::MessageDelivered(entry)),
            ]);
            fx.extend(read);
        }
    }

    /// Where a resume starts: after the unbroken run of seqs that begins at the lowest one
    /// handled (0 when none). Holding the conversation from seq 1, that is the highest `seq`
    /// up to which every entry has been handled, not `max_seq`: an entry overtaken by a later
    /// one before the connection dropped is asked for again instead of being lost (replayed
    /// entries already seen are ignored). Holding only a newest page (older ones not asked
    /// for yet), it is the end of that page's run: resuming from 0 would replay the newest
    /// page again and skip what came between it and now.
    pub(super) fn resume_after(&self) -> u64 {
        let Some(&first) = self.seen.first() else {
            return 0;
        };
        self.seen
            .iter()
            .zip(first..)
            .take_while(|&(&seen, n)| seen == n)
            .last()
            .map_or(0, |(&seen, _)| seen)
    }

    /// Scrolled to the top of everything shown: ask for the page before the oldest entry
    /// held, while older ones exist (the oldest held is above seq 1).
    pub(super) fn ask_history(&mut self, fx: &mut Vec<Effect>) {
        if let (Link::Live, Some(conversation_id), Some(&oldest), false) = (
            self.link,
            self.conversation_id,
            self.seen.first(),
            self.history_pending,
        ) && oldest > 1
        {
            self.history_pending = true;
            fx.push(Effect::Send(ToServer::History {
                conversation_id,
                before_seq: oldest,
            }));
        }
    }

    pub(super) fn note_seq(&mut self, seq: u64, fx: &mut Vec<Effect>) {
        if let Err(at) = self.seen.binary_search(&seq) {
            self.seen.insert(at, seq);
        }
        if seq > self.max_seq {
            self.max_seq = seq;
            if seq > self.stored_seq {
                fx.push(Effect::Persist);
            }
        }
    }
}

/// A line as a conversation entry (the `onEmbeddedMessageSent` / `…LinkClicked` detail).
pub(super) fn entry_of(item: &Item, conversation_id: ConversationId) -> ConversationEntry {
    let text = match &item.body {
        Body::Text(t) | Body::Notice(t) => t.clone(),
    };
    ConversationEntry {
        identifier: item.id,
        conversation_id,
        seq: item.seq.unwrap_or(0),
        sender: Participant {
            role: item.role,
            subject: item.sender_subject.clone(),
        },
        sender_display_name: item.sender_name.clone(),
        transcripted_timestamp: item.time,
        client_timestamp: item.client_time,
        entry_payload: EntryPayload::text(item.id, text),
    }
}
