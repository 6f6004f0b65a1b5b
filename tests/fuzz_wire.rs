//! Fuzzing on stable Rust: property tests of the widget's JSON reader (`json.rs`) and wire
//! readers (`wire.rs`) against the protocol crate's serde. `EM_FUZZ_CASES` sets the cases.
#![cfg(not(target_arch = "wasm32"))]

#[path = "fuzz_support/mutate.rs"]
mod mutate;

use em_protocol::visitor::ToVisitor;
use em_protocol::{
    AbstractMessage, Choices, ChoicesFormat, ConversationEntry, EntryId, EntryPayload,
    EstimatedWaitTime, Participant, ParticipantChange, ParticipantOperation, Role, SessionStatus,
};
use embedded_messaging::json::Json;
use embedded_messaging::wire::{read_config, read_entry, read_frame, read_persisted};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};
use uuid::Uuid;

/// The reader's nesting limit (`json.rs`, `MAX_DEPTH` + 1 levels of brackets).
const READER_DEPTH: usize = 65;

fn id() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string())
}

fn role() -> impl Strategy<Value = Role> {
    select(
        &[
            Role::EndUser,
            Role::Agent,
            Role::Chatbot,
            Role::System,
            Role::Unknown,
        ][..],
    )
}

fn status() -> impl Strategy<Value = SessionStatus> {
    select(
        &[
            SessionStatus::New,
            SessionStatus::Waiting,
            SessionStatus::Active,
            SessionStatus::Inactive,
            SessionStatus::Ended,
        ][..],
    )
}

fn participant() -> impl Strategy<Value = Participant> {
    (role(), any::<String>()).prop_map(|(role, subject)| Participant { role, subject })
}

fn payload() -> impl Strategy<Value = EntryPayload> {
    let eid = any::<u128>().prop_map(|n| EntryId(Uuid::from_u128(n)));
    let format = select(&[ChoicesFormat::Buttons, ChoicesFormat::QuickReplies][..]);
    prop_oneof![
        (eid.clone(), any::<String>()).prop_map(|(id, t)| EntryPayload::text(id, t)),
        (
            eid,
            format,
            any::<String>(),
            prop::collection::vec(any::<String>(), 0..4)
        )
            .prop_map(|(id, format_type, text, titles)| EntryPayload::Message {
                abstract_message: AbstractMessage::ChoicesMessage {
                    id,
                    choices: Choices {
                        format_type,
                        ..Choices::quick_replies(text, &titles)
                    },
                },
            }),
        prop::collection::vec((any::<bool>(), participant(), any::<String>()), 0..3).prop_map(
            |list| EntryPayload::ParticipantChanged {
                entries: list
                    .into_iter()
                    .map(|(add, participant, display_name)| ParticipantChange {
                        operation: if add {
                            ParticipantOperation::Add
                        } else {
                            ParticipantOperation::Remove
                        },
                        participant,
                        display_name,
                    })
                    .collect(),
            }
        ),
        status().prop_map(|session_status| EntryPayload::SessionStatusChanged { session_status }),
        (
            any::<String>(),
            proptest::option::of(any::<String>()),
            proptest::option::of((any::<u32>(), any::<u64>()))
        )
            .prop_map(|(routing_type, failure_type, wait)| {
                EntryPayload::RoutingResult {
                    routing_type,
                    failure_type,
                    estimated_wait_time: wait.map(|(position, seconds)| EstimatedWaitTime {
                        position,
                        estimated_wait_time_in_seconds: seconds,
                    }),
                }
            }),
        Just(EntryPayload::Unknown),
    ]
}

/// A conversation entry as the server writes it (seqs within SQLite's integers).
fn entry() -> impl Strategy<Value = ConversationEntry> {
    (
        any::<(u128, u128)>(),
        0..=i64::MAX as u64,
        participant(),
        any::<String>(),
        any::<i64>(),
        proptest::option::of(any::<i64>()),
        payload(),
    )
        .prop_map(
            |((e, c), seq, sender, name, at, client, entry_payload)| ConversationEntry {
                identifier: EntryId(Uuid::from_u128(e)),
                conversation_id: em_protocol::ConversationId(Uuid::from_u128(c)),
                seq,
                sender,
                sender_display_name: name,
                transcripted_timestamp: at,
                client_timestamp: client,
                entry_payload,
            },
        )
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("protocol types serialize")
}

/// Every server → visitor frame with arbitrary values, as JSON (written like this, rather
/// than as enum literals, so frames with optional fields added later still build).
fn frame_json() -> impl Strategy<Value = Value> {
    let codes: Vec<Value> = [
        "bad_frame",
        "unsupported_version",
        "handshake_required",
        "unauthorized",
        "not_found",
        "conflict",
        "invalid_message",
        "conversation_ended",
        "internal",
        "identity_expired",
        "invalid_field",
        "rate_limited",
        "from_a_later_version",
    ]
    .map(Value::from)
    .into();
    prop_oneof![
        (
            any::<u32>(),
            id(),
            any::<String>(),
            proptest::option::of(id())
        )
            .prop_map(|(v, user, credential, c)| {
                let mut f = json!({"type": "welcome", "protocolVersion": v, "endUserId": user,
                                   "credential": credential});
                if let Some(c) = c {
                    f["conversationId"] = c.into();
                }
                f
            }),
        (
            id(),
            status(),
            any::<u64>(),
            any::<bool>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(c, s, last, created, to)| {
                let mut f = json!({"type": "conversation", "conversationId": c,
                                   "status": to_json(&s), "lastSeq": last, "created": created});
                if let Some(to) = to {
                    f["replayTo"] = to.into();
                }
                f
            }),
        entry().prop_map(|e| json!({"type": "entry", "entry": to_json(&e)})),
        (id(), prop::collection::vec(entry(), 0..3)).prop_map(|(c, es)| {
            json!({"type": "history", "conversationId": c, "entries": to_json(&es)})
        }),
        (id(), id(), any::<u64>()).prop_map(|(c, e, seq)| {
            json!({"type": "ack", "conversationId": c, "entryId": e, "seq": seq})
        }),
        (
            select(codes),
            any::<String>(),
            proptest::option::of(id()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(code, message, e, retry)| {
                let mut f = json!({"type": "error", "code": code, "message": message});
                if let Some(e) = e {
                    f["entryId"] = e.into();
                }
                if let Some(r) = retry {
                    f["retryAfterMs"] = r.into();
                }
                f
            }),
        Just(json!({"type": "pong"})),
        any::<u64>().prop_map(|g| json!({"type": "identityTokenExpired", "graceSeconds": g})),
        (id(), participant(), any::<String>(), any::<bool>()).prop_map(|(c, p, name, t)| {
            json!({"type": "typing", "conversationId": c, "sender": to_json(&p),
                   "senderDisplayName": name, "typing": t})
        }),
        (id(), any::<u64>())
            .prop_map(|(c, seq)| json!({"type": "read", "conversationId": c, "seq": seq})),
        Just(json!({"type": "fromALaterVersion", "x": [1.5, {"y": null}]})),
    ]
}

/// A frame's text as the protocol crate writes it (its JSON read by serde, then written).
fn frame_text() -> impl Strategy<Value = String> {
    frame_json().prop_map(|v| {
        let frame: ToVisitor = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("the generator wrote a frame serde refuses: {v}: {e}"));
        serde_json::to_string(&frame).expect("protocol types serialize")
    })
}

/// Anything at all: strings, JSON values, damaged frames.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => mutate::json().prop_map(|v| v.to_string()),
        3 => mutate::mutated(frame_text()),
    ]
}

/// Does the reader's value say what serde_json's says? (`-0` is an integer 0 to the reader;
/// objects with repeated keys are not compared: serde keeps the last, the reader the first.)
fn same(ours: &Json, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == b,
        (Json::Int(0), Value::Number(n)) if n.as_f64() == Some(0.0) => true,
        (Json::Int(a), Value::Number(n)) => n.as_i64() == Some(*a),
        (Json::UInt(a), Value::Number(n)) => n.as_u64() == Some(*a),
        (Json::OtherNumber, Value::Number(n)) => n.is_f64(),
        (Json::Str(a), Value::String(b)) => a == b,
        (Json::Arr(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Json::Obj(a), Value::Object(b)) => {
            a.len() != b.len() // repeated keys
                || a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}

/// Is `input` in the shape `canon` (the frame serde read from it, written back) has: the same
/// kind of value (object, array, string, number, bool) at every place both have? serde also
/// reads a struct or a tagged enum from an array (`["pong"]` is a `pong`) and takes a
/// variant's index as its tag (`"entryType": 0` is a `Message`); no writer of the protocol
/// does either, and the reader knows objects and tag names only, so such input is not
/// compared.
fn same_shape(canon: &Value, input: &Value) -> bool {
    match (canon, input) {
        (Value::Object(c), Value::Object(i)) => c
            .iter()
            .all(|(k, cv)| i.get(k).is_none_or(|iv| same_shape(cv, iv))),
        (Value::Array(c), Value::Array(i)) => {
            c.len() == i.len() && c.iter().zip(i).all(|(c, i)| same_shape(c, i))
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// The reading contract: no panic anywhere; valid JSON (within the depth limit) is read, as
/// serde_json reads it; a frame serde accepts is read as the same frame.
fn reads(text: &str) -> Result<(), TestCaseError> {
    let ours = Json::parse(text);
    if let Some(v) = &ours {
        // None of the readers panics on any value.
        let _ = (
            read_frame(v),
            read_entry(v),
            read_config(v),
            read_persisted(v),
        );
    }
    if mutate::depth(text) > READER_DEPTH {
        prop_assert_eq!(ours, None, "deeper than the reader's limit");
        return Ok(());
    }
    if let Ok(theirs) = serde_json::from_str::<Value>(text) {
        let ours = ours.ok_or_else(|| TestCaseError::fail("valid JSON refused"))?;
        prop_assert!(same(&ours, &theirs), "{:?} vs {}", ours, theirs);
        // From the text, not the value: serde refuses repeated fields (the value keeps one).
        if let Ok(frame) = serde_json::from_str::<ToVisitor>(text)
            && same_shape(&to_json(&frame), &theirs)
        {
            prop_assert_eq!(read_frame(&ours), Ok(frame), "{}", text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(mutate::config(3000))]

    #[test]
    fn valid_frames_read_as_the_protocol_crate_writes_them(text in frame_text()) {
        // Every server → visitor frame with arbitrary values reads back through the widget's
        // reader as exactly the frame serde wrote.
        let v = Json::parse(&text).ok_or_else(|| TestCaseError::fail(text.clone()))?;
        let expected: ToVisitor = serde_json::from_str(&text).expect("written by serde");
        prop_assert_eq!(read_frame(&v), Ok(expected), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics_and_agrees_with_serde(text in any_text()) {
        // Random strings, random JSON and damaged frames: the reader never panics, reads all
        // valid JSON as serde_json does, and reads every frame serde accepts as serde does.
        reads(&text)?;
    }
}

#[test]
fn integers_at_the_ends_of_u64_and_i64_read_as_serde_reads_them() {
    // Regression inputs found by the properties above: seqs and retry delays above i64::MAX
    // (u64 on the wire) and a timestamp of i64::MIN were refused or lost by the reader.
    let c = "00000000-0000-0000-0000-000000c0ffee";
    for text in [
        format!(r#"{{"type":"read","conversationId":"{c}","seq":9223372036854775808}}"#),
        format!(r#"{{"type":"ack","conversationId":"{c}","entryId":"{c}","seq":18446744073709551615}}"#),
        r#"{"type":"error","code":"rate_limited","message":"","retryAfterMs":18446744073709551615}"#
            .to_string(),
        r#"{"type":"identityTokenExpired","graceSeconds":9223372036854775808}"#.to_string(),
        format!(
            r#"{{"type":"entry","entry":{{"identifier":"{c}","conversationId":"{c}","seq":1,
            "sender":{{"role":"System","subject":""}},"senderDisplayName":"",
            "transcriptedTimestamp":-9223372036854775808,"clientTimestamp":9223372036854775807,
            "entryPayload":{{"entryType":"RoutingResult","routingType":"Initial",
            "estimatedWaitTime":{{"position":4294967295,"estimatedWaitTimeInSeconds":18446744073709551615}}}}}}}}"#
        ),
    ] {
        let expected: ToVisitor = serde_json::from_str(&text).expect(&text);
        let v = Json::parse(&text).expect(&text);
        assert_eq!(read_frame(&v), Ok(expected), "{text}");
    }
    // A choice's title item keeps its `itemType` (the reader wrote "TitleItem" whatever came).
    let choice = format!(
        r#"{{"type":"entry","entry":{{"identifier":"{c}","conversationId":"{c}","seq":1,
        "sender":{{"role":"Chatbot","subject":"bot"}},"senderDisplayName":"Bot",
        "transcriptedTimestamp":1,"entryPayload":{{"entryType":"Message","abstractMessage":{{
        "messageType":"ChoicesMessage","id":"{c}","choices":{{"formatType":"Buttons","text":"",
        "optionItems":[{{"optionIdentifier":"0","titleItem":{{"itemType":"x","title":"A"}}}}]}}}}}}}}}}"#
    );
    let expected: ToVisitor = serde_json::from_str(&choice).expect(&choice);
    assert_eq!(
        read_frame(&Json::parse(&choice).expect("JSON")),
        Ok(expected)
    );
    // One past the ends is no integer of either kind, as for serde.
    let past = format!(r#"{{"type":"read","conversationId":"{c}","seq":18446744073709551616}}"#);
    assert_eq!(read_frame(&Json::parse(&past).expect("JSON")), Err("seq"));
}

#[test]
fn frames_only_in_the_protocols_shape() {
    // Where serde is laxer than the protocol (an array for a frame or a struct, a variant's
    // index for its tag), the reader refuses or reads Unknown rather than guess; nothing panics.
    let c = "00000000-0000-0000-0000-000000c0ffee";
    let array: ToVisitor = serde_json::from_str(r#"["pong"]"#).expect("serde takes arrays");
    assert_eq!(array, ToVisitor::Pong);
    assert_eq!(
        read_frame(&Json::parse(r#"["pong"]"#).expect("JSON")),
        Err("type")
    );
    let indexed = format!(
        r#"{{"type":"entry","entry":{{"identifier":"{c}","conversationId":"{c}","seq":1,
        "sender":{{"role":"Agent","subject":"ada"}},"senderDisplayName":"Ada",
        "transcriptedTimestamp":1,"entryPayload":{{"entryType":2,"sessionStatus":"Ended"}}}}}}"#
    );
    assert!(serde_json::from_str::<ToVisitor>(&indexed).is_ok());
    assert_eq!(
        read_frame(&Json::parse(&indexed).expect("JSON")),
        Err("entryType")
    );
    // Nesting past the reader's limit is refused as a whole, not overflowed.
    assert_eq!(Json::parse(&mutate::deep(100_000, false)), None);
    assert_eq!(Json::parse(&mutate::deep(100_000, true)), None);
}
