//! Native tests of identity tokens, clearSession, ending a conversation, business hours,
//! typing and the page settings the core applies.

use super::tests::*;
use super::*;
use em_protocol::ErrorFrame;

/// A JWT-shaped token whose payload is `{"sub":"42","exp":<exp>}` (unsigned: the widget only
/// reads the shape and `exp`; the server verifies signatures).
fn jwt(exp: i64) -> String {
    let payload = "{\"sub\":\"42\",\"exp\":".to_owned() + &exp.to_string() + "}";
    "eyJhbGciOiJSUzI1NiJ9.".to_owned() + &base64url(payload.as_bytes()) + ".c2ln"
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn verified() -> State {
    let mut s = State::new(Persisted::default(), "Agent");
    s.verified = true;
    s
}

#[test]
fn check_token_reads_shape_and_expiry_only() {
    let now = 1_700_000_000_000.0;
    assert_eq!(check_token(&jwt(1_700_000_100), now), Ok(()));
    assert_eq!(
        check_token(&jwt(1_699_999_999), now),
        Err("has expired (its exp is in the past)")
    );
    for bad in ["", "abc", "a.b", "a.b.c.d", "a.%%%.c", "a.e30", "a.e30."] {
        assert!(check_token(bad, now).is_err(), "{bad}");
    }
    // `{}`: no exp.
    assert_eq!(check_token("a.e30.c2ln", now), Err("has no exp claim"));
}

#[test]
fn verified_deployment_waits_for_a_token_then_says_hello_with_it_and_stores_no_secret() {
    let mut s = verified();
    assert!(s.launcher_hidden(), "no button before a valid token");
    s.update(Msg::Booted);
    assert!(
        s.update(Msg::LauncherClicked)
            .iter()
            .all(|e| *e != Effect::Connect)
    );
    assert_eq!(s.link, Link::Offline);
    let token = jwt(2_000_000_000);
    let fx = s.update(Msg::IdentityTokenSet(token.clone()));
    assert!(
        fx.contains(&Effect::Connect),
        "the open window connects once a token is set"
    );
    let hello = sent_frames(&s.update(Msg::SocketOpened));
    assert_eq!(
        hello,
        vec![ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: Some(token),
        }]
    );
    // Verified welcome: empty credential, and the visitor's open conversation from any browser.
    let fx = s.update(frame(ToVisitor::Welcome {
        protocol_version: 1,
        end_user_id: uid(),
        credential: String::new(),
        conversation_id: Some(cid(C)),
    }));
    assert_eq!(s.credential, None);
    assert_eq!(s.persisted().credential, None);
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Resume {
            conversation_id: cid(C),
            after_seq: 0
        }]
    );
    assert!(!s.launcher_hidden() || s.window != WindowState::Closed);
}

#[test]
fn expired_token_fires_the_event_and_a_fresh_one_goes_out_as_identify() {
    let mut s = verified();
    s.update(Msg::IdentityTokenSet(jwt(2_000_000_000)));
    s.update(Msg::LauncherClicked);
    s.update(Msg::SocketOpened);
    s.update(welcome(""));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(conversation(0, true));
    let fx = s.update(frame(ToVisitor::IdentityTokenExpired { grace_seconds: 30 }));
    assert_eq!(events(&fx), vec![Event::IdentityTokenExpired]);
    let fresh = jwt(2_000_000_500);
    let fx = s.update(Msg::IdentityTokenSet(fresh.clone()));
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::Identify {
            identity_token: fresh
        }]
    );
    // The answer is a welcome on the live connection: nothing is re-joined.
    let fx = s.update(welcome(""));
    assert!(sent_frames(&fx).is_empty(), "{fx:?}");
    assert_eq!(s.link, Link::Live);
}

#[test]
fn refused_token_disconnects_and_expiry_past_grace_clears_the_session() {
    let mut s = verified();
    s.update(Msg::IdentityTokenSet(jwt(2_000_000_000)));
    s.update(Msg::LauncherClicked);
    s.update(Msg::SocketOpened);
    let fx = s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::IdentityInvalid,
        message: "wrong issuer".into(),
        entry_id: None,
        retry_after_ms: None,
    })));
    assert!(fx.contains(&Effect::Disconnect));
    assert!(matches!(&fx[0], Effect::Warn(w) if w.contains("wrong issuer")));
    assert_eq!(s.link, Link::Offline);
    assert!(s.launcher_hidden(), "no button until a valid token again");

    s.update(Msg::IdentityTokenSet(jwt(2_000_000_000)));
    s.update(Msg::SocketOpened);
    s.update(welcome(""));
    s.update(Msg::ConversationIdGenerated(cid(C)));
    s.update(conversation(0, true));
    let fx = s.update(frame(ToVisitor::Error(ErrorFrame {
        code: ErrorCode::IdentityExpired,
        message: "expired".into(),
        entry_id: None,
        retry_after_ms: None,
    })));
    assert!(fx.contains(&Effect::ClearStorage));
    assert!(events(&fx).contains(&Event::Ready));
    assert_eq!(s.conversation_id, None);
    assert!(s.launcher_hidden());
}

#[test]
fn clear_session_ends_the_conversation_forgets_everything_and_fires_ready_again() {
    let mut s = live();
    s.update(text(1, 1, Role::Agent, "hi"));
    let fx = s.update(Msg::ClearSessionRequested { end: true });
    assert_eq!(
        sent_frames(&fx),
        vec![ToServer::EndConversation {
            conversation_id: cid(C)
        }]
    );
    let end_at = fx
        .iter()
        .position(|e| matches!(e, Effect::Send(_)))
        .unwrap();
    let gone_at = fx.iter().position(|e| *e == Effect::Disconnect).unwrap();
    assert!(
        end_at < gone_at,
        "endConversation goes out before the socket closes"
    );
    assert!(fx.contains(&Effect::ClearStorage));
    assert_eq!(
        events(&fx),
        vec![
            Event::WindowClosed,
            Event::UnreadCountChanged(0),
            Event::Ready
        ]
    );
    assert!(s.items.is_empty());
    assert_eq!(
        (s.credential.as_deref(), s.conversation_id, s.link),
        (None, None, Link::Offline)
    );
    // Without `end`, nothing is sent; a second tab follows the removal without clearing again.
    let mut other = live();
    let fx = other.update(Msg::StoredRecordCleared);
    assert!(sent_frames(&fx).is_empty());
    assert!(!fx.contains(&Effect::ClearStorage) && !fx.contains(&Effect::ResetLink));
    assert!(events(&fx).contains(&Event::Ready));
    assert_eq!(other.conversation_id, None);
    // A late write of the cleared visitor's record by a tab that had not heard yet is stale:
    // removed again, not adopted.
    let fx = other.update(Msg::StoredRecordChanged(Persisted {
        v: 1,
        end_user_id: Some(uid()),
        credential: Some("cred".into()),
        conversation_id: Some(cid(C)),
        ..Persisted::default()
    }));
    assert_eq!(fx, vec![Effect::ClearStorage]);
    assert_eq!(other.conversation_id, None);
    // Opening again starts a new visitor and conversation.
    let fx = s.update(Msg::LauncherClicked);
    assert!(fx.contains(&Effect::Connect));
    assert_eq!(
        sent_frames(&s.update(Msg::SocketOpened)),
        vec![ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: None
        }]
    );
}

#[test]
fn visitor_ends_the_conversation_and_the_next_message_starts_a_new_one() {
    let mut s = live();
    assert_eq!(
        sent_frames(&s.update(Msg::EndConversationClicked)),
        vec![ToServer::EndConversation {
            conversation_id: cid(C)
        }]
    );
    s.update(entry(
        1,
        eid(9),
        Role::EndUser,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        },
    ));
    assert!(sent_frames(&s.update(Msg::EndConversationClicked)).is_empty());
    let fx = s.update(send(2, "one more thing"));
    assert!(fx.contains(&Effect::NewConversationId), "{fx:?}");
}

#[test]
fn business_hours_hide_or_mark_the_button_and_fire_boundary_events() {
    let mut s = State::new(Persisted::default(), "Agent");
    s.hours = Some(Hours {
        open: false,
        offline_button: false,
    });
    assert!(s.launcher_hidden() && s.closed());
    assert_eq!(
        events(&s.update(Msg::BusinessHoursBoundary)),
        vec![Event::BusinessHoursStarted]
    );
    assert!(!s.launcher_hidden() && !s.closed());
    assert_eq!(
        events(&s.update(Msg::BusinessHoursBoundary)),
        vec![Event::BusinessHoursEnded]
    );
    // "offline" keeps the button; a conversation already going keeps it too.
    s.hours = Some(Hours {
        open: false,
        offline_button: true,
    });
    assert!(!s.launcher_hidden() && s.closed());
    let mut going = State::new(
        Persisted {
            v: 1,
            conversation_id: Some(cid(C)),
            ..Persisted::default()
        },
        "Agent",
    );
    going.hours = Some(Hours {
        open: false,
        offline_button: false,
    });
    assert!(!going.launcher_hidden());
}

#[test]
fn typing_goes_out_on_change_and_the_agents_shows_in_the_status() {
    let mut s = live();
    let typing = |t| ToServer::Typing {
        conversation_id: cid(C),
        typing: t,
    };
    assert_eq!(
        sent_frames(&s.update(Msg::Typing(true))),
        vec![typing(true)]
    );
    assert!(sent_frames(&s.update(Msg::Typing(true))).is_empty());
    assert_eq!(
        sent_frames(&s.update(Msg::Typing(false))),
        vec![typing(false)]
    );
    s.update(entry(
        1,
        eid(5),
        Role::Agent,
        EntryPayload::ParticipantChanged {
            entries: vec![em_protocol::ParticipantChange {
                operation: ParticipantOperation::Add,
                participant: Participant {
                    role: Role::Agent,
                    subject: "ada".into(),
                },
                display_name: "Ada".into(),
            }],
        },
    ));
    s.update(frame(ToVisitor::Typing {
        conversation_id: cid(C),
        sender: Participant {
            role: Role::Agent,
            subject: "ada".into(),
        },
        sender_display_name: "Ada".into(),
        typing: true,
    }));
    assert_eq!(s.status_text(), "Ada is typing…");
    s.update(text(2, 6, Role::Agent, "Hello!"));
    assert_eq!(s.status_text(), "Ada joined");
}

#[test]
fn inline_mode_opens_on_load_without_a_button_and_participant_lines_follow_the_setting() {
    let mut s = State::new(Persisted::default(), "Agent");
    s.inline = true;
    s.inline_launch = true;
    let fx = s.update(Msg::Booted);
    assert_eq!(
        fx.iter().filter(|e| **e == Effect::Connect).count(),
        1,
        "one socket"
    );
    assert_eq!(s.window, WindowState::Maximized);
    assert!(fx.contains(&Effect::Connect));
    assert!(s.launcher_hidden());

    let mut s = live();
    s.participant_lines = false;
    s.update(entry(
        1,
        eid(5),
        Role::Agent,
        EntryPayload::ParticipantChanged {
            entries: vec![em_protocol::ParticipantChange {
                operation: ParticipantOperation::Add,
                participant: Participant {
                    role: Role::Chatbot,
                    subject: "bot".into(),
                },
                display_name: "Bot".into(),
            }],
        },
    ));
    assert!(s.items.is_empty(), "no joined line in the history");
    assert_eq!(s.status_text(), "Bot joined");
    // The bot leads and offers choices: with input disabled for bots, the composer waits.
    s.input_with_bot = false;
    s.update(menu(2, 7, &["Orders", "Person"]));
    assert!(!s.input_enabled());
    s.input_with_bot = true;
    assert!(s.input_enabled());
}

#[test]
fn links_are_cut_out_of_text_without_trailing_punctuation() {
    assert_eq!(
        link_runs("See https://shop.example.com/orders/12. Or http://a.example (then) é"),
        vec![
            ("See ", false),
            ("https://shop.example.com/orders/12", true),
            (". Or ", false),
            ("http://a.example", true),
            (" (then) é", false),
        ]
    );
    assert_eq!(
        link_runs("no links, https:// alone"),
        vec![("no links, https:// alone", false)]
    );
    assert_eq!(
        link_runs("javascript:alert(1)"),
        vec![("javascript:alert(1)", false)]
    );
    assert_eq!(
        link_runs("(https://x.example/a)"),
        vec![("(", false), ("https://x.example/a", true), (")", false)]
    );
    assert!(link_runs("").is_empty());
}

#[test]
fn queue_position_shows_while_waiting_and_follows_queue_updates() {
    let mut s = live();
    let routed = |seq, position| {
        entry(
            seq,
            eid(100 + seq as u128),
            Role::System,
            EntryPayload::RoutingResult {
                routing_type: "QueueUpdate".into(),
                failure_type: None,
                estimated_wait_time: Some(em_protocol::EstimatedWaitTime {
                    position,
                    estimated_wait_time_in_seconds: 300,
                }),
            },
        )
    };
    s.update(entry(
        1,
        eid(99),
        Role::System,
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Waiting,
        },
    ));
    s.update(routed(2, 3));
    assert_eq!(
        s.status_text(),
        "Waiting for an agent: you are number 3 in line"
    );
    s.update(routed(3, 1));
    assert_eq!(
        s.status_text(),
        "Waiting for an agent: you are number 1 in line"
    );
}

#[test]
fn delivered_fires_with_sent_on_the_ack_and_links_fire_their_event() {
    let mut s = live();
    s.update(send(1, "see https://example.com/a"));
    let fx = s.update(ack(1, 1));
    assert!(matches!(
        &events(&fx)[..],
        [Event::MessageSent(_), Event::MessageDelivered(_)]
    ));
    let fx = s.update(Msg::LinkClicked {
        entry_id: eid(1),
        link: "https://example.com/a".into(),
    });
    assert!(
        matches!(&events(&fx)[..], [Event::LinkClicked(e, l)] if e.identifier == eid(1) && l == "https://example.com/a")
    );
}

fn read(conversation: u128, seq: u64) -> Msg {
    frame(ToVisitor::Read {
        conversation_id: cid(conversation),
        seq,
    })
}

fn read_ids(fx: &[Effect]) -> Vec<EntryId> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageRead(entry) => Some(entry.identifier),
            _ => None,
        })
        .collect()
}

#[test]
fn read_fires_once_per_visitor_message_up_to_its_seq() {
    let mut s = live();
    for (n, seq) in [(1, 1), (3, 3), (4, 4)] {
        s.update(send(n, "mine"));
        s.update(ack(n, seq));
        if n == 1 {
            s.update(text(2, 50, Role::Agent, "the agent's line"));
        }
    }
    assert_eq!(read_ids(&s.update(read(C, 3))), [eid(1), eid(3)]);
    assert_eq!(read_ids(&s.update(read(C, 3))), []);
    assert_eq!(read_ids(&s.update(read(C, 2))), []);
    assert_eq!(read_ids(&s.update(read(C + 1, 4))), []);
    let fx = s.update(read(C, 4));
    assert!(
        matches!(&events(&fx)[..], [Event::MessageRead(e)] if e.identifier == eid(4) && e.seq == 4)
    );
}

#[test]
fn a_resumes_read_marks_no_replayed_line_but_a_late_ack_it_covers() {
    // A reload: the resume's read comes before the replay, so old lines fire nothing.
    let mut s = live();
    assert_eq!(read_ids(&s.update(read(C, 2))), []);
    assert_eq!(read_ids(&s.update(text(1, 1, Role::EndUser, "old"))), []);
    // A message stored before the drop and read since: its ack after the read says both.
    s.update(send(2, "resent"));
    let fx = s.update(ack(2, 2));
    assert!(matches!(
        &events(&fx)[..],
        [
            Event::MessageSent(_),
            Event::MessageDelivered(_),
            Event::MessageRead(e)
        ] if e.identifier == eid(2)
    ));
}
