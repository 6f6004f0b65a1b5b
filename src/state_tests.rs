//! Native tests of `State::update`: every transition and the effects it asks for.

use super::*;
use em_protocol::{ErrorFrame, ParticipantChange};
use uuid::Uuid;

pub(super) fn cid(n: u128) -> ConversationId {
    ConversationId(Uuid::from_u128(n))
}
pub(super) fn eid(n: u128) -> EntryId {
    EntryId(Uuid::from_u128(0xE000 + n))
}
pub(super) fn uid() -> EndUserId {
    EndUserId(Uuid::from_u128(0xABC))
}
pub(super) const C: u128 = 1;

pub(super) fn frame(f: ToVisitor) -> Msg {
    Msg::FrameReceived(f)
}

pub(super) fn welcome(cred: &str) -> Msg {
    frame(ToVisitor::Welcome {
        protocol_version: 1,
        end_user_id: uid(),
        credential: cred.into(),
        conversation_id: None,
    })
}

pub(super) fn conversation(last_seq: u64, created: bool) -> Msg {
    frame(ToVisitor::Conversation {
        conversation_id: cid(C),
        status: SessionStatus::New,
        last_seq,
        created,
        replay_to: None,
    })
}

pub(super) fn entry(seq: u64, id: EntryId, role: Role, payload: EntryPayload) -> Msg {
    frame(ToVisitor::Entry {
        entry: ConversationEntry {
            identifier: id,
            conversation_id: cid(C),
            seq,
            sender: Participant {
                role,
                subject: "s".into(),
            },
            sender_display_name: if role == Role::Agent {
                "Ada".into()
            } else {
                String::new()
            },
            transcripted_timestamp: 1_000 + seq as i64,
            client_timestamp: None,
            entry_payload: payload,
        },
    })
}

pub(super) fn text(seq: u64, n: u128, role: Role, t: &str) -> Msg {
    entry(seq, eid(n), role, EntryPayload::text(eid(n), t))
}

pub(super) fn ack(n: u128, seq: u64) -> Msg {
    frame(ToVisitor::Ack {
        conversation_id: cid(C),
        entry_id: eid(n),
        seq,
    })
}

pub(super) fn send(n: u128, t: &str) -> Msg {
    Msg::SendClicked {
        text: t.into(),
        entry_id: eid(n),
        now: 500,
    }
}

pub(super) fn sent_frames(fx: &[Effect]) -> Vec<ToServer> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::Send(f) = e {
                Some(f.clone())
            } else {
                None
            }
        })
        .collect()
}

pub(super) fn events(fx: &[Effect]) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::Emit(ev) = e {
                Some(ev.clone())
            } else {
                None
            }
        })
        .collect()
}

pub(super) fn texts(s: &State) -> Vec<(Option<u64>, String, &'static str)> {
    s.items
        .iter()
        .map(|i| {
            let t = match &i.body {
                Body::Text(t) | Body::Notice(t) => t.clone(),
            };
            (i.seq, t, i.delivery.as_str())
        })
        .collect()
}

/// A state whose conversation `C` is live (stored identity, resumed).
pub(super) fn live() -> State {
    let mut s = State::new(
        Persisted {
            v: 1,
            end_user_id: Some(uid()),
            credential: Some("cred".into()),
            conversation_id: Some(cid(C)),
            last_seq: 0,
            read_seq: 0,
            window: WindowState::Maximized,
        },
        "Agent",
    );
    s.update(Msg::Booted);
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    s.update(conversation(0, false));
    s
}

#[test]
fn new_visitor_opens_window_and_creates_conversation() {
    // First visit: clicking the launcher opens the window, connects, says hello without a
    // credential, stores the welcome identity, creates a conversation and fires Started/Opened.
    let mut s = State::new(Persisted::default(), "Agent");
    assert_eq!(
        s.update(Msg::Booted),
        vec![],
        "no socket on boot without a conversation"
    );
    let fx = s.update(Msg::LauncherClicked);
    assert_eq!(
        events(&fx),
        vec![Event::ButtonClicked, Event::WindowMaximized]
    );
    assert!(
        fx.contains(&Effect::Connect)
            && fx.contains(&Effect::FocusInput)
            && fx.contains(&Effect::Persist)
    );
    assert_eq!(s.window, WindowState::Maximized);
    assert_eq!(s.status_text(), "Connecting…");

    let fx = s.update(Msg::SocketOpened);
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: None,
        }]
    );
    let fx = s.update(welcome("new-cred"));
    assert!(fx.contains(&Effect::NewConversationId) && fx.contains(&Effect::Persist));
    assert_eq!(events(&fx), vec![Event::InitSuccess]);
    assert_eq!(s.credential.as_deref(), Some("new-cred"));

    let fx = s.update(Msg::ConversationIdGenerated(cid(C)));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::CreateConversation {
            conversation_id: cid(C)
        }]
    );
    assert_eq!(s.persisted().conversation_id, Some(cid(C)));

    let fx = s.update(conversation(0, true));
    assert_eq!(
        events(&fx),
        vec![
            Event::ConversationStarted(cid(C)),
            Event::ConversationOpened
        ]
    );
    assert_eq!(s.link, Link::Live);
    assert_eq!(s.status_text(), "Send a message to start");
}

#[test]
fn returning_visitor_resumes_from_zero_and_reopens() {
    // A reload with a stored conversation connects on boot, reopens a maximized window and
    // resumes after seq 0 so the whole history is rendered again; Opened fires once per page.
    let mut s = State::new(
        Persisted {
            v: 1,
            end_user_id: Some(uid()),
            credential: Some("cred".into()),
            conversation_id: Some(cid(C)),
            last_seq: 9,
            read_seq: 9,
            window: WindowState::Maximized,
        },
        "Agent",
    );
    let fx = s.update(Msg::Booted);
    assert_eq!(
        fx,
        vec![Effect::Emit(Event::WindowMaximized), Effect::Connect]
    );
    let fx = s.update(Msg::SocketOpened);
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Hello {
            protocol_version: 1,
            credential: Some("cred".into()),
            identity_token: None,
        }]
    );
    let fx = s.update(welcome("cred"));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 0
        }]
    );
    assert!(
        !fx.contains(&Effect::Persist),
        "same identity: nothing to store"
    );
    let fx = s.update(conversation(9, false));
    assert_eq!(events(&fx), vec![Event::ConversationOpened]);
    assert_eq!(
        s.persisted().last_seq,
        9,
        "the stored lastSeq is kept until exceeded"
    );
}

#[test]
fn send_goes_pending_then_sent_on_ack() {
    // A sent message shows at once as pending, goes out as sendMessage, and the ack flips it
    // to sent with its seq and fires onEmbeddedMessageSent with the entry.
    let mut s = live();
    let fx = s.update(send(1, "  hello  "));
    assert!(fx.contains(&Effect::ClearInput));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::SendMessage {
            conversation_id: cid(C),
            entry_id: eid(1),
            text: "hello".into(),
            client_timestamp: 500
        }]
    );
    assert_eq!(texts(&s), vec![(None, "hello".into(), "pending")]);
    assert_eq!(s.take_dirty(), vec![0]);

    let fx = s.update(ack(1, 1));
    assert_eq!(texts(&s), vec![(Some(1), "hello".into(), "sent")]);
    let ev = events(&fx);
    assert_eq!(ev.len(), 2, "Sent, then Delivered (stored by the server)");
    assert_eq!(
        ev[1],
        Event::MessageDelivered(match &ev[0] {
            Event::MessageSent(e) => e.clone(),
            other => panic!("{other:?}"),
        })
    );
    let Event::MessageSent(e) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (e.identifier, e.seq, e.sender.role),
        (eid(1), 1, Role::EndUser)
    );
    assert_eq!(e.entry_payload.as_text(), Some("hello"));
    assert_eq!(e.client_timestamp, Some(500));
    assert_eq!(s.take_dirty(), vec![0]);
    assert!(fx.contains(&Effect::Persist), "lastSeq advanced");
    assert_eq!(s.persisted().last_seq, 1);
}

#[test]
fn empty_text_is_not_sent() {
    // Blank input adds nothing and sends nothing.
    let mut s = live();
    assert_eq!(s.update(send(1, " \n\t ")), vec![]);
    assert!(s.items.is_empty());
}

#[test]
fn echo_of_own_entry_replaces_pending_line() {
    // The server's echo of our own message (same identifier) becomes the same line, not a
    // second one, whether it arrives before or after the ack; the event fires once.
    let mut s = live();
    s.update(send(1, "hi"));
    let fx = s.update(text(1, 1, Role::EndUser, "hi"));
    assert!(events(&fx).is_empty());
    assert_eq!(texts(&s), vec![(Some(1), "hi".into(), "sent")]);
    assert_eq!(s.items[0].time, 1_001, "server time replaces client time");
    let fx = s.update(ack(1, 1));
    assert!(
        matches!(
            &events(&fx)[..],
            [Event::MessageSent(_), Event::MessageDelivered(_)]
        ),
        "onEmbeddedMessageSent and …Delivered on ack"
    );
    assert_eq!(s.items.len(), 1);
    let fx = s.update(text(1, 1, Role::EndUser, "hi"));
    assert!(events(&fx).is_empty());
    assert_eq!(s.items.len(), 1);
    let fx = s.update(ack(1, 1));
    assert!(events(&fx).is_empty(), "a repeated ack fires nothing");
}

#[test]
fn received_agent_message_is_rendered_and_announced() {
    // A live agent message becomes a line with the agent's name and is announced politely.
    let mut s = live();
    let fx = s.update(text(1, 7, Role::Agent, "How can I help?"));
    assert_eq!(
        fx,
        vec![
            Effect::Persist,
            Effect::Announce("Ada: How can I help?".into()),
            Effect::Persist
        ],
        "seen at once (the window is open): readSeq is stored for the other tabs"
    );
    assert_eq!(texts(&s), vec![(Some(1), "How can I help?".into(), "sent")]);
    assert_eq!(s.items[0].sender_name, "Ada");
    assert_eq!(s.items[0].role, Role::Agent);
}

#[test]
fn same_seq_twice_is_rendered_once() {
    // Dedupe by seq: a replayed entry (same seq, same id) adds nothing and re-renders nothing.
    let mut s = live();
    s.update(text(1, 7, Role::Agent, "a"));
    s.take_dirty();
    let fx = s.update(text(1, 7, Role::Agent, "a"));
    assert!(fx.is_empty());
    assert_eq!(s.items.len(), 1);
    assert!(s.take_dirty().is_empty());
}

#[test]
fn out_of_order_entries_are_rendered_in_seq_order() {
    // Entries arriving 3, 1, 2 end up 1, 2, 3; pending lines stay last.
    let mut s = live();
    s.update(send(9, "mine"));
    s.update(text(3, 3, Role::Agent, "three"));
    s.update(text(1, 1, Role::Agent, "one"));
    s.update(text(2, 2, Role::Agent, "two"));
    let seqs: Vec<_> = s.items.iter().map(|i| i.seq).collect();
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3), None]);
    assert_eq!(s.max_seq, 3);
    assert_eq!(
        s.take_dirty(),
        vec![3, 2, 1, 0],
        "dirty indices come last first"
    );
}

#[test]
fn reconnect_resumes_after_highest_seq_and_resends_pending() {
    // After a drop: backoff retry, hello with the credential, resume after the highest seq
    // seen, then the unacknowledged messages go out again (the server dedupes by entryId).
    let mut s = live();
    s.update(text(1, 1, Role::Agent, "a"));
    s.update(text(2, 2, Role::Agent, "b"));
    s.update(send(5, "pending one"));
    let fx = s.update(Msg::SocketClosed);
    assert!(
        matches!(
            fx[..],
            [Effect::ScheduleRetry {
                delay_ms: 250..=500
            }]
        ),
        "{fx:?}"
    );
    assert_eq!(s.status_text(), "Reconnecting…");
    let fx = s.update(send(6, "while offline"));
    assert!(
        sent_frames(&fx).is_empty(),
        "nothing is sent while disconnected"
    );
    assert_eq!(s.update(Msg::RetryTimerFired), vec![Effect::Connect]);
    s.update(Msg::SocketOpened);
    let fx = s.update(welcome("cred"));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 2
        }]
    );
    let fx = s.update(conversation(2, false));
    let resent: Vec<_> = sent_frames(&fx)
        .into_iter()
        .map(|f| match f {
            ToServer::SendMessage { entry_id, .. } => entry_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resent, vec![eid(5), eid(6)]);
    assert!(events(&fx).is_empty(), "Opened fires once per page");
    assert_eq!(s.attempt, 0);
}

#[test]
fn backoff_doubles_and_caps() {
    // Reconnect delays: 0.5 s, 1 s, 2 s, ... never above 30 s, each jittered down by up to
    // a half (so that visitors dropped together do not all come back in the same instant).
    assert_eq!(
        (0..8).map(retry_delay).collect::<Vec<_>>(),
        vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    );
    assert_eq!(retry_delay(40), 30_000);
    let mut s = live();
    let mut delays = Vec::new();
    for _ in 0..3 {
        if let [Effect::ScheduleRetry { delay_ms }] = s.update(Msg::SocketClosed)[..] {
            delays.push(delay_ms);
        }
        s.update(Msg::RetryTimerFired);
    }
    assert_eq!(delays.len(), 3);
    for (got, base) in delays.iter().zip([500, 1000, 2000]) {
        assert!((base / 2..=base).contains(got), "{got} for {base}");
    }
    assert!(matches!(
        s.update(Msg::SocketClosed)[..],
        [Effect::ScheduleRetry {
            delay_ms: 2000..=4000
        }]
    ));
    assert_eq!(
        s.update(Msg::SocketClosed),
        vec![],
        "a second close while waiting changes nothing"
    );
}

#[test]
fn unauthorized_forgets_identity_and_starts_over() {
    // An unknown credential: identity, conversation and its lines are forgotten (pending text
    // is kept), hello goes out again without a credential, and a new conversation is created.
    let mut s = State::new(
        Persisted {
            v: 1,
            end_user_id: Some(uid()),
            credential: Some("stale".into()),
            conversation_id: Some(cid(C)),
            last_seq: 4,
            read_seq: 4,
            window: WindowState::Maximized,
        },
        "Agent",
    );
    s.update(Msg::Booted);
    s.update(Msg::SocketOpened);
    s.update(send(3, "keep me"));
    let epoch = s.epoch;
    let fx = s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::Unauthorized,
        message: "unknown credential".into(),
        entry_id: None,
        retry_after_ms: None,
    })));
    assert_eq!(
        fx,
        vec![
            Effect::Persist,
            Effect::Send(ToServer::Hello {
                protocol_version: 1,
                credential: None,
                identity_token: None,
            })
        ]
    );
    let p = s.persisted();
    assert_eq!(
        (p.credential, p.end_user_id, p.conversation_id, p.last_seq),
        (None, None, None, 0)
    );
    assert_ne!(s.epoch, epoch, "the view rebuilds the list");
    assert_eq!(texts(&s), vec![(None, "keep me".into(), "pending")]);
    let fx = s.update(welcome("fresh"));
    assert!(fx.contains(&Effect::NewConversationId));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    let fx = s.update(conversation(0, true));
    assert_eq!(
        sent_frames(&fx).len(),
        1,
        "the pending message goes to the new conversation"
    );
}

#[test]
fn error_with_entry_id_marks_message_failed() {
    // An error about one message marks that line failed with the reason and warns; a server
    // failure (`internal`) leaves it pending so the next reconnect resends it.
    let mut s = live();
    s.update(send(1, "x"));
    let fx = s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::ConversationEnded,
        message: "the conversation has ended".into(),
        entry_id: Some(eid(1)),
        retry_after_ms: None,
    })));
    assert_eq!(
        s.items[0].delivery,
        Delivery::Failed("the conversation has ended".into())
    );
    assert!(matches!(&fx[..], [Effect::PersistOutbox, Effect::Warn(_)]));
    assert_eq!(
        s.session,
        Some(SessionStatus::Ended),
        "the window then offers a new conversation"
    );
}

#[test]
fn window_transitions_emit_events() {
    // closed → maximized → minimized → maximized → closed, each with its event, persisted
    // state and focus move; launchChat on an open window does nothing; Escape minimizes.
    let mut s = live();
    s.update(Msg::CloseClicked);
    assert_eq!(s.window, WindowState::Closed);
    let fx = s.update(Msg::LaunchRequested);
    assert_eq!(
        events(&fx),
        vec![Event::ButtonClicked, Event::WindowMaximized]
    );
    assert!(!fx.contains(&Effect::Connect), "already connected");
    assert_eq!(events(&s.update(Msg::LaunchRequested)), vec![]);
    let fx = s.update(Msg::EscapePressed);
    assert_eq!(
        fx,
        vec![
            Effect::Emit(Event::WindowMinimized),
            Effect::Persist,
            Effect::FocusMinimized
        ]
    );
    assert_eq!(s.persisted().window, WindowState::Minimized);
    assert_eq!(s.update(Msg::MinimizeClicked), vec![], "already minimized");
    let fx = s.update(Msg::RestoreClicked);
    assert_eq!(
        fx,
        vec![
            Effect::Emit(Event::WindowMaximized),
            Effect::Persist,
            Effect::FocusInput
        ]
    );
    let fx = s.update(Msg::CloseClicked);
    assert_eq!(
        fx,
        vec![
            Effect::Emit(Event::WindowClosed),
            Effect::Persist,
            Effect::FocusLauncher
        ]
    );
    assert_eq!(s.update(Msg::CloseClicked), vec![]);
}

#[test]
fn participants_and_session_status_drive_the_status_line() {
    // Waiting → "Waiting for an agent…", agent added → "<name> joined" plus a notice line,
    // removed → back to waiting, session ended → "Conversation ended"; each fires its event.
    let mut s = live();
    let fx = s.update(entry(
        1,
        eid(1),
        Role::System,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Waiting,
        },
    ));
    assert!(matches!(events(&fx)[..], [Event::SessionStatusUpdate(_)]));
    assert_eq!(s.status_text(), "Waiting for an agent…");
    let change = |op| EntryPayload::ParticipantChanged {
        entries: vec![ParticipantChange {
            operation: op,
            participant: Participant {
                role: Role::Agent,
                subject: "ada".into(),
            },
            display_name: "Ada".into(),
        }],
    };
    let fx = s.update(entry(
        2,
        eid(2),
        Role::System,
        change(ParticipantOperation::Add),
    ));
    assert!(matches!(events(&fx)[..], [Event::ParticipantChanged(_)]));
    assert_eq!(s.status_text(), "Ada joined");
    s.update(entry(
        3,
        eid(3),
        Role::System,
        change(ParticipantOperation::Remove),
    ));
    assert_eq!(s.status_text(), "Waiting for an agent…");
    let fx = s.update(entry(
        4,
        eid(4),
        Role::System,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        },
    ));
    assert!(matches!(
        events(&fx)[..],
        [Event::SessionStatusUpdate(_), Event::ConversationClosed(_)]
    ));
    assert_eq!(s.status_text(), "Conversation ended");
    assert_eq!(
        texts(&s),
        vec![
            (Some(2), "Ada joined".into(), "sent"),
            (Some(3), "Ada left".into(), "sent"),
            (Some(4), "Conversation ended".into(), "sent"),
        ]
    );
}

#[test]
fn replayed_history_fires_no_events() {
    // Entries at or below the conversation's lastSeq are history: rendered, not announced,
    // no events; unknown entry types are skipped but their seq counts for resume.
    let mut s = State::new(
        Persisted {
            v: 1,
            conversation_id: Some(cid(C)),
            credential: Some("c".into()),
            last_seq: 3,
            read_seq: 3,
            ..Persisted::default()
        },
        "Agent",
    );
    s.update(Msg::Booted);
    s.update(Msg::SocketOpened);
    s.update(welcome("c"));
    s.update(conversation(3, false));
    let fx = s.update(text(1, 1, Role::Agent, "old"));
    assert_eq!(fx, vec![], "already stored and read");
    let fx = s.update(entry(2, eid(2), Role::System, EntryPayload::Unknown));
    assert!(events(&fx).is_empty());
    assert_eq!(s.items.len(), 1);
    assert_eq!(s.max_seq, 2);
    let fx = s.update(text(4, 4, Role::Chatbot, "live"));
    assert_eq!(
        events(&fx),
        vec![Event::FirstBotMessageSent, Event::UnreadCountChanged(1)]
    );
}

#[test]
fn frames_for_other_conversations_are_ignored() {
    // Entries and acks of a conversation that is not ours change nothing.
    let mut s = live();
    let mut other = text(1, 1, Role::Agent, "x");
    if let Msg::FrameReceived(ToVisitor::Entry { entry }) = &mut other {
        entry.conversation_id = cid(99);
    }
    assert!(s.update(other).is_empty());
    assert!(
        s.update(frame(ToVisitor::Ack {
            conversation_id: cid(99),
            entry_id: eid(1),
            seq: 1
        }))
        .is_empty()
    );
    assert!(s.items.is_empty());
}

#[test]
fn stored_record_of_another_version_is_discarded() {
    // A record with v != 1 is treated as no record.
    let s = State::new(
        Persisted {
            v: 2,
            conversation_id: Some(cid(C)),
            ..Persisted::default()
        },
        "",
    );
    assert_eq!(s.conversation_id, None);
}

#[test]
fn unread_counts_agent_messages_while_not_open() {
    // Agent messages that arrive while the window is minimized or closed count as unread
    // (with the event); opening the window resets the count to 0.
    let mut s = live();
    s.update(Msg::MinimizeClicked);
    let fx = s.update(text(1, 1, Role::Agent, "one"));
    assert!(events(&fx).contains(&Event::UnreadCountChanged(1)));
    let fx = s.update(text(2, 2, Role::Agent, "two"));
    assert!(events(&fx).contains(&Event::UnreadCountChanged(2)));
    let fx = s.update(text(3, 3, Role::EndUser, "mine (other tab)"));
    assert!(
        events(&fx).is_empty(),
        "the visitor's own lines are not unread"
    );
    let fx = s.update(Msg::RestoreClicked);
    assert_eq!(
        events(&fx),
        vec![Event::WindowMaximized, Event::UnreadCountChanged(0)]
    );
    let fx = s.update(text(4, 4, Role::Agent, "seen"));
    assert!(
        events(&fx).is_empty(),
        "nothing is unread in an open window"
    );
    assert_eq!(s.unread, 0);
}

#[test]
fn new_conversation_after_the_session_ended() {
    // After the agent ends the session, "Start a new conversation" forgets the old thread
    // (keeping the identity), asks for a new id and creates it; Started and Opened fire again.
    let mut s = live();
    s.update(text(1, 1, Role::Agent, "bye"));
    assert_eq!(
        s.update(Msg::NewConversationClicked),
        vec![],
        "only once the session ended"
    );
    s.update(entry(
        2,
        eid(2),
        Role::System,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        },
    ));
    let epoch = s.epoch;
    let fx = s.update(Msg::NewConversationClicked);
    assert_eq!(
        fx,
        vec![
            Effect::Persist,
            Effect::NewConversationId,
            Effect::FocusInput
        ]
    );
    assert!(s.items.is_empty() && s.epoch != epoch && s.conversation_id.is_none());
    assert_eq!(s.credential.as_deref(), Some("cred"));
    let fx = s.update(Msg::ConversationIdGenerated(cid(2)));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::CreateConversation {
            conversation_id: cid(2)
        }]
    );
    let fx = s.update(frame(ToVisitor::Conversation {
        conversation_id: cid(2),
        status: SessionStatus::New,
        last_seq: 0,
        created: true,
        replay_to: None,
    }));
    assert_eq!(
        events(&fx),
        vec![
            Event::ConversationStarted(cid(2)),
            Event::ConversationOpened
        ]
    );
    assert_eq!(s.status_text(), "Send a message to start");
}

#[test]
fn keepalive_pings_only_when_live() {
    // The keep-alive tick sends a ping on a live socket and nothing otherwise.
    let mut s = live();
    assert_eq!(
        s.update(Msg::KeepAliveTick),
        vec![Effect::Send(ToServer::Ping)]
    );
    s.update(Msg::SocketClosed);
    assert_eq!(s.update(Msg::KeepAliveTick), vec![]);
}

#[test]
fn scrolling_to_the_top_shows_an_older_page() {
    // Reaching the top of the transcript raises how many lines are shown, only while there
    // are more lines than shown; reaching the bottom is remembered for auto-scroll.
    let mut s = live();
    s.update(Msg::Scrolled {
        at_bottom: false,
        at_top: true,
    });
    assert_eq!(
        (s.shown, s.at_bottom),
        (HISTORY_PAGE, false),
        "nothing older to show"
    );
    for seq in 1..=(HISTORY_PAGE as u64 + 1) {
        s.update(text(seq, u128::from(seq), Role::Agent, "x"));
    }
    s.update(Msg::Scrolled {
        at_bottom: false,
        at_top: true,
    });
    assert_eq!(s.shown, 2 * HISTORY_PAGE);
    s.update(Msg::Scrolled {
        at_bottom: true,
        at_top: false,
    });
    assert!(s.at_bottom);
}

#[test]
fn another_tabs_conversation_is_adopted() {
    // A tab without a conversation that sees another tab store one takes the same identity and
    // conversation (reconnecting if it is connected), instead of creating a second thread; a
    // tab that already has a conversation keeps its own.
    let other = Persisted {
        v: 1,
        end_user_id: Some(uid()),
        credential: Some("shared".into()),
        conversation_id: Some(cid(7)),
        last_seq: 3,
        read_seq: 3,
        window: WindowState::Closed,
    };
    let mut idle = State::new(Persisted::default(), "");
    assert_eq!(
        idle.update(Msg::StoredRecordChanged(other.clone())),
        vec![],
        "offline: nothing to do now"
    );
    assert_eq!(
        (idle.conversation_id, idle.credential.as_deref()),
        (Some(cid(7)), Some("shared"))
    );
    let fx = idle.update(Msg::LauncherClicked);
    assert!(fx.contains(&Effect::Connect));
    idle.update(Msg::SocketOpened);
    let fx = idle.update(welcome("shared"));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(7),
            after_seq: 0
        }]
    );

    let mut connecting = State::new(Persisted::default(), "");
    connecting.update(Msg::LauncherClicked);
    connecting.update(Msg::SocketOpened);
    connecting.update(welcome("mine"));
    assert_eq!(
        connecting.update(Msg::StoredRecordChanged(other.clone())),
        vec![Effect::Connect]
    );
    assert!(
        connecting
            .update(Msg::ConversationIdGenerated(cid(8)))
            .is_empty(),
        "the late id is not used"
    );

    let mut busy = live();
    assert_eq!(busy.update(Msg::StoredRecordChanged(other)), vec![]);
    assert_eq!(busy.conversation_id, Some(cid(C)));
}

#[test]
fn util_api_messages() {
    // sendTextMessage sends like the composer but leaves the composer alone; minimizeChat
    // only minimizes an open window; the button can be hidden only while the window is closed.
    let mut s = live();
    assert!(s.conversation_open());
    let fx = s.update(Msg::SendTextRequested {
        text: "from the page".into(),
        entry_id: eid(1),
        now: 1,
    });
    assert!(!fx.contains(&Effect::ClearInput));
    assert_eq!(sent_frames(&fx).len(), 1);
    let fx = s.update(Msg::MinimizeRequested);
    assert_eq!(
        fx,
        vec![Effect::Emit(Event::WindowMinimized), Effect::Persist]
    );
    assert_eq!(s.update(Msg::MinimizeRequested), vec![]);
    s.update(Msg::ButtonVisibilityRequested { hidden: true });
    assert!(
        !s.button_hidden,
        "refused while the (minimized) window shows"
    );
    s.update(Msg::CloseClicked);
    s.update(Msg::ButtonVisibilityRequested { hidden: true });
    assert!(s.button_hidden);
    s.update(Msg::ButtonVisibilityRequested { hidden: false });
    assert!(!s.button_hidden);
    assert!(!State::new(Persisted::default(), "").conversation_open());
}

#[test]
fn hidden_tab_counts_unread_and_blinks_the_title() {
    // With the tab hidden, agent messages count as unread even in an open window and the title
    // blinks (ticks alternate it); showing the tab stops the blink and clears the count.
    let mut s = live();
    assert_eq!(
        s.update(Msg::VisibilityChanged { hidden: true }),
        vec![],
        "nothing unread yet"
    );
    let fx = s.update(text(1, 1, Role::Agent, "psst"));
    assert!(
        fx.contains(&Effect::Emit(Event::UnreadCountChanged(1)))
            && fx.contains(&Effect::Blink(true))
    );
    let fx = s.update(text(2, 2, Role::Agent, "again"));
    assert!(!fx.contains(&Effect::Blink(true)), "already blinking");
    s.update(Msg::BlinkTick);
    assert!(s.title_flash);
    s.update(Msg::BlinkTick);
    assert!(!s.title_flash);
    s.update(Msg::BlinkTick);
    let fx = s.update(Msg::VisibilityChanged { hidden: false });
    assert_eq!(
        fx,
        vec![
            Effect::Send(ToServer::Ping),
            Effect::Blink(false),
            Effect::Emit(Event::UnreadCountChanged(0)),
            Effect::Persist
        ],
        "a tab shown again also checks that its socket still answers"
    );
    assert!(!s.title_flash);
    s.update(Msg::BlinkTick);
    assert!(!s.title_flash, "a late tick does nothing");
}

pub(super) fn menu(seq: u64, n: u128, titles: &[&str]) -> Msg {
    let titles: Vec<String> = titles.iter().map(|t| (*t).to_owned()).collect();
    entry(
        seq,
        eid(n),
        Role::Chatbot,
        EntryPayload::Message {
            abstract_message: em_protocol::AbstractMessage::ChoicesMessage {
                id: eid(n),
                choices: em_protocol::Choices::quick_replies("What can I help you with?", &titles),
            },
        },
    )
}

fn menu_titles(s: &State) -> Option<(u32, Vec<&str>)> {
    let (key, options) = s.menu.as_ref()?;
    Some((
        *key,
        options
            .iter()
            .map(|o| o.title_item.title.as_str())
            .collect(),
    ))
}

#[test]
fn choices_message_is_a_bot_line_with_active_quick_replies() {
    // A ChoicesMessage shows as the bot's text (announced, counted like any bot message) and
    // its option titles become the active menu, keyed to that line; a newer menu replaces it.
    let mut s = live();
    let fx = s.update(menu(1, 1, &["Opening hours", "Order status"]));
    assert_eq!(
        texts(&s),
        vec![(Some(1), "What can I help you with?".into(), "sent")]
    );
    assert_eq!(s.items[0].role, Role::Chatbot);
    assert!(fx.contains(&Effect::Announce("What can I help you with?".into())));
    assert!(events(&fx).contains(&Event::FirstBotMessageSent));
    assert_eq!(
        menu_titles(&s),
        Some((s.items[0].key, vec!["Opening hours", "Order status"]))
    );
    s.update(menu(2, 2, &["Talk to a person"]));
    assert_eq!(
        menu_titles(&s),
        Some((s.items[1].key, vec!["Talk to a person"])),
        "only the latest menu is active"
    );
}

#[test]
fn clicking_a_quick_reply_sends_its_title_like_typing_and_closes_the_menu() {
    // The click sends an ordinary sendMessage with the title as text: pending, then sent on
    // the ack; the composer is left alone, focus goes back to it, and the menu is gone, so a
    // second click (before the buttons leave the DOM) sends nothing.
    let mut s = live();
    s.update(menu(1, 1, &["Opening hours", "Order status"]));
    let click = |n: u128| Msg::ChoiceClicked {
        title: "Order status".into(),
        entry_id: eid(n),
        now: 700,
    };
    let fx = s.update(click(2));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::SendMessage {
            conversation_id: cid(C),
            entry_id: eid(2),
            text: "Order status".into(),
            client_timestamp: 700
        }]
    );
    assert!(fx.contains(&Effect::FocusInput));
    assert!(!fx.contains(&Effect::ClearInput));
    assert_eq!(s.menu, None);
    assert_eq!(texts(&s)[1], (None, "Order status".into(), "pending"));
    assert!(
        sent_frames(&s.update(click(3))).is_empty(),
        "menu already answered"
    );
    s.update(ack(2, 2));
    assert_eq!(texts(&s)[1], (Some(2), "Order status".into(), "sent"));
    assert_eq!(s.items.len(), 2);
}

#[test]
fn a_typed_or_replayed_visitor_message_answers_the_menu() {
    // Typing instead of clicking closes the menu too; after a reload, a replayed visitor
    // message after the menu leaves it closed, while an unanswered last menu stays active.
    let mut s = live();
    s.update(menu(1, 1, &["Opening hours"]));
    s.update(send(2, "hours please"));
    assert_eq!(s.menu, None);

    let mut s = live();
    s.update(menu(1, 1, &["Opening hours"]));
    s.update(text(2, 2, Role::EndUser, "Opening hours"));
    assert_eq!(s.menu, None);
    s.update(text(3, 3, Role::Chatbot, "We are open 9 to 5."));
    s.update(menu(4, 4, &["Opening hours"]));
    assert_eq!(
        menu_titles(&s),
        Some((s.items[3].key, vec!["Opening hours"]))
    );
}

fn set(kind: ContextKind, pairs: &[(&str, &str)], remove: &[&str]) -> Msg {
    Msg::ContextChanged {
        kind,
        set: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn context_set_before_the_conversation_goes_out_when_it_opens_before_pending_messages() {
    // Hidden fields set on Ready and the page reach the server with the conversation, ahead
    // of the first message, so routing rules can use them.
    let mut s = State::new(Persisted::default(), "Agent");
    s.context.page = Some(em_protocol::agent::PageContext {
        url: "https://shop.example.com/".into(),
        title: "Shop".into(),
    });
    assert!(
        s.update(set(ContextKind::Hidden, &[("Plan", "Gold")], &[]))
            .is_empty()
    );
    s.update(Msg::LauncherClicked);
    s.update(Msg::SocketOpened);
    s.update(welcome("k"));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(send(1, "hello"));
    let fx = s.update(conversation(0, true));
    let context_at = fx.iter().position(|e| *e == Effect::SendContext(cid(C)));
    let message_at = fx
        .iter()
        .position(|e| matches!(e, Effect::Send(ToServer::SendMessage { .. })));
    assert!(context_at.is_some() && context_at < message_at, "{fx:?}");
    assert_eq!(
        s.context.hidden,
        vec![("Plan".to_string(), "Gold".to_string())]
    );
}

#[test]
fn context_changes_while_live_are_sent_at_once_and_unchanged_ones_are_not() {
    let mut s = live();
    let sends = |fx: Vec<Effect>| {
        fx.iter()
            .filter(|e| **e == Effect::SendContext(cid(C)))
            .count()
    };
    assert_eq!(
        sends(s.update(set(ContextKind::Session, &[("cart", "2")], &[]))),
        1
    );
    // The same value again changes nothing: nothing is sent.
    assert!(
        s.update(set(ContextKind::Session, &[("cart", "2")], &[]))
            .is_empty()
    );
    // Overwrite one key, remove another: the whole context goes out again.
    s.update(set(ContextKind::AutoResponse, &[("FirstName", "Ada")], &[]));
    assert_eq!(
        sends(s.update(set(
            ContextKind::Session,
            &[("cart", "3"), ("n", "1")],
            &["missing"]
        ))),
        1
    );
    assert_eq!(
        s.context.session,
        vec![("cart".into(), "3".into()), ("n".into(), "1".into())]
    );
    assert_eq!(
        sends(s.update(set(ContextKind::Session, &[], &["cart"]))),
        1
    );
    assert_eq!(s.context.session, vec![("n".into(), "1".into())]);
    assert_eq!(s.context.auto_response.len(), 1);
}
