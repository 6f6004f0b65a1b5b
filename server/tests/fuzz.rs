//! Fuzzing on stable Rust: property tests of frame decoding (`socket::parse_frame`) for both
//! sockets, and random frames on a live visitor socket. `EM_FUZZ_CASES` sets the cases.
mod common;
#[path = "../../tests/fuzz_support/mutate.rs"]
mod mutate;

use std::collections::BTreeMap;

use em_protocol::agent::{self, Presence};
use em_protocol::visitor;
use em_protocol::{ConversationId, EntryId, ErrorCode, PROTOCOL_VERSION};
use em_server::socket::parse_frame;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

/// The live-socket test puts its real conversation id in place of this one.
const PLACEHOLDER: Uuid = Uuid::from_u128(0xC0FFEE);

fn id() -> impl Strategy<Value = Uuid> {
    prop_oneof![Just(PLACEHOLDER), any::<u128>().prop_map(Uuid::from_u128)]
}

fn cid() -> impl Strategy<Value = ConversationId> {
    id().prop_map(ConversationId)
}

fn eid() -> impl Strategy<Value = EntryId> {
    any::<u128>().prop_map(|n| EntryId(Uuid::from_u128(n)))
}

fn map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(any::<String>(), any::<String>(), 0..4)
}

/// Every visitor → server frame, with arbitrary field values.
fn visitor_frame() -> impl Strategy<Value = visitor::ToServer> {
    use visitor::ToServer as F;
    let page = (any::<String>(), any::<String>())
        .prop_map(|(url, title)| agent::PageContext { url, title });
    prop_oneof![
        (
            any::<u32>(),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>())
        )
            .prop_map(|(protocol_version, credential, identity_token)| F::Hello {
                protocol_version,
                credential,
                identity_token
            }),
        any::<String>().prop_map(|identity_token| F::Identify { identity_token }),
        cid().prop_map(|conversation_id| F::CreateConversation { conversation_id }),
        (cid(), any::<u64>()).prop_map(|(conversation_id, after_seq)| F::Resume {
            conversation_id,
            after_seq
        }),
        (cid(), eid(), any::<String>(), any::<i64>()).prop_map(
            |(conversation_id, entry_id, text, client_timestamp)| F::SendMessage {
                conversation_id,
                entry_id,
                text,
                client_timestamp
            }
        ),
        (
            cid(),
            map(),
            map(),
            proptest::option::of(page),
            map(),
            map()
        )
            .prop_map(
                |(conversation_id, prechat_fields, hidden_fields, page, session_context, auto)| {
                    F::SetContext {
                        conversation_id,
                        prechat_fields,
                        hidden_fields,
                        page,
                        session_context,
                        auto_response_parameters: auto,
                    }
                }
            ),
        cid().prop_map(|conversation_id| F::EndConversation { conversation_id }),
        (cid(), any::<bool>()).prop_map(|(conversation_id, typing)| F::Typing {
            conversation_id,
            typing
        }),
        Just(F::Ping),
    ]
}

/// Agent → server frames other than `hello` (whose shape `agent_hello` writes as JSON).
fn agent_frame() -> impl Strategy<Value = agent::ToServer> {
    use agent::ToServer as F;
    prop_oneof![
        select(
            &[
                Presence::Online,
                Presence::Busy,
                Presence::Away,
                Presence::Offline
            ][..]
        )
        .prop_map(|presence| F::SetPresence { presence }),
        (cid(), eid(), any::<String>()).prop_map(|(conversation_id, entry_id, text)| {
            F::SendMessage {
                conversation_id,
                entry_id,
                text,
            }
        }),
        cid().prop_map(|conversation_id| F::EndSession { conversation_id }),
        (
            cid(),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>())
        )
            .prop_map(|(conversation_id, to_agent, to_queue)| F::Transfer {
                conversation_id,
                to_agent,
                to_queue
            }),
        (cid(), any::<bool>()).prop_map(|(conversation_id, typing)| F::Typing {
            conversation_id,
            typing
        }),
        (cid(), any::<u64>()).prop_map(|(conversation_id, seq)| F::MarkRead {
            conversation_id,
            seq
        }),
        Just(F::Ping),
    ]
}

/// The agent's `hello` as JSON (a password sign-in, which every version of the frame takes).
fn agent_hello() -> impl Strategy<Value = String> {
    (any::<u32>(), any::<String>(), any::<String>()).prop_map(|(v, username, credential)| {
        json!({"type": "hello", "protocolVersion": v, "username": username, "credential": credential})
            .to_string()
    })
}

fn text_of<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("protocol types serialize")
}

fn visitor_text() -> impl Strategy<Value = String> {
    visitor_frame().prop_map(|f| text_of(&f))
}

fn agent_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => agent_frame().prop_map(|f| text_of(&f)),
        1 => agent_hello(),
        1 => Just(r#"{"type":"signOut"}"#.to_string()),
    ]
    .boxed()
}

/// Anything at all: strings, JSON values, mutated frames of both sockets.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        mutate::json().prop_map(|v| v.to_string()),
        mutate::mutated(visitor_text()),
        mutate::mutated(agent_text()),
    ]
}

/// The decoding contract: never a panic; either a frame whose type is the `type` field and
/// which reads back the same after writing, or a `bad_frame` error.
fn decodes<T>(text: &str) -> Result<(), TestCaseError>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match parse_frame::<T>(text) {
        Ok((frame, ty)) => {
            let value: serde_json::Value = serde_json::from_str(text).expect("accepted as JSON");
            prop_assert_eq!(value["type"].as_str(), Some(ty.as_str()));
            let again = parse_frame::<T>(&text_of(&frame));
            prop_assert_eq!(again.map(|(f, _)| f), Ok(frame));
        }
        Err(e) => {
            prop_assert_eq!(e.code, ErrorCode::BadFrame, "{:?}", e);
            prop_assert!(!e.message.is_empty());
            prop_assert_eq!((e.entry_id, e.retry_after_ms), (None, None));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(mutate::config(5000))]

    #[test]
    fn arbitrary_text_decodes_or_is_a_bad_frame(text in any_text()) {
        // Random strings, random JSON and damaged frames never panic the decoder: each is a
        // frame (that reads back the same) or a bad_frame error, on both sockets.
        decodes::<visitor::ToServer>(&text)?;
        decodes::<agent::ToServer>(&text)?;
    }

    #[test]
    fn valid_agent_frames_round_trip(text in agent_text()) {
        // Every agent frame decodes (the hello and signOut too, written as JSON) and writes
        // back to a frame that decodes to the same.
        let (frame, _) = parse_frame::<agent::ToServer>(&text).map_err(|e| {
            TestCaseError::fail(format!("{text}: {e:?}"))
        })?;
        let again = parse_frame::<agent::ToServer>(&text_of(&frame)).map(|(f, _)| f);
        prop_assert_eq!(again, Ok(frame));
    }
}

proptest! {
    #![proptest_config(mutate::config(1500))]

    #[test]
    fn valid_visitor_frames_round_trip(frame in visitor_frame()) {
        // Every visitor frame the protocol crate writes decodes to itself, with its type tag.
        let text = text_of(&frame);
        let (back, ty) = parse_frame::<visitor::ToServer>(&text).map_err(|e| {
            TestCaseError::fail(format!("{text}: {e:?}"))
        })?;
        prop_assert_eq!(&back, &frame);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        prop_assert_eq!(Some(ty.as_str()), value["type"].as_str());
    }
}

#[test]
fn out_of_range_numbers_and_deep_nesting_are_bad_frames() {
    // Regression inputs for the decoder: numbers past u64/i64/u32, negative seqs, fractions,
    // 1e400, and nesting past serde_json's limit are bad_frame errors, not panics or frames.
    let c = "00000000-0000-0000-0000-000000c0ffee";
    let deep = [
        format!(r#"{{"type":"ping","x":{}}}"#, mutate::deep(200, false)),
        mutate::deep(5000, true),
    ];
    let visitor = [
        format!(r#"{{"type":"resume","conversationId":"{c}","afterSeq":18446744073709551616}}"#),
        format!(r#"{{"type":"resume","conversationId":"{c}","afterSeq":-1}}"#),
        format!(r#"{{"type":"resume","conversationId":"{c}","afterSeq":0.5}}"#),
        format!(r#"{{"type":"resume","conversationId":"{c}","afterSeq":1e400}}"#),
        r#"{"type":"hello","protocolVersion":4294967296}"#.to_string(),
        format!(
            r#"{{"type":"sendMessage","conversationId":"{c}","entryId":"{c}","text":"x","clientTimestamp":9223372036854775808}}"#
        ),
    ];
    let agent = [
        format!(r#"{{"type":"markRead","conversationId":"{c}","seq":18446744073709551616}}"#),
        format!(r#"{{"type":"markRead","conversationId":"{c}","seq":-1}}"#),
        r#"{"type":"hello","protocolVersion":-1,"username":"ada","credential":"pw"}"#.to_string(),
        r#"{"type":"setPresence","presence":1e400}"#.to_string(),
    ];
    for text in visitor.iter().chain(&deep) {
        let e = parse_frame::<visitor::ToServer>(text).expect_err(text);
        assert_eq!(e.code, ErrorCode::BadFrame, "{text}");
    }
    for text in agent.iter().chain(&deep) {
        let e = parse_frame::<agent::ToServer>(text).expect_err(text);
        assert_eq!(e.code, ErrorCode::BadFrame, "{text}");
    }
    // The largest values in range are frames.
    let max =
        format!(r#"{{"type":"resume","conversationId":"{c}","afterSeq":18446744073709551615}}"#);
    assert!(matches!(
        parse_frame::<visitor::ToServer>(&max),
        Ok((
            visitor::ToServer::Resume {
                after_seq: u64::MAX,
                ..
            },
            _
        ))
    ));
}

/// Random frames for the live socket: anything but `ping` and `hello` (this test's own
/// `ping` must get the only `pong`; a `hello` with another version closes by design).
fn live_text() -> impl Strategy<Value = String> {
    any_text().prop_filter("not ping or hello", |t| {
        !matches!(
            parse_frame::<visitor::ToServer>(t),
            Ok((visitor::ToServer::Ping | visitor::ToServer::Hello { .. }, _))
        )
    })
}

#[test]
fn a_live_visitor_socket_survives_random_frames() {
    // On the real server, a visitor who said hello and opened a conversation sends up to 40
    // random frames (strings, JSON, damaged frames naming its conversation): afterwards its
    // socket is still open and a ping still gets pong. One bad frame never drops a connection.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(common::Server::start(&common::generous(&common::config(1))));
    let mut runner = TestRunner::new(mutate::config(60));
    let frames = prop::collection::vec(live_text(), 1..40);
    let result = runner.run(&frames, |frames| {
        rt.block_on(async {
            let (mut v, conversation) = server.visitor_with_conversation().await;
            let placeholder = PLACEHOLDER.to_string();
            for f in &frames {
                v.send_raw(&f.replace(&placeholder, &conversation)).await;
            }
            v.send(json!({"type": "ping"})).await;
            loop {
                let frame = v.recv().await;
                prop_assert!(!frame.is_null(), "the socket closed");
                if frame["type"] == "pong" {
                    return Ok(());
                }
            }
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The server still serves a new visitor as usual.
    rt.block_on(async {
        let (mut v, _) = server.visitor_with_conversation().await;
        v.send(json!({"type": "ping"})).await;
        assert_eq!(v.recv().await["type"], "pong");
    });
    assert_eq!(
        PROTOCOL_VERSION, 1,
        "the hello filter above assumes version 1"
    );
}
