//! Golden JSON: each frame serializes to exactly the documented JSON and parses back.

use em_protocol::agent::{self, ConversationContext, ConversationSummary, PageContext, Presence};
use em_protocol::visitor;
use em_protocol::*;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use uuid::Uuid;

const C: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const E: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const U: &str = "a8098c1a-f86e-11da-bd1a-00112444be1e";

fn cid() -> ConversationId {
    ConversationId(Uuid::parse_str(C).unwrap())
}
fn eid() -> EntryId {
    EntryId(Uuid::parse_str(E).unwrap())
}
fn uid() -> EndUserId {
    EndUserId(Uuid::parse_str(U).unwrap())
}

/// Asserts `value` serializes to `expected` and `expected` parses back to `value`.
fn golden<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: T,
    expected: Value,
) {
    assert_eq!(serde_json::to_value(&value).unwrap(), expected);
    assert_eq!(serde_json::from_value::<T>(expected).unwrap(), value);
}

fn text_entry() -> (ConversationEntry, Value) {
    let entry = ConversationEntry {
        identifier: eid(),
        conversation_id: cid(),
        seq: 3,
        sender: Participant {
            role: Role::EndUser,
            subject: U.into(),
        },
        sender_display_name: "Guest".into(),
        transcripted_timestamp: 1_700_000_000_123,
        client_timestamp: Some(1_700_000_000_100),
        entry_payload: EntryPayload::text(eid(), "hello"),
    };
    let json = json!({
        "identifier": E, "conversationId": C, "seq": 3,
        "sender": {"role": "EndUser", "subject": U}, "senderDisplayName": "Guest",
        "transcriptedTimestamp": 1_700_000_000_123i64, "clientTimestamp": 1_700_000_000_100i64,
        "entryPayload": {"entryType": "Message", "abstractMessage": {
            "messageType": "StaticContentMessage", "id": E,
            "staticContent": {"formatType": "Text", "text": "hello"}}}
    });
    (entry, json)
}

#[test]
fn visitor_hello() {
    golden(
        visitor::ToServer::Hello {
            protocol_version: 1,
            credential: Some("s3cret".into()),
            identity_token: None,
        },
        json!({"type": "hello", "protocolVersion": 1, "credential": "s3cret"}),
    );
    golden(
        visitor::ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: None,
        },
        json!({"type": "hello", "protocolVersion": 1}),
    );
}

#[test]
fn visitor_create_conversation() {
    golden(
        visitor::ToServer::CreateConversation {
            conversation_id: cid(),
        },
        json!({"type": "createConversation", "conversationId": C}),
    );
}

#[test]
fn visitor_resume() {
    golden(
        visitor::ToServer::Resume {
            conversation_id: cid(),
            after_seq: 7,
        },
        json!({"type": "resume", "conversationId": C, "afterSeq": 7}),
    );
}

#[test]
fn visitor_send_message() {
    golden(
        visitor::ToServer::SendMessage {
            conversation_id: cid(),
            entry_id: eid(),
            text: "hello".into(),
            client_timestamp: 1_700_000_000_100,
        },
        json!({"type": "sendMessage", "conversationId": C, "entryId": E, "text": "hello",
               "clientTimestamp": 1_700_000_000_100i64}),
    );
}

#[test]
fn pings_and_pongs() {
    golden(visitor::ToServer::Ping, json!({"type": "ping"}));
    golden(visitor::ToVisitor::Pong, json!({"type": "pong"}));
    golden(agent::ToServer::Ping, json!({"type": "ping"}));
    golden(agent::ToAgent::Pong, json!({"type": "pong"}));
}

#[test]
fn unknown_frame_types_parse_to_unknown() {
    let v: visitor::ToVisitor =
        serde_json::from_value(json!({"type": "fromTheFuture", "x": 1})).unwrap();
    assert_eq!(v, visitor::ToVisitor::Unknown);
    let s: visitor::ToServer = serde_json::from_value(json!({"type": "nope"})).unwrap();
    assert_eq!(s, visitor::ToServer::Unknown);
    let p: EntryPayload =
        serde_json::from_value(json!({"entryType": "TypingStartedIndicator"})).unwrap();
    assert_eq!(p, EntryPayload::Unknown);
    let code: ErrorCode = serde_json::from_value(json!("quota_exceeded")).unwrap();
    assert_eq!(code, ErrorCode::Unknown);
}

#[test]
fn visitor_welcome() {
    golden(
        visitor::ToVisitor::Welcome {
            protocol_version: 1,
            end_user_id: uid(),
            credential: "s3cret".into(),
            conversation_id: None,
        },
        json!({"type": "welcome", "protocolVersion": 1, "endUserId": U, "credential": "s3cret"}),
    );
    golden(
        visitor::ToVisitor::Welcome {
            protocol_version: 1,
            end_user_id: uid(),
            credential: String::new(),
            conversation_id: Some(cid()),
        },
        json!({"type": "welcome", "protocolVersion": 1, "endUserId": U, "credential": "",
               "conversationId": C}),
    );
}

#[test]
fn visitor_conversation() {
    golden(
        visitor::ToVisitor::Conversation {
            conversation_id: cid(),
            status: SessionStatus::Waiting,
            last_seq: 4,
            created: false,
            replay_to: None,
        },
        json!({"type": "conversation", "conversationId": C, "status": "Waiting", "lastSeq": 4,
               "created": false}),
    );
    golden(
        visitor::ToVisitor::Conversation {
            conversation_id: cid(),
            status: SessionStatus::Active,
            last_seq: 900,
            created: false,
            replay_to: Some(210),
        },
        json!({"type": "conversation", "conversationId": C, "status": "Active", "lastSeq": 900,
               "created": false, "replayTo": 210}),
    );
}

#[test]
fn visitor_entry() {
    let (entry, json) = text_entry();
    golden(
        visitor::ToVisitor::Entry { entry },
        json!({"type": "entry", "entry": json}),
    );
}

#[test]
fn visitor_ack() {
    golden(
        visitor::ToVisitor::Ack {
            conversation_id: cid(),
            entry_id: eid(),
            seq: 3,
        },
        json!({"type": "ack", "conversationId": C, "entryId": E, "seq": 3}),
    );
}

#[test]
fn error_frames() {
    golden(
        visitor::ToVisitor::Error(ErrorFrame {
            code: ErrorCode::BadFrame,
            message: "expected a JSON object with a \"type\"".into(),
            entry_id: None,
            retry_after_ms: None,
        }),
        json!({"type": "error", "code": "bad_frame", "message": "expected a JSON object with a \"type\""}),
    );
    golden(
        agent::ToAgent::Error(ErrorFrame {
            code: ErrorCode::InvalidMessage,
            message: "text is empty".into(),
            entry_id: Some(eid()),
            retry_after_ms: None,
        }),
        json!({"type": "error", "code": "invalid_message", "message": "text is empty", "entryId": E}),
    );
    golden(
        visitor::ToVisitor::Error(ErrorFrame {
            code: ErrorCode::RateLimited,
            message: "at most 5 messages per second".into(),
            entry_id: Some(eid()),
            retry_after_ms: Some(800),
        }),
        json!({"type": "error", "code": "rate_limited", "message": "at most 5 messages per second", "entryId": E, "retryAfterMs": 800}),
    );
}

#[test]
fn entry_payloads() {
    let pc = EntryPayload::ParticipantChanged {
        entries: vec![ParticipantChange {
            operation: ParticipantOperation::Add,
            participant: Participant {
                role: Role::Agent,
                subject: "ada".into(),
            },
            display_name: "Ada".into(),
        }],
    };
    golden(
        pc,
        json!({"entryType": "ParticipantChanged", "entries": [
        {"operation": "add", "participant": {"role": "Agent", "subject": "ada"}, "displayName": "Ada"}]}),
    );
    golden(
        EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        },
        json!({"entryType": "SessionStatusChanged", "sessionStatus": "Ended"}),
    );
    golden(
        EntryPayload::RoutingResult {
            routing_type: "Initial".into(),
            failure_type: None,
            estimated_wait_time: None,
        },
        json!({"entryType": "RoutingResult", "routingType": "Initial"}),
    );
}

#[test]
fn routing_result_with_queue_position() {
    golden(
        EntryPayload::RoutingResult {
            routing_type: "Initial".into(),
            failure_type: None,
            estimated_wait_time: Some(EstimatedWaitTime {
                position: 2,
                estimated_wait_time_in_seconds: 240,
            }),
        },
        json!({"entryType": "RoutingResult", "routingType": "Initial",
               "estimatedWaitTime": {"position": 2, "estimatedWaitTimeInSeconds": 240}}),
    );
    golden(
        EntryPayload::RoutingResult {
            routing_type: "Initial".into(),
            failure_type: Some("NoAgentAvailable".into()),
            estimated_wait_time: None,
        },
        json!({"entryType": "RoutingResult", "routingType": "Initial", "failureType": "NoAgentAvailable"}),
    );
}

#[test]
fn choices_message() {
    let choices = Choices::quick_replies(
        "How can I help?",
        &["Order status".into(), "Talk to a person".into()],
    );
    golden(
        EntryPayload::Message {
            abstract_message: AbstractMessage::ChoicesMessage { id: eid(), choices },
        },
        json!({"entryType": "Message", "abstractMessage": {"messageType": "ChoicesMessage", "id": E,
               "choices": {"formatType": "QuickReplies", "text": "How can I help?", "optionItems": [
                 {"optionIdentifier": "0", "titleItem": {"itemType": "TitleItem", "title": "Order status"}},
                 {"optionIdentifier": "1", "titleItem": {"itemType": "TitleItem", "title": "Talk to a person"}}]}}}),
    );
}

#[test]
fn visitor_set_context() {
    golden(
        visitor::ToServer::SetContext {
            conversation_id: cid(),
            prechat_fields: [("Topic".to_string(), "Billing".to_string())].into(),
            hidden_fields: [("Plan".to_string(), "Gold".to_string())].into(),
            page: Some(PageContext {
                url: "https://shop.example.com/checkout".into(),
                title: "Checkout".into(),
            }),
            session_context: [("cartValue".to_string(), "120".to_string())].into(),
            auto_response_parameters: [("FirstName".to_string(), "Ada".to_string())].into(),
        },
        json!({"type": "setContext", "conversationId": C, "prechatFields": {"Topic": "Billing"},
               "hiddenFields": {"Plan": "Gold"},
               "page": {"url": "https://shop.example.com/checkout", "title": "Checkout"},
               "sessionContext": {"cartValue": "120"},
               "autoResponseParameters": {"FirstName": "Ada"}}),
    );
    golden(
        visitor::ToServer::SetContext {
            conversation_id: cid(),
            prechat_fields: Default::default(),
            hidden_fields: Default::default(),
            page: None,
            session_context: Default::default(),
            auto_response_parameters: Default::default(),
        },
        json!({"type": "setContext", "conversationId": C}),
    );
}

#[test]
fn visitor_identity() {
    golden(
        visitor::ToServer::Hello {
            protocol_version: 1,
            credential: None,
            identity_token: Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
        },
        json!({"type": "hello", "protocolVersion": 1, "identityToken": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}),
    );
    golden(
        visitor::ToServer::Identify {
            identity_token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln".into(),
        },
        json!({"type": "identify", "identityToken": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}),
    );
    golden(
        visitor::ToVisitor::IdentityTokenExpired { grace_seconds: 30 },
        json!({"type": "identityTokenExpired", "graceSeconds": 30}),
    );
    for (code, name) in [
        (ErrorCode::IdentityRequired, "identity_required"),
        (ErrorCode::IdentityInvalid, "identity_invalid"),
        (ErrorCode::IdentityExpired, "identity_expired"),
        (ErrorCode::InvalidField, "invalid_field"),
        (ErrorCode::DeploymentUnpublished, "deployment_unpublished"),
    ] {
        golden(code, json!(name));
    }
}

#[test]
fn visitor_end_conversation() {
    golden(
        visitor::ToServer::EndConversation {
            conversation_id: cid(),
        },
        json!({"type": "endConversation", "conversationId": C}),
    );
}

#[test]
fn visitor_typing() {
    golden(
        visitor::ToVisitor::Typing {
            conversation_id: cid(),
            sender: Participant {
                role: Role::Agent,
                subject: "ada".into(),
            },
            sender_display_name: "Ada".into(),
            typing: true,
        },
        json!({"type": "typing", "conversationId": C, "sender": {"role": "Agent", "subject": "ada"},
               "senderDisplayName": "Ada", "typing": true}),
    );
}

#[test]
fn visitor_typing_to_agent() {
    golden(
        visitor::ToServer::Typing {
            conversation_id: cid(),
            typing: true,
        },
        json!({"type": "typing", "conversationId": C, "typing": true}),
    );
    golden(
        agent::ToAgent::Typing {
            conversation_id: cid(),
            typing: true,
        },
        json!({"type": "typing", "conversationId": C, "typing": true}),
    );
}

#[test]
fn agent_transfer_and_typing() {
    golden(
        agent::ToServer::Transfer {
            conversation_id: cid(),
            to_agent: Some("grace".into()),
            to_queue: None,
        },
        json!({"type": "transfer", "conversationId": C, "toAgent": "grace"}),
    );
    golden(
        agent::ToServer::Transfer {
            conversation_id: cid(),
            to_agent: None,
            to_queue: Some("billing".into()),
        },
        json!({"type": "transfer", "conversationId": C, "toQueue": "billing"}),
    );
    golden(
        agent::ToServer::Typing {
            conversation_id: cid(),
            typing: false,
        },
        json!({"type": "typing", "conversationId": C, "typing": false}),
    );
}

#[test]
fn agent_mark_read_and_visitor_read() {
    golden(
        agent::ToServer::MarkRead {
            conversation_id: cid(),
            seq: 7,
        },
        json!({"type": "markRead", "conversationId": C, "seq": 7}),
    );
    golden(
        visitor::ToVisitor::Read {
            conversation_id: cid(),
            seq: 7,
        },
        json!({"type": "read", "conversationId": C, "seq": 7}),
    );
}

#[test]
fn agent_presence_states() {
    for (p, name) in [
        (Presence::Online, "Online"),
        (Presence::Busy, "Busy"),
        (Presence::Away, "Away"),
        (Presence::Offline, "Offline"),
    ] {
        golden(
            agent::ToServer::SetPresence { presence: p },
            json!({"type": "setPresence", "presence": name}),
        );
    }
}

#[test]
fn agent_hello_and_presence() {
    golden(
        agent::ToServer::Hello {
            protocol_version: 1,
            username: "ada".into(),
            credential: Some("pw".into()),
            session_token: None,
        },
        json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}),
    );
    golden(
        agent::ToServer::SetPresence {
            presence: Presence::Online,
        },
        json!({"type": "setPresence", "presence": "Online"}),
    );
    golden(
        agent::ToAgent::Presence {
            presence: Presence::Offline,
        },
        json!({"type": "presence", "presence": "Offline"}),
    );
}

#[test]
fn agent_send_and_end() {
    golden(
        agent::ToServer::SendMessage {
            conversation_id: cid(),
            entry_id: eid(),
            text: "hi".into(),
        },
        json!({"type": "sendMessage", "conversationId": C, "entryId": E, "text": "hi"}),
    );
    golden(
        agent::ToServer::EndSession {
            conversation_id: cid(),
        },
        json!({"type": "endSession", "conversationId": C}),
    );
}

#[test]
fn agent_welcome() {
    golden(
        agent::ToAgent::Welcome {
            protocol_version: 1,
            username: "ada".into(),
            display_name: "Ada".into(),
            capacity: 3,
            agents: vec![],
            queues: vec![],
            session_token: None,
        },
        json!({"type": "welcome", "protocolVersion": 1, "username": "ada", "displayName": "Ada",
               "capacity": 3}),
    );
    golden(
        agent::ToAgent::Welcome {
            protocol_version: 1,
            username: "ada".into(),
            display_name: "Ada".into(),
            capacity: 3,
            agents: vec![agent::AgentRef {
                username: "grace".into(),
                display_name: "Grace".into(),
            }],
            queues: vec!["billing".into(), "support".into()],
            session_token: None,
        },
        json!({"type": "welcome", "protocolVersion": 1, "username": "ada", "displayName": "Ada",
               "capacity": 3, "agents": [{"username": "grace", "displayName": "Grace"}],
               "queues": ["billing", "support"]}),
    );
}

#[test]
fn agent_assigned_entry_ack_released() {
    let (entry, entry_json) = text_entry();
    golden(
        agent::ToAgent::Assigned {
            conversation: ConversationSummary {
                conversation_id: cid(),
                end_user_id: uid(),
                org_id: "00D000000000001".into(),
                deployment_name: "Demo".into(),
                status: SessionStatus::Active,
                queue: String::new(),
                context: ConversationContext::default(),
            },
            history: vec![entry.clone()],
        },
        json!({"type": "assigned", "conversation": {"conversationId": C, "endUserId": U,
               "orgId": "00D000000000001", "deploymentName": "Demo", "status": "Active", "context": {}},
               "history": [entry_json.clone()]}),
    );
    let context = ConversationContext {
        prechat_fields: [("Topic".to_string(), "Billing".to_string())].into(),
        hidden_fields: Default::default(),
        page: Some(PageContext {
            url: "https://shop.example.com/".into(),
            title: String::new(),
        }),
        variables: [("orderNumber".to_string(), "12345".to_string())].into(),
        session_context: [("cartValue".to_string(), "120".to_string())].into(),
        verified_subject: Some("customer-42".into()),
    };
    golden(
        agent::ToAgent::Assigned {
            conversation: ConversationSummary {
                conversation_id: cid(),
                end_user_id: uid(),
                org_id: "00D000000000001".into(),
                deployment_name: "Demo".into(),
                status: SessionStatus::Active,
                queue: "billing".into(),
                context,
            },
            history: vec![],
        },
        json!({"type": "assigned", "conversation": {"conversationId": C, "endUserId": U,
               "orgId": "00D000000000001", "deploymentName": "Demo", "status": "Active", "queue": "billing",
               "context": {"prechatFields": {"Topic": "Billing"}, "page": {"url": "https://shop.example.com/"},
                           "variables": {"orderNumber": "12345"}, "sessionContext": {"cartValue": "120"},
                           "verifiedSubject": "customer-42"}},
               "history": []}),
    );
    golden(
        agent::ToAgent::Entry { entry },
        json!({"type": "entry", "entry": entry_json}),
    );
    golden(
        agent::ToAgent::Ack {
            conversation_id: cid(),
            entry_id: eid(),
            seq: 9,
        },
        json!({"type": "ack", "conversationId": C, "entryId": E, "seq": 9}),
    );
    golden(
        agent::ToAgent::Released {
            conversation_id: cid(),
        },
        json!({"type": "released", "conversationId": C}),
    );
}

#[test]
fn deployment_config() {
    let cfg = DeploymentConfig {
        org_id: "00D000000000001".into(),
        deployment_name: "Demo".into(),
        protocol_version: 1,
        branding: Branding {
            title: "Chat with us".into(),
            ..Branding::default()
        },
        auth: AuthMode::Anonymous,
        prechat_form: None,
        business_hours: None,
    };
    golden(
        cfg,
        json!({"orgId": "00D000000000001", "deploymentName": "Demo", "protocolVersion": 1,
        "branding": {"title": "Chat with us", "greeting": "", "agentDisplayName": "", "buttonColor": "",
        "headerColor": "", "accentColor": "", "fontFamily": "", "buttonLabel": "", "inputPlaceholder": "",
        "language": ""}, "auth": "anonymous"}),
    );
    let full = DeploymentConfig {
        org_id: "00D000000000001".into(),
        deployment_name: "Demo".into(),
        protocol_version: 1,
        branding: Branding {
            title: "Fale conosco".into(),
            language: "pt_BR".into(),
            ..Branding::default()
        },
        auth: AuthMode::Verified,
        prechat_form: Some(PrechatForm {
            display: PrechatDisplay::Session,
            fields: vec![
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
                    label: "Topic".into(),
                    kind: FieldKind::Choice,
                    required: false,
                    max_length: 40,
                    choices: vec!["Billing".into(), "Orders".into()],
                },
            ],
            hidden_fields: vec![HiddenField {
                name: "Plan".into(),
                max_length: 20,
            }],
        }),
        business_hours: Some(BusinessHoursStatus {
            open: false,
            next_change_at: 1_790_000_000_000,
            outside_hours: OutsideHours::Offline,
        }),
    };
    golden(
        full,
        json!({"orgId": "00D000000000001", "deploymentName": "Demo", "protocolVersion": 1,
        "branding": {"title": "Fale conosco", "greeting": "", "agentDisplayName": "", "buttonColor": "",
        "headerColor": "", "accentColor": "", "fontFamily": "", "buttonLabel": "", "inputPlaceholder": "",
        "language": "pt_BR"},
        "auth": "verified",
        "prechatForm": {"display": "Session",
          "fields": [
            {"name": "_email", "label": "Email", "type": "email", "required": true, "maxLength": 80},
            {"name": "Topic", "label": "Topic", "type": "choice", "required": false, "maxLength": 40,
             "choices": ["Billing", "Orders"]}],
          "hiddenFields": [{"name": "Plan", "maxLength": 20}]},
        "businessHours": {"open": false, "nextChangeAt": 1_790_000_000_000i64, "outsideHours": "offline"}}),
    );
    golden(
        ConfigError {
            error: em_protocol::config::ConfigErrorBody {
                code: ErrorCode::OriginNotAllowed,
                message: "origin http://evil.test is not allowed".into(),
            },
        },
        json!({"error": {"code": "origin_not_allowed", "message": "origin http://evil.test is not allowed"}}),
    );
}

#[test]
// The close codes and reasons are pinned: clients branch on these numbers (SPEC §1.1).
fn close_codes() {
    use em_protocol::close::CloseCode;
    let table: Vec<(u16, &str, bool)> = CloseCode::ALL
        .iter()
        .map(|c| (c.code(), c.reason(), c.reconnect()))
        .collect();
    assert_eq!(
        table,
        vec![
            (1001, "server shutting down", true),
            (1007, "invalid UTF-8", true),
            (1009, "frame too large", true),
            (4000, "idle", true),
            (4001, "slow consumer", true),
            (4002, "rate limited", true),
            (4003, "identity expired", false),
            (4004, "unsupported protocol version", false),
            (4005, "access revoked", false),
        ]
    );
    for c in CloseCode::ALL {
        assert_eq!(CloseCode::from_code(c.code()), Some(c));
    }
    assert_eq!(CloseCode::from_code(1000), None);
}

#[test]
fn agent_session_token_and_sign_out() {
    golden(
        agent::ToServer::Hello {
            protocol_version: 1,
            username: "ada".into(),
            credential: None,
            session_token: Some("q1Xb0fd7n0qzZrQbU9y1dkS3b0M3Qk2WcWn2v8Xh5jU".into()),
        },
        json!({"type": "hello", "protocolVersion": 1, "username": "ada",
               "sessionToken": "q1Xb0fd7n0qzZrQbU9y1dkS3b0M3Qk2WcWn2v8Xh5jU"}),
    );
    golden(
        agent::ToAgent::Welcome {
            protocol_version: 1,
            username: "ada".into(),
            display_name: "Ada".into(),
            capacity: 3,
            agents: vec![],
            queues: vec![],
            session_token: Some("q1Xb0fd7n0qzZrQbU9y1dkS3b0M3Qk2WcWn2v8Xh5jU".into()),
        },
        json!({"type": "welcome", "protocolVersion": 1, "username": "ada", "displayName": "Ada",
               "capacity": 3, "sessionToken": "q1Xb0fd7n0qzZrQbU9y1dkS3b0M3Qk2WcWn2v8Xh5jU"}),
    );
    golden(agent::ToServer::SignOut, json!({"type": "signOut"}));
}

#[test]
fn agent_context_update() {
    golden(
        agent::ToAgent::Context {
            conversation_id: cid(),
            context: ConversationContext {
                page: Some(PageContext {
                    url: "https://shop.example.com/cart".into(),
                    title: "Cart".into(),
                }),
                ..ConversationContext::default()
            },
        },
        json!({"type": "context", "conversationId": C,
               "context": {"page": {"url": "https://shop.example.com/cart", "title": "Cart"}}}),
    );
}

#[test]
fn history_pages() {
    golden(
        visitor::ToServer::History {
            conversation_id: cid(),
            before_seq: 701,
        },
        json!({"type": "history", "conversationId": C, "beforeSeq": 701}),
    );
    golden(
        agent::ToServer::History {
            conversation_id: cid(),
            before_seq: 701,
        },
        json!({"type": "history", "conversationId": C, "beforeSeq": 701}),
    );
    let (entry, entry_json) = text_entry();
    golden(
        visitor::ToVisitor::History {
            conversation_id: cid(),
            entries: vec![entry.clone()],
        },
        json!({"type": "history", "conversationId": C, "entries": [entry_json.clone()]}),
    );
    golden(
        agent::ToAgent::History {
            conversation_id: cid(),
            entries: vec![entry],
        },
        json!({"type": "history", "conversationId": C, "entries": [entry_json]}),
    );
}
