//! Conversation entries → lines: dedupe by seq, echo of own messages, ordering, events.

use super::*;

impl State {
    pub(super) fn entry(&mut self, mut entry: ConversationEntry, fx: &mut Vec<Effect>) {
        if Some(entry.conversation_id) != self.conversation_id {
            return;
        }
        let seq = entry.seq;
        let live = seq > self.live_after;
        if entry.sender.role != Role::EndUser {
            // Whoever was typing has said it.
            self.other_typing = None;
        }
        if self.seen.binary_search(&seq).is_ok() {
            // The same seq twice; or the echo of our message after its ack: take the server time.
            let at = self
                .items
                .partition_point(|i| matches!(i.seq, Some(s) if s < seq));
            if let Some(item) = self.items.get_mut(at)
                && item.id == entry.identifier
                && item.time != entry.transcripted_timestamp
            {
                item.time = entry.transcripted_timestamp;
                self.touch(at);
            }
            return;
        }
        // Our own pending message coming back: the same line, now sent (no duplicate).
        let pending = self
            .items
            .iter()
            .rev()
            .take_while(|i| i.seq.is_none())
            .position(|i| i.id == entry.identifier);
        if let Some(back) = pending {
            let mut item = self.items.remove(self.items.len() - 1 - back);
            item.seq = Some(seq);
            item.time = entry.transcripted_timestamp;
            item.delivery = Delivery::Sent;
            self.place(item);
            self.note_seq(seq, fx);
            fx.push(Effect::PersistOutbox);
            return;
        }
        self.note_seq(seq, fx);
        let name = if entry.sender_display_name.is_empty() {
            match entry.sender.role {
                Role::Agent => self.agent_fallback_name.clone(),
                _ => String::new(),
            }
        } else {
            entry.sender_display_name.clone()
        };
        // Quick replies are moved out of the entry (no copy); its text stays.
        let options = match &mut entry.entry_payload {
            EntryPayload::Message {
                abstract_message: AbstractMessage::ChoicesMessage { choices, .. },
            } => Some(std::mem::take(&mut choices.option_items)),
            _ => None,
        };
        let body = match &entry.entry_payload {
            EntryPayload::Message { abstract_message } => match abstract_message {
                AbstractMessage::StaticContentMessage {
                    static_content: StaticContent::Text { text },
                    ..
                }
                | AbstractMessage::ChoicesMessage {
                    choices: Choices { text, .. },
                    ..
                } => {
                    if live && matches!(entry.sender.role, Role::Agent | Role::Chatbot) {
                        fx.push(Effect::Announce(if name.is_empty() {
                            text.to_owned()
                        } else {
                            name.clone() + ": " + text
                        }));
                        if entry.sender.role == Role::Chatbot && !self.first_bot_fired {
                            self.first_bot_fired = true;
                            fx.push(Effect::Emit(Event::FirstBotMessageSent));
                        }
                    }
                    if matches!(entry.sender.role, Role::Agent | Role::Chatbot)
                        && seq > self.read_seq
                    {
                        // Unread unless seen now; replayed lines count too (the visitor
                        // comes back to replies written while the tab was closed).
                        if self.viewing() {
                            self.read_seq = seq;
                            fx.push(Effect::Persist);
                        } else {
                            self.unread += 1;
                            fx.push(Effect::Emit(Event::UnreadCountChanged(self.unread)));
                            self.blink(fx);
                        }
                    }
                    if entry.sender.role == Role::EndUser {
                        // Answered (in another tab, or before a reload).
                        self.set_menu(None);
                    }
                    Some(Body::Text(text.to_owned()))
                }
                _ => None,
            },
            EntryPayload::ParticipantChanged { entries } => {
                let mut line = None;
                for change in entries {
                    if !matches!(change.participant.role, Role::Agent | Role::Chatbot) {
                        continue;
                    }
                    let who = if change.display_name.is_empty() {
                        self.agent_fallback_name.clone()
                    } else {
                        change.display_name.clone()
                    };
                    self.bot_leads = change.participant.role == Role::Chatbot
                        && change.operation == ParticipantOperation::Add;
                    match change.operation {
                        ParticipantOperation::Add => {
                            self.queue_position = None;
                            self.agent = Some(who.clone());
                            line = Some(who + " joined");
                        }
                        ParticipantOperation::Remove => {
                            if self.agent.as_deref() == Some(&who) {
                                self.agent = None;
                            }
                            line = Some(who + " left");
                        }
                    }
                }
                if live {
                    fx.push(Effect::Emit(Event::ParticipantChanged(entry.clone())));
                }
                line.filter(|_| self.participant_lines).map(Body::Notice)
            }
            EntryPayload::SessionStatusChanged { session_status } => {
                self.session = Some(*session_status);
                if live {
                    fx.push(Effect::Emit(Event::SessionStatusUpdate(entry.clone())));
                }
                if *session_status == SessionStatus::Ended {
                    self.agent = None;
                    if live {
                        fx.push(Effect::Emit(Event::ConversationClosed(entry.clone())));
                    }
                    Some(Body::Notice("Conversation ended".into()))
                } else {
                    None
                }
            }
            EntryPayload::RoutingResult {
                estimated_wait_time,
                ..
            } => {
                // The latest place in the queue (`QueueUpdate`s follow as it moves).
                self.queue_position = estimated_wait_time.map(|w| w.position);
                if live {
                    fx.push(Effect::Emit(Event::ConversationRouted(entry.clone())));
                }
                None
            }
            EntryPayload::Unknown => None,
        };
        let Some(body) = body else { return };
        let key = self.new_key();
        if options.is_some() {
            self.set_menu(options.map(|o| (key, o)));
        }
        self.place(Item {
            key,
            id: entry.identifier,
            seq: Some(seq),
            role: entry.sender.role,
            sender_name: name,
            sender_subject: entry.sender.subject,
            body,
            time: entry.transcripted_timestamp,
            client_time: entry.client_timestamp,
            delivery: Delivery::Sent,
            sent_event_fired: true,
            dirty: false,
        });
    }

    /// Replace the active quick replies (one copy of their drop code).
    #[inline(never)]
    pub(super) fn set_menu(&mut self, menu: Option<(u32, Vec<OptionItem>)>) {
        self.menu = menu;
    }

    pub(super) fn new_key(&mut self) -> u32 {
        self.next_key += 1;
        self.next_key - 1
    }

    /// Insert a (new or changed) line at its place: by `seq`, pending ones last.
    pub(super) fn place(&mut self, item: Item) {
        let at = match item.seq {
            Some(seq) => self
                .items
                .partition_point(|i| matches!(i.seq, Some(s) if s < seq)),
            None => self.items.len(),
        };
        self.items.insert(at, item);
        self.touch(at);
    }

    /// Where the line with this id is in `items`.
    /// (Scans from the end, where the visitor's recent messages are.)
    pub fn index_of(&self, id: EntryId) -> Option<usize> {
        self.items.iter().rposition(|i| i.id == id)
    }
}
