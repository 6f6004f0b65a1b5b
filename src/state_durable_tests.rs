//! Native tests of the durable paths of `State::update`: outbox, retry, heartbeat, reconnect,
//! resume and dedupe after a reload, tabs, and what follows an ended conversation.

use super::tests::*;
use super::*;
use em_protocol::ErrorFrame;

fn error(code: ErrorCode, n: u128, message: &str) -> Msg {
    frame(ToVisitor::Error(ErrorFrame {
        code,
        message: message.into(),
        entry_id: Some(eid(n)),
        retry_after_ms: None,
    }))
}

fn sent_ids(fx: &[Effect]) -> Vec<EntryId> {
    sent_frames(fx)
        .into_iter()
        .filter_map(|f| match f {
            ToServer::SendMessage { entry_id, .. } => Some(entry_id),
            _ => None,
        })
        .collect()
}

fn ended() -> Msg {
    entry(
        9,
        eid(90),
        Role::System,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        },
    )
}

/// A new page of the same visitor: the stored record and outbox of `old`, booted.
fn reload(old: &State) -> State {
    let mut s = State::new(old.persisted(), "Agent");
    s.restore_outbox(old.outbox());
    s
}

#[test]
fn messages_written_while_down_are_pending_at_once_and_kept_in_the_outbox() {
    // With the socket down, each message shows as pending and asks for the outbox to be
    // stored; nothing is sent until the conversation is live again.
    let mut s = live();
    s.update(Msg::SocketClosed);
    for n in 1..=3 {
        let fx = s.update(send(n, &format!("m{n}")));
        assert!(fx.contains(&Effect::PersistOutbox));
        assert!(sent_frames(&fx).is_empty());
    }
    assert_eq!(
        s.outbox().iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![eid(1), eid(2), eid(3)]
    );
    assert!(
        s.outbox()
            .iter()
            .all(|o| o.failed.is_none() && o.time == 500)
    );
    assert!(
        texts(&s)
            .iter()
            .all(|(seq, _, d)| seq.is_none() && *d == "pending")
    );
}

#[test]
fn outbox_survives_a_reload_and_each_message_arrives_once_in_order() {
    // Offline, three messages, reload: the new page shows them pending, resumes, resends all
    // three in order; the first had reached the server before the reload (its replay is the
    // same line, not a second one), acks settle the others, the outbox empties.
    let mut s = live();
    s.update(text(1, 10, Role::Agent, "hello"));
    s.update(Msg::SocketClosed);
    for n in 1..=3 {
        s.update(send(n, &format!("m{n}")));
    }
    let mut s = reload(&s);
    assert_eq!(
        texts(&s)
            .iter()
            .map(|(_, t, d)| (t.as_str(), *d))
            .collect::<Vec<_>>(),
        vec![("m1", "pending"), ("m2", "pending"), ("m3", "pending")]
    );
    assert_eq!(
        s.update(Msg::Booted),
        vec![Effect::Emit(Event::WindowMaximized), Effect::Connect]
    );
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    let fx = s.update(conversation(2, false));
    assert_eq!(sent_ids(&fx), vec![eid(1), eid(2), eid(3)]);
    // Replay from 0: the agent line, then m1 (stored before the reload), twice.
    s.update(text(1, 10, Role::Agent, "hello"));
    s.update(text(2, 1, Role::EndUser, "m1"));
    s.update(text(2, 1, Role::EndUser, "m1"));
    let fx = s.update(ack(1, 2));
    assert!(
        events(&fx).len() <= 2,
        "at most one Sent (and its Delivered) event"
    );
    s.update(ack(3, 4));
    s.update(ack(2, 3));
    s.update(text(3, 2, Role::EndUser, "m2"));
    assert_eq!(
        texts(&s),
        vec![
            (Some(1), "hello".into(), "sent"),
            (Some(2), "m1".into(), "sent"),
            (Some(3), "m2".into(), "sent"),
            (Some(4), "m3".into(), "sent"),
        ]
    );
    assert!(s.outbox().is_empty());
}

#[test]
fn restored_outbox_skips_blank_and_known_entries_and_keeps_failures() {
    // The same entry twice (another tab's copy) is one line; a failed one keeps its reason.
    let mut s = live();
    s.restore_outbox(vec![
        Outgoing {
            id: eid(1),
            text: "a".into(),
            time: 1,
            failed: None,
        },
        Outgoing {
            id: eid(1),
            text: "a".into(),
            time: 1,
            failed: None,
        },
        Outgoing {
            id: eid(2),
            text: "  ".into(),
            time: 1,
            failed: None,
        },
        Outgoing {
            id: eid(3),
            text: "b".into(),
            time: 2,
            failed: Some("too long".into()),
        },
    ]);
    assert_eq!(
        texts(&s),
        vec![(None, "a".into(), "pending"), (None, "b".into(), "failed")]
    );
    assert_eq!(s.outbox()[1].failed.as_deref(), Some("too long"));
}

#[test]
fn refused_message_fails_with_its_reason_and_retry_sends_it_again() {
    // `invalid_message`: failed with the reason (kept in the outbox); Retry makes it pending
    // and sends the same entry id again; Retry on a line that is not failed does nothing.
    let mut s = live();
    s.update(send(1, "x"));
    s.update(error(
        ErrorCode::InvalidMessage,
        1,
        "the message is too long",
    ));
    assert_eq!(
        s.items[0].delivery,
        Delivery::Failed("the message is too long".into())
    );
    assert_eq!(
        s.outbox()[0].failed.as_deref(),
        Some("the message is too long")
    );
    let fx = s.update(Msg::RetryClicked { entry_id: eid(1) });
    assert!(fx.contains(&Effect::PersistOutbox));
    assert_eq!(sent_ids(&fx), vec![eid(1)]);
    assert_eq!(s.items[0].delivery, Delivery::Pending);
    assert_eq!(s.update(Msg::RetryClicked { entry_id: eid(1) }), vec![]);
    assert_eq!(s.update(Msg::RetryClicked { entry_id: eid(7) }), vec![]);
    s.update(ack(1, 1));
    assert_eq!(texts(&s), vec![(Some(1), "x".into(), "sent")]);
}

#[test]
fn retry_while_down_waits_for_the_connection() {
    // A retry with no live socket leaves the line pending; it goes out on the next join.
    let mut s = live();
    s.update(send(1, "x"));
    s.update(error(ErrorCode::InvalidMessage, 1, "no"));
    s.update(Msg::SocketClosed);
    let fx = s.update(Msg::RetryClicked { entry_id: eid(1) });
    assert!(sent_frames(&fx).is_empty());
    s.update(Msg::RetryTimerFired);
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    assert_eq!(sent_ids(&s.update(conversation(0, false))), vec![eid(1)]);
}

#[test]
fn retry_after_the_conversation_ended_goes_to_a_new_conversation() {
    // `conversation_ended`: failed, the window says the conversation ended; Retry starts a
    // new conversation and the message is sent there.
    let mut s = live();
    s.update(send(1, "late"));
    s.update(error(
        ErrorCode::ConversationEnded,
        1,
        "the conversation has ended",
    ));
    assert_eq!(s.status_text(), "Conversation ended");
    let fx = s.update(Msg::RetryClicked { entry_id: eid(1) });
    assert!(fx.contains(&Effect::NewConversationId), "{fx:?}");
    assert_eq!(s.conversation_id, None);
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
    assert_eq!(sent_ids(&fx), vec![eid(1)]);
}

#[test]
fn a_message_after_an_agent_ended_the_session_starts_a_new_conversation() {
    // The agent ended the session; the visitor writes anyway (utilAPI.sendTextMessage): a
    // new conversation is created and the message goes there, not to the ended one.
    let mut s = live();
    s.update(ended());
    let fx = s.update(Msg::SendTextRequested {
        text: "one more thing".into(),
        entry_id: eid(1),
        now: 1,
    });
    assert!(fx.contains(&Effect::NewConversationId), "{fx:?}");
    assert!(sent_frames(&fx).is_empty());
    assert_eq!(texts(&s), vec![(None, "one more thing".into(), "pending")]);
    s.update(Msg::ConversationIdGenerated(cid(2)));
    let fx = s.update(frame(ToVisitor::Conversation {
        conversation_id: cid(2),
        status: SessionStatus::New,
        last_seq: 0,
        created: true,
        replay_to: None,
    }));
    assert_eq!(sent_ids(&fx), vec![eid(1)]);
}

#[test]
fn internal_error_keeps_the_message_pending_and_the_heartbeat_resends_it() {
    // `internal`: the server failed, not the message; the next heartbeat sends it again.
    let mut s = live();
    s.update(send(1, "x"));
    s.update(error(ErrorCode::Internal, 1, "database busy"));
    assert_eq!(s.items[0].delivery, Delivery::Pending);
    let fx = s.update(Msg::KeepAliveTick);
    assert_eq!(sent_frames(&fx)[0], ToServer::Ping);
    assert_eq!(sent_ids(&fx), vec![eid(1)]);
}

#[test]
fn a_silent_socket_is_declared_dead_at_the_next_tick_and_reconnected() {
    // A ping per tick; any frame (pong) before the next tick keeps the socket; none means it
    // is dead (noticed within two ticks, < 45 s) and a new one is opened at once.
    const { assert!(2 * KEEPALIVE_MS < 45_000) };
    let mut s = live();
    assert_eq!(
        sent_frames(&s.update(Msg::KeepAliveTick)),
        vec![ToServer::Ping]
    );
    s.update(frame(ToVisitor::Pong));
    assert_eq!(
        sent_frames(&s.update(Msg::KeepAliveTick)),
        vec![ToServer::Ping]
    );
    assert_eq!(s.update(Msg::KeepAliveTick), vec![Effect::Connect]);
    assert_eq!(s.link, Link::Connecting);
    assert_eq!(s.status_text(), "Reconnecting…");
    // Stuck connecting (a black-holed network): given up after a tick too.
    assert_eq!(s.update(Msg::KeepAliveTick), vec![]);
    assert_eq!(s.update(Msg::KeepAliveTick), vec![Effect::Connect]);
    s.update(Msg::SocketOpened);
    assert_eq!(s.update(Msg::KeepAliveTick), vec![]);
    s.update(welcome("cred"));
    s.update(conversation(0, false));
    assert_eq!(
        sent_frames(&s.update(Msg::KeepAliveTick)),
        vec![ToServer::Ping]
    );
}

#[test]
fn online_and_a_visible_tab_reconnect_at_once() {
    // Waiting out a backoff: the browser's `online` event or the tab becoming visible
    // connects now; on a live socket they send a ping to check it still answers.
    let mut s = live();
    s.update(Msg::SocketClosed);
    assert_eq!(s.update(Msg::BrowserOnline), vec![Effect::Connect]);
    s.update(Msg::SocketClosed);
    let fx = s.update(Msg::VisibilityChanged { hidden: false });
    assert_eq!(fx, vec![Effect::Connect]);
    assert_eq!(s.update(Msg::BrowserOnline), vec![], "already connecting");
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    s.update(conversation(0, false));
    assert_eq!(
        sent_frames(&s.update(Msg::BrowserOnline)),
        vec![ToServer::Ping]
    );
    assert_eq!(
        sent_frames(&s.update(Msg::KeepAliveTick)),
        vec![ToServer::Ping],
        "a tick right after a wake-up ping does not count it against the socket"
    );
    assert_eq!(s.update(Msg::KeepAliveTick), vec![Effect::Connect]);
}

#[test]
fn going_offline_drops_the_socket_and_keeps_new_messages_in_the_outbox() {
    // The `offline` event: the socket is let go (a retry is scheduled, `online` cuts it
    // short); messages written meanwhile are pending in the outbox, sent after the resume.
    let mut s = live();
    let fx = s.update(Msg::BrowserOffline);
    assert!(matches!(fx[..], [Effect::ScheduleRetry { .. }]), "{fx:?}");
    assert_eq!(s.update(Msg::BrowserOffline), vec![]);
    assert!(sent_frames(&s.update(send(1, "offline"))).is_empty());
    assert_eq!(s.outbox().len(), 1);
    assert_eq!(s.update(Msg::BrowserOnline), vec![Effect::Connect]);
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    assert_eq!(sent_ids(&s.update(conversation(0, false))), vec![eid(1)]);
}

#[test]
fn another_tabs_unsent_messages_are_shown_and_sent_here_too() {
    // Tab A stored an outbox (and may close): this tab shows those lines pending and sends
    // them (the server deduplicates); known or failed entries are left alone.
    let mut s = live();
    s.update(send(1, "mine"));
    let theirs = |n: u128, failed: Option<&str>| Outgoing {
        id: eid(n),
        text: format!("t{n}"),
        time: 7,
        failed: failed.map(Into::into),
    };
    let fx = s.update(Msg::StoredOutboxChanged(vec![
        theirs(1, None),
        theirs(2, None),
        theirs(3, Some("no")),
    ]));
    assert_eq!(sent_ids(&fx), vec![eid(2)]);
    assert!(!fx.contains(&Effect::PersistOutbox));
    assert_eq!(
        texts(&s),
        vec![
            (None, "mine".into(), "pending"),
            (None, "t2".into(), "pending")
        ]
    );
    // Its echo arrives on this tab's socket: one line, sent.
    s.update(text(1, 2, Role::EndUser, "t2"));
    assert_eq!(texts(&s)[0], (Some(1), "t2".into(), "sent"));
}

#[test]
fn replies_written_while_the_tab_was_closed_are_unread_on_return() {
    // The visitor read up to seq 2 and closed the tab; the agent replied (3, 4). Hours later
    // the replayed replies count as unread (badge on the button), without announcements;
    // opening the window reads them and stores readSeq.
    let mut s = State::new(
        Persisted {
            v: 1,
            credential: Some("cred".into()),
            conversation_id: Some(cid(C)),
            last_seq: 2,
            read_seq: 2,
            ..Persisted::default()
        },
        "Agent",
    );
    s.update(Msg::Booted);
    s.update(Msg::SocketOpened);
    s.update(welcome("cred"));
    s.update(conversation(4, false));
    s.update(text(1, 1, Role::EndUser, "hi"));
    s.update(text(2, 2, Role::Agent, "seen"));
    s.update(text(3, 3, Role::Agent, "reply 1"));
    let fx = s.update(text(4, 4, Role::Agent, "reply 2"));
    assert_eq!(events(&fx), vec![Event::UnreadCountChanged(2)]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Announce(_))));
    assert_eq!(s.unread, 2);
    let fx = s.update(Msg::LauncherClicked);
    assert!(fx.contains(&Effect::Emit(Event::UnreadCountChanged(0))));
    assert_eq!((s.unread, s.persisted().read_seq), (0, 4));
}

#[test]
fn lines_read_in_another_tab_are_read_here_too() {
    // Two tabs, this one minimized with 2 unread and hidden (title blinking): the other tab
    // shows the lines and stores readSeq; here the count drops to what is still unread.
    let mut s = live();
    s.update(Msg::MinimizeClicked);
    s.update(Msg::VisibilityChanged { hidden: true });
    s.update(text(1, 1, Role::Agent, "a"));
    s.update(text(2, 2, Role::Agent, "b"));
    assert_eq!(s.unread, 2);
    let mut other = s.persisted();
    other.read_seq = 1;
    let fx = s.update(Msg::StoredRecordChanged(other.clone()));
    assert_eq!(events(&fx), vec![Event::UnreadCountChanged(1)]);
    other.read_seq = 2;
    let fx = s.update(Msg::StoredRecordChanged(other.clone()));
    assert_eq!(
        fx,
        vec![
            Effect::Emit(Event::UnreadCountChanged(0)),
            Effect::Blink(false)
        ]
    );
    assert_eq!(
        s.update(Msg::StoredRecordChanged(other)),
        vec![],
        "nothing new"
    );
    // A record of another conversation says nothing about this one.
    let mut elsewhere = s.persisted();
    elsewhere.conversation_id = Some(cid(99));
    elsewhere.read_seq = 50;
    s.update(Msg::StoredRecordChanged(elsewhere));
    assert_eq!(s.read_seq, 2);
}

#[test]
fn a_restored_outbox_connects_even_with_no_conversation_and_the_window_closed() {
    // Typed before the first conversation existed, then the tab closed with the window
    // state not yet stored: the next page still connects, creates one and sends.
    let mut s = State::new(Persisted::default(), "Agent");
    s.restore_outbox(vec![Outgoing {
        id: eid(1),
        text: "first words".into(),
        time: 1,
        failed: None,
    }]);
    assert_eq!(s.update(Msg::Booted), vec![Effect::Connect]);
    s.update(Msg::SocketOpened);
    assert_eq!(
        s.update(welcome("new")).last(),
        Some(&Effect::NewConversationId)
    );
    s.update(Msg::ConversationIdGenerated(cid(C)));
    assert_eq!(sent_ids(&s.update(conversation(0, true))), vec![eid(1)]);
}

#[test]
fn an_entry_overtaken_before_a_drop_is_asked_for_again() {
    // Seqs 1..3, then 5 overtakes 4, then the connection drops: the resume starts after 3,
    // the unbroken run, so 4 is replayed; the replayed 5 is not rendered twice.
    let mut s = live();
    for seq in 1..=3 {
        s.update(text(seq, u128::from(seq), Role::Agent, "in order"));
    }
    s.update(text(5, 5, Role::Agent, "overtook"));
    s.update(Msg::SocketClosed);
    s.update(Msg::RetryTimerFired);
    s.update(Msg::SocketOpened);
    let fx = s.update(welcome("cred"));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 3
        }]
    );
    s.update(text(4, 4, Role::Agent, "late"));
    s.update(text(5, 5, Role::Agent, "overtook"));
    let seqs: Vec<_> = texts(&s).iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
}

fn rate_limited(entry: Option<u128>, wait_ms: u64) -> Msg {
    frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::RateLimited,
        message: "at most 5 messages per second".into(),
        entry_id: entry.map(eid),
        retry_after_ms: Some(wait_ms),
    }))
}

#[test]
fn a_rate_limited_message_stays_pending_and_goes_again_after_the_wait() {
    // `rate_limited` on a message: no failure, no warning; the widget waits as told, holds
    // back what the visitor writes meanwhile, then sends every pending message once.
    let mut s = live();
    s.update(send(1, "first"));
    let fx = s.update(rate_limited(Some(1), 800));
    assert_eq!(fx, vec![Effect::WaitForLimit { delay_ms: 800 }]);
    assert_eq!(texts(&s)[0].2, "pending");
    // A second refusal in the same wait asks for no second timer.
    assert!(s.update(rate_limited(Some(1), 800)).is_empty());
    let fx = s.update(send(2, "second"));
    assert!(sent_frames(&fx).is_empty(), "held back during the wait");
    assert!(
        sent_frames(&s.update(Msg::KeepAliveTick))
            .iter()
            .all(|f| *f == ToServer::Ping),
        "the heartbeat does not resend during the wait"
    );
    let fx = s.update(Msg::LimitPassed);
    assert_eq!(sent_ids(&fx), vec![eid(1), eid(2)]);
    s.update(ack(1, 1));
    s.update(ack(2, 2));
    assert!(texts(&s).iter().all(|(_, _, d)| *d == "sent"));
    assert!(s.outbox().is_empty());
}

#[test]
fn a_rate_limited_hello_or_join_is_repeated_after_the_wait() {
    // A refused `hello` (too many new visitors from one address) is said again after the
    // wait; a refused resume or create joins again; a reconnect meanwhile cancels the wait.
    let mut s = State::new(Persisted::default(), "Agent");
    s.update(Msg::Booted);
    s.update(Msg::LauncherClicked);
    s.update(Msg::SocketOpened);
    s.update(rate_limited(None, 5_000));
    let fx = s.update(Msg::LimitPassed);
    assert!(matches!(
        sent_frames(&fx)[..],
        [ToServer::Hello {
            credential: None,
            ..
        }]
    ));
    s.update(welcome("cred"));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(rate_limited(None, 100));
    let fx = s.update(Msg::LimitPassed);
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 0
        }]
    );
    s.update(rate_limited(None, 100));
    s.update(Msg::SocketClosed);
    s.update(Msg::SocketOpened);
    assert!(
        s.update(Msg::LimitPassed).is_empty(),
        "the new connection is not throttled"
    );
}

fn entry_value(seq: u64) -> ConversationEntry {
    match text(seq, 1000 + u128::from(seq), Role::Agent, &format!("m{seq}")) {
        Msg::FrameReceived(ToVisitor::Entry { entry }) => entry,
        _ => unreachable!(),
    }
}

fn state_frame(last_seq: u64, replay_to: Option<u64>) -> Msg {
    frame(ToVisitor::Conversation {
        conversation_id: cid(C),
        status: SessionStatus::Active,
        last_seq,
        created: false,
        replay_to,
    })
}

#[test]
fn a_replay_in_pages_is_followed_to_its_end() {
    // A reconnect's gap comes a page at a time: when the page's last entry is in, the
    // widget resumes again after it, until a replay reaches lastSeq; every seq once.
    let mut s = live();
    for seq in 1..=3 {
        s.update(text(seq, seq.into(), Role::Agent, "early"));
    }
    s.update(Msg::SocketClosed);
    s.update(Msg::SocketOpened);
    let fx = s.update(welcome("cred"));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 3
        }]
    );
    s.update(state_frame(60, Some(23)));
    for seq in 4..23 {
        assert!(
            sent_frames(&s.update(frame(ToVisitor::Entry {
                entry: entry_value(seq)
            })))
            .is_empty()
        );
    }
    let fx = s.update(frame(ToVisitor::Entry {
        entry: entry_value(23),
    }));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 23
        }]
    );
    s.update(state_frame(60, None));
    for seq in 24..=60 {
        let fx = s.update(frame(ToVisitor::Entry {
            entry: entry_value(seq),
        }));
        assert!(
            sent_frames(&fx).is_empty(),
            "the last page: no more resumes"
        );
    }
    let seqs: Vec<u64> = s.items.iter().filter_map(|i| i.seq).collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
}

#[test]
fn scrolling_up_past_the_newest_page_asks_for_older_pages() {
    // A page load gets the newest page of a long conversation. At the top, the widget asks
    // for the page before its oldest entry (once at a time, never below seq 1); the older
    // lines are shown, fire no events, and a reconnect resumes after the newest run.
    let mut s = live();
    s.update(state_frame(500, None));
    for seq in 301..=500 {
        s.update(frame(ToVisitor::Entry {
            entry: entry_value(seq),
        }));
    }
    let top = Msg::Scrolled {
        at_bottom: false,
        at_top: true,
    };
    let fx = s.update(top.clone());
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::History {
            conversation_id: cid(C),
            before_seq: 301
        }]
    );
    assert!(
        sent_frames(&s.update(top.clone())).is_empty(),
        "one at a time"
    );
    let fx = s.update(frame(ToVisitor::History {
        conversation_id: cid(C),
        entries: (101..=300).map(entry_value).collect(),
    }));
    assert!(events(&fx).is_empty(), "history is not news");
    assert_eq!(s.items.len(), 400);
    assert_eq!(s.shown, 400, "the older page is shown at once");
    assert_eq!(
        sent_frames(&s.update(top.clone())),
        vec![ToServer::History {
            conversation_id: cid(C),
            before_seq: 101
        }]
    );
    s.update(frame(ToVisitor::History {
        conversation_id: cid(C),
        entries: (1..=100).map(entry_value).collect(),
    }));
    assert!(
        sent_frames(&s.update(top)).is_empty(),
        "nothing before seq 1"
    );
    let seqs: Vec<u64> = s.items.iter().filter_map(|i| i.seq).collect();
    assert_eq!(seqs, (1..=500).collect::<Vec<_>>());

    // Holding only a newest page, a reconnect resumes after it (not from 0).
    let mut s = live();
    s.update(state_frame(500, None));
    for seq in 301..=500 {
        s.update(frame(ToVisitor::Entry {
            entry: entry_value(seq),
        }));
    }
    s.update(Msg::SocketClosed);
    s.update(Msg::SocketOpened);
    assert_eq!(
        sent_frames(&s.update(welcome("cred"))),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 500
        }]
    );
}
