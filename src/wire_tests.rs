//! Native tests of the hand-written wire conversions against the protocol crate's serde.

use super::*;
use em_protocol::visitor::{ToServer, ToVisitor};
use em_protocol::*;

fn cid() -> ConversationId {
    ConversationId(Uuid::from_u128(0xC0FFEE))
}
fn eid(n: u128) -> EntryId {
    EntryId(Uuid::from_u128(0xE000 + n))
}
fn parse(text: &str) -> Json {
    Json::parse(text).expect("valid JSON")
}

#[test]
fn readers_match_the_protocol_crate() {
    // Every server → visitor frame, serialized by serde (the protocol's definition), reads back
    // identically through the hand-written readers.
    let entry = |payload: EntryPayload, client_timestamp| ConversationEntry {
        identifier: eid(1),
        conversation_id: cid(),
        seq: 7,
        sender: Participant {
            role: Role::Agent,
            subject: "ada".into(),
        },
        sender_display_name: "Ada".into(),
        transcripted_timestamp: 1_700_000_000_123,
        client_timestamp,
        entry_payload: payload,
    };
    let frames = vec![
        ToVisitor::Welcome {
            protocol_version: 1,
            end_user_id: EndUserId(Uuid::from_u128(3)),
            credential: "s3cret".into(),
            conversation_id: None,
        },
        ToVisitor::Welcome {
            protocol_version: 1,
            end_user_id: EndUserId(Uuid::from_u128(3)),
            credential: String::new(),
            conversation_id: Some(cid()),
        },
        ToVisitor::Conversation {
            conversation_id: cid(),
            status: SessionStatus::Waiting,
            last_seq: 4,
            created: true,
            replay_to: None,
        },
        ToVisitor::Conversation {
            conversation_id: cid(),
            status: SessionStatus::Active,
            last_seq: 900,
            created: false,
            replay_to: Some(210),
        },
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::text(eid(1), "hello \"quoted\" é 😀\n"),
                Some(1_700_000_000_100),
            ),
        },
        ToVisitor::History {
            conversation_id: cid(),
            entries: vec![
                entry(EntryPayload::text(eid(1), "older"), None),
                entry(EntryPayload::text(eid(2), "newer"), Some(5)),
            ],
        },
        ToVisitor::History {
            conversation_id: cid(),
            entries: vec![],
        },
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::Message {
                    abstract_message: AbstractMessage::ChoicesMessage {
                        id: eid(1),
                        choices: Choices::quick_replies(
                            "How can I help?",
                            &["Order status".into(), "Talk to a \"person\"".into()],
                        ),
                    },
                },
                None,
            ),
        },
        // A format this client does not know stays Unknown (its options still render).
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::Message {
                    abstract_message: AbstractMessage::ChoicesMessage {
                        id: eid(1),
                        choices: Choices {
                            format_type: em_protocol::ChoicesFormat::Unknown,
                            ..Choices::quick_replies("Pick one", &["A".into()])
                        },
                    },
                },
                None,
            ),
        },
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::ParticipantChanged {
                    entries: vec![ParticipantChange {
                        operation: ParticipantOperation::Remove,
                        participant: Participant {
                            role: Role::Chatbot,
                            subject: "bot".into(),
                        },
                        display_name: "Bot".into(),
                    }],
                },
                None,
            ),
        },
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::SessionStatusChanged {
                    session_status: SessionStatus::Ended,
                },
                None,
            ),
        },
        ToVisitor::Entry {
            entry: entry(
                EntryPayload::RoutingResult {
                    routing_type: "Initial".into(),
                    failure_type: Some("NoAgent".into()),
                    estimated_wait_time: None,
                },
                None,
            ),
        },
        ToVisitor::Ack {
            conversation_id: cid(),
            entry_id: eid(2),
            seq: 9,
        },
        ToVisitor::Error(ErrorFrame {
            code: ErrorCode::Unauthorized,
            message: "no".into(),
            entry_id: None,
            retry_after_ms: None,
        }),
        ToVisitor::Error(ErrorFrame {
            code: ErrorCode::InvalidMessage,
            message: "empty".into(),
            entry_id: Some(eid(3)),
            retry_after_ms: None,
        }),
        ToVisitor::Error(ErrorFrame {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            entry_id: Some(eid(4)),
            retry_after_ms: Some(1500),
        }),
        ToVisitor::Pong,
        ToVisitor::IdentityTokenExpired { grace_seconds: 30 },
        ToVisitor::Typing {
            conversation_id: cid(),
            sender: Participant {
                role: Role::Agent,
                subject: "ada".into(),
            },
            sender_display_name: "Ada".into(),
            typing: true,
        },
        ToVisitor::Read {
            conversation_id: cid(),
            seq: 7,
        },
    ];
    for f in frames {
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(read_frame(&parse(&json)), Ok(f), "{json}");
    }
    for code in [
        "bad_frame",
        "unsupported_version",
        "handshake_required",
        "unauthorized",
        "unknown_deployment",
        "origin_not_allowed",
        "not_found",
        "conflict",
        "invalid_message",
        "conversation_ended",
        "internal",
        "deployment_unpublished",
        "identity_required",
        "identity_invalid",
        "identity_expired",
        "invalid_field",
        "rate_limited",
    ] {
        let expected: ErrorCode = serde_json::from_value(serde_json::json!(code)).unwrap();
        assert_eq!(error_code(code), expected, "{code}");
    }
}

#[test]
fn unknown_and_malformed_frames() {
    // Unknown frame types and entry types read as Unknown; a bad field is named.
    assert_eq!(
        read_frame(&parse(r#"{"type":"fromTheFuture","x":1.5}"#)),
        Ok(ToVisitor::Unknown)
    );
    let odd = parse(
        r#"{"type":"entry","entry":{"identifier":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","conversationId":"6f9619ff-8b86-d011-b42d-00c04fc964ff","seq":1,"sender":{"role":"Robot","subject":""},"senderDisplayName":"","transcriptedTimestamp":1,"entryPayload":{"entryType":"TypingStartedIndicator"}}}"#,
    );
    let Ok(ToVisitor::Entry { entry }) = read_frame(&odd) else {
        panic!("unknown entry types still parse")
    };
    assert_eq!(
        (entry.sender.role, entry.entry_payload),
        (Role::Unknown, EntryPayload::Unknown)
    );
    assert_eq!(
        read_frame(&parse(r#"{"type":"ack","seq":"x"}"#)),
        Err("conversationId")
    );
    assert_eq!(
        read_frame(&parse(
            r#"{"type":"ack","conversationId":"6f9619ff-8b86-d011-b42d-00c04fc964ff","entryId":"6f9619ff-8b86-d011-b42d-00c04fc964ff","seq":-1}"#
        )),
        Err("seq")
    );
    assert_eq!(read_frame(&parse("[1,2]")), Err("type"));
}

#[test]
fn writers_match_the_protocol_crate() {
    // Every visitor → server frame and every payload written by hand parses back with serde.
    let frames = vec![
        ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: None,
        },
        ToServer::Hello {
            protocol_version: 1,
            credential: Some("s3cret".into()),
            identity_token: None,
        },
        ToServer::CreateConversation {
            conversation_id: cid(),
        },
        ToServer::Resume {
            conversation_id: cid(),
            after_seq: 12,
        },
        ToServer::History {
            conversation_id: cid(),
            before_seq: 301,
        },
        ToServer::SendMessage {
            conversation_id: cid(),
            entry_id: eid(1),
            text: "hé \"quoted\"\n\u{1}".into(),
            client_timestamp: 1_700_000_000_100,
        },
        ToServer::Ping,
        ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
        },
        ToServer::Identify {
            identity_token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln".into(),
        },
        ToServer::EndConversation {
            conversation_id: cid(),
        },
        ToServer::Typing {
            conversation_id: cid(),
            typing: true,
        },
    ];
    for f in frames {
        let json = write_frame(&f);
        assert_eq!(
            serde_json::from_str::<ToServer>(&json).unwrap(),
            f,
            "{json}"
        );
    }
    let payloads = vec![
        EntryPayload::text(eid(1), "hi"),
        EntryPayload::ParticipantChanged {
            entries: vec![ParticipantChange {
                operation: ParticipantOperation::Add,
                participant: Participant {
                    role: Role::Agent,
                    subject: "ada".into(),
                },
                display_name: "Ada".into(),
            }],
        },
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Inactive,
        },
        EntryPayload::RoutingResult {
            routing_type: "Initial".into(),
            failure_type: None,
            estimated_wait_time: None,
        },
    ];
    for p in payloads {
        let json = write_payload(&p);
        assert_eq!(
            serde_json::from_str::<EntryPayload>(&json).unwrap(),
            p,
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::to_value(&p).unwrap()
        );
    }
}

#[test]
fn stored_record_and_config_round_trip() {
    // The localStorage record has the documented shape and reads back; the config and its
    // error body read as the protocol crate writes them.
    let p = Persisted {
        v: 1,
        end_user_id: Some(EndUserId(Uuid::from_u128(1))),
        credential: Some("c".into()),
        conversation_id: Some(cid()),
        last_seq: 42,
        read_seq: 40,
        window: WindowState::Minimized,
    };
    let json = write_persisted(&p);
    assert_eq!(
        json,
        r#"{"v":1,"endUserId":"00000000-0000-0000-0000-000000000001","credential":"c","conversationId":"00000000-0000-0000-0000-000000c0ffee","lastSeq":42,"readSeq":40,"window":"minimized"}"#
    );
    assert_eq!(read_persisted(&parse(&json)), Some(p));
    let empty = write_persisted(&Persisted {
        v: 1,
        ..Persisted::default()
    });
    assert_eq!(
        empty,
        r#"{"v":1,"endUserId":null,"credential":null,"conversationId":null,"lastSeq":0,"readSeq":0,"window":"closed"}"#
    );
    let older = r#"{"v":1,"lastSeq":7,"window":"closed"}"#;
    assert_eq!(
        read_persisted(&parse(older)).map(|p| p.read_seq),
        Some(7),
        "a record from before readSeq: everything stored was read"
    );
    assert_eq!(
        read_persisted(&parse(r#"{"window":"maximized"}"#)),
        None,
        "no version, no record"
    );

    let config = DeploymentConfig {
        org_id: "00D000000000001".into(),
        deployment_name: "Demo".into(),
        protocol_version: 1,
        branding: Branding {
            title: "Chat".into(),
            button_color: "#f00".into(),
            ..Branding::default()
        },
        auth: Default::default(),
        prechat_form: None,
        business_hours: None,
    };
    assert_eq!(
        read_config(&parse(&serde_json::to_string(&config).unwrap())),
        Ok(config)
    );
    let refused = ConfigError {
        error: em_protocol::config::ConfigErrorBody {
            code: ErrorCode::OriginNotAllowed,
            message: "origin http://evil.test is not allowed".into(),
        },
    };
    assert_eq!(
        read_config_error(&parse(&serde_json::to_string(&refused).unwrap())),
        Some((
            ErrorCode::OriginNotAllowed,
            "origin http://evil.test is not allowed".into()
        ))
    );
}

#[test]
fn prechat_form_reads_as_the_protocol_crate_writes_it() {
    // The pre-chat form (both displays, every field kind, hidden fields) reads back exactly as
    // serde wrote it; a config without one has none, and missing keys take serde's defaults.
    let form = PrechatForm {
        display: PrechatDisplay::Session,
        fields: vec![
            PrechatField {
                name: "_firstName".into(),
                label: "First name".into(),
                kind: FieldKind::Text,
                required: true,
                max_length: 40,
                choices: vec![],
            },
            PrechatField {
                name: "_email".into(),
                label: "Email".into(),
                kind: FieldKind::Email,
                required: true,
                max_length: 80,
                choices: vec![],
            },
            PrechatField {
                name: "Topic".into(),
                label: "Topic \"quoted\"".into(),
                kind: FieldKind::Choice,
                required: false,
                max_length: 255,
                choices: vec!["Billing".into(), "Orders".into()],
            },
        ],
        hidden_fields: vec![HiddenField {
            name: "Plan".into(),
            max_length: 20,
        }],
    };
    for form in [
        Some(form.clone()),
        Some(PrechatForm {
            display: PrechatDisplay::Conversation,
            ..form
        }),
        Some(PrechatForm::default()),
        None,
    ] {
        let config = DeploymentConfig {
            org_id: "00D000000000001".into(),
            deployment_name: "Demo_Prechat".into(),
            protocol_version: 1,
            branding: Branding::default(),
            auth: Default::default(),
            prechat_form: form,
            business_hours: None,
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            read_config(&parse(&json)).map(|c| c.prechat_form),
            Ok(config.prechat_form),
            "{json}"
        );
    }
    let sparse = r#"{"orgId":"o","deploymentName":"d","protocolVersion":1,"branding":{},
        "prechatForm":{"fields":[{"name":"A"}]}}"#;
    let expected: DeploymentConfig = serde_json::from_str(sparse).unwrap();
    assert_eq!(
        read_config(&parse(sparse)).map(|c| c.prechat_form),
        Ok(expected.prechat_form)
    );
}

#[test]
fn context_is_written_as_the_protocols_set_context() {
    // `write_context` writes the widget's pairs straight to JSON; serde reads the same frame.
    let mut c = crate::state::Context::default();
    let pair = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    c.prechat = pair("_email", "ada@example.com");
    c.hidden = pair("Plan", "Gold \"x\"");
    c.session = pair("cart", "2");
    c.auto_response = pair("FirstName", "Ada");
    c.page = Some(em_protocol::agent::PageContext {
        url: "https://shop.example.com/?q=1".into(),
        title: "Shop".into(),
    });
    let map = |k: &str, v: &str| [(k.to_string(), v.to_string())].into();
    assert_eq!(
        serde_json::from_str::<ToServer>(&write_context(cid(), &c)).unwrap(),
        ToServer::SetContext {
            conversation_id: cid(),
            prechat_fields: map("_email", "ada@example.com"),
            hidden_fields: map("Plan", "Gold \"x\""),
            page: c.page.clone(),
            session_context: map("cart", "2"),
            auto_response_parameters: map("FirstName", "Ada"),
        }
    );
    let only_page = crate::state::Context {
        page: Some(em_protocol::agent::PageContext {
            url: "https://shop.example.com/".into(),
            title: String::new(),
        }),
        ..Default::default()
    };
    let json = write_context(cid(), &only_page);
    assert!(
        !json.contains("title") && !json.contains("Fields"),
        "{json}"
    );
    assert!(matches!(
        serde_json::from_str::<ToServer>(&json).unwrap(),
        ToServer::SetContext { page: Some(_), .. }
    ));
}
