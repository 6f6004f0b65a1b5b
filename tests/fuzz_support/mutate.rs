//! Fuzz inputs shared by the server's and the widget's property tests: arbitrary JSON values
//! and mutations of real frames (bytes flipped, inserted or deleted; fields removed, retyped, set
//! to huge or negative numbers or to deep nesting).
//!
//! Included by `server/tests/fuzz.rs` and `tests/fuzz_wire.rs` (`#[path]`): both crates read
//! the same frames, so both are fed the same kinds of damage.
#![allow(dead_code)] // each test binary uses a different part

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::Config;
use serde_json::Value;

/// Cases per property: `EM_FUZZ_CASES` if set, else the target's default (chosen so that each
/// target takes a few seconds in a debug build).
pub fn cases(default: u32) -> u32 {
    std::env::var("EM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest config with `cases(default)` cases and no regression files written next to the
/// sources: a failure is turned into a plain regression test by hand instead.
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Field names and type tags of the protocol, so random objects get past the first checks.
pub const NAMES: &[&str] = &[
    "type",
    "protocolVersion",
    "credential",
    "identityToken",
    "sessionToken",
    "username",
    "conversationId",
    "entryId",
    "text",
    "clientTimestamp",
    "afterSeq",
    "seq",
    "typing",
    "presence",
    "toAgent",
    "toQueue",
    "page",
    "url",
    "title",
    "prechatFields",
    "hiddenFields",
    "sessionContext",
    "autoResponseParameters",
    "entry",
    "identifier",
    "sender",
    "role",
    "subject",
    "entryPayload",
    "entryType",
    "abstractMessage",
    "messageType",
    "staticContent",
    "formatType",
    "code",
    "message",
    "retryAfterMs",
    "status",
    "lastSeq",
    "created",
    "endUserId",
];

pub const TYPES: &[&str] = &[
    "hello",
    "identify",
    "createConversation",
    "resume",
    "sendMessage",
    "setContext",
    "endConversation",
    "typing",
    "ping",
    "setPresence",
    "endSession",
    "transfer",
    "markRead",
    "signOut",
    "welcome",
    "conversation",
    "entry",
    "ack",
    "error",
    "pong",
    "read",
    "identityTokenExpired",
    "Message",
    "Text",
    "unknown",
];

/// Texts that are not what a field expects: numbers past every integer type, negative ones,
/// fractions, nesting deeper than any parser's limit, odd strings.
pub const RAW: &[&str] = &[
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775808",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "-1",
    "-0",
    "0.5",
    "1e400",
    "1E2",
    "-1e-400",
    "null",
    "true",
    "\"\"",
    "[]",
    "{}",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"{00000000-0000-0000-0000-000000000000}\"",
    "\"urn:uuid:00000000-0000-0000-0000-000000000000\"",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(NAMES).prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested up to 6 levels, with protocol names as keys and type tags as
/// strings more often than chance would pick them.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        any::<String>().prop_map(Value::from),
        select(TYPES).prop_map(Value::from),
        any::<u128>().prop_map(|n| Value::from(uuid::Uuid::from_u128(n).to_string())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner.clone()), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            (select(TYPES), prop::collection::vec((key(), inner), 0..8)).prop_map(|(ty, kv)| {
                let mut o: serde_json::Map<String, Value> = kv.into_iter().collect();
                o.insert("type".into(), Value::from(ty));
                Value::Object(o)
            }),
        ]
    })
}

/// `n` levels of `[` … `]` or of `{"a":` … `}`.
pub fn deep(n: usize, object: bool) -> String {
    if object {
        "{\"a\":".repeat(n) + "1" + &"}".repeat(n)
    } else {
        "[".repeat(n) + &"]".repeat(n)
    }
}

/// One change to a frame's text.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// XOR one byte.
    Flip(Index, u8),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Delete up to `n` bytes.
    Delete(Index, usize),
    /// Set a value (picked among every value of the document) to this JSON text.
    Replace(Index, String),
    /// Remove a field or an array item.
    Remove(Index),
}

/// Bytes that change what the bytes after them mean.
const TOKENS: &[&str] = &["\"", "\\", "{", "}", "[", "]", ",", ":", "\\u", "-"];

fn raw() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(RAW).prop_map(String::from),
        2 => json().prop_map(|v| v.to_string()),
        1 => (prop_oneof![Just(100usize), Just(129), Just(200), Just(5000)], any::<bool>())
            .prop_map(|(n, o)| deep(n, o)),
        1 => Just(format!("\"{}\"", "x".repeat(20_000))),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<(Index, u8)>().prop_map(|(i, b)| Mutation::Flip(i, b.max(1))),
        (
            any::<Index>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1..16usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), raw()).prop_map(|(i, r)| Mutation::Replace(i, r)),
        any::<Index>().prop_map(Mutation::Remove),
    ]
}

/// `text` with 1 to 3 mutations applied in order (the result stays UTF-8, as a text frame must).
pub fn mutated(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (text, prop::collection::vec(mutation(), 1..4)).prop_map(|(t, ms)| apply(&t, &ms))
}

pub fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_string();
    for m in mutations {
        text = apply_one(&text, m);
    }
    text
}

fn apply_one(text: &str, m: &Mutation) -> String {
    let mut b = text.as_bytes().to_vec();
    match m {
        Mutation::Flip(i, x) if !b.is_empty() => {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        Mutation::Insert(i, bytes) => {
            let i = i.index(b.len() + 1);
            b.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if !b.is_empty() => {
            let i = i.index(b.len());
            b.drain(i..(i + n).min(b.len()));
        }
        Mutation::Replace(i, raw) => return replace(text, *i, Some(raw)),
        Mutation::Remove(i) => return replace(text, *i, None),
        _ => {}
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Where a value sits in a document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                here.push(Step::Key(k.clone()));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Step::At(i));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

const MARKER: &str = "\u{1}fuzz\u{1}";

/// Replaces (or removes) one value of `text` if it is JSON; the new value goes in as raw text,
/// so it can be what `serde_json::Value` cannot hold (2^64, 1e400, 5,000 levels).
fn replace(text: &str, i: Index, raw: Option<&str>) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    let mut all = Vec::new();
    paths(&doc, &mut Vec::new(), &mut all);
    let Some((last, parent)) = (!all.is_empty())
        .then(|| all.swap_remove(i.index(all.len())))
        .and_then(|p| p.split_last().map(|(l, p)| (l.clone(), p.to_vec())))
    else {
        // Not a container: the whole document is the value.
        return raw.unwrap_or("").to_string();
    };
    let mut node = &mut doc;
    for step in &parent {
        node = match step {
            Step::Key(k) => &mut node[k.as_str()],
            Step::At(n) => &mut node[*n],
        };
    }
    match (node, last, raw) {
        (Value::Object(o), Step::Key(k), None) => {
            o.remove(&k);
        }
        (Value::Array(a), Step::At(n), None) => {
            a.remove(n);
        }
        (Value::Object(o), Step::Key(k), Some(_)) => {
            o.insert(k, Value::from(MARKER));
        }
        (Value::Array(a), Step::At(n), Some(_)) => a[n] = Value::from(MARKER),
        _ => {}
    }
    let out = doc.to_string();
    match raw {
        Some(raw) => out.replacen("\"\\u0001fuzz\\u0001\"", raw, 1),
        None => out,
    }
}

/// The nesting depth of a JSON text (brackets outside strings), for properties that hold only
/// within a reader's depth limit.
pub fn depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0, false, false);
    for c in text.bytes() {
        match (in_str, esc, c) {
            (true, true, _) => esc = false,
            (true, false, b'\\') => esc = true,
            (true, false, b'"') => in_str = false,
            (true, false, _) => {}
            (false, _, b'"') => in_str = true,
            (false, _, b'[' | b'{') => {
                d += 1;
                max = max.max(d);
            }
            (false, _, b']' | b'}') => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}
