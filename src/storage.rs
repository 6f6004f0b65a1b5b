//! localStorage: the one record per org + deployment (see `state::Persisted`) and, beside it
//! under `…:outbox`, the visitor's messages not yet stored by the server (`state::Outgoing`).

use em_protocol::EntryId;
use uuid::Uuid;

use crate::console;
use crate::json::{Json, Obj};
use crate::state::{Outgoing, Persisted};
use crate::wire;

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// True for the first page this tab shows with the widget (reloads and navigations in the same
/// tab keep a `sessionStorage` mark): `shouldMinimizeWindowOnNewTab`.
pub fn first_page_in_tab() -> bool {
    const MARK: &str = "embeddedMessaging:tab";
    let Some(s) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) else {
        return false;
    };
    let first = s.get_item(MARK).ok().flatten().is_none();
    let _ = s.set_item(MARK, "1");
    first
}

/// The outbox key beside the record's `key`.
pub fn outbox_key(key: &str) -> String {
    key.to_owned() + ":outbox"
}

fn read(key: &str) -> Option<String> {
    local_storage().and_then(|s| s.get_item(key).ok().flatten())
}

fn write(key: &str, value: &str) {
    if local_storage().is_none_or(|s| s.set_item(key, value).is_err()) {
        console::warn("localStorage is not available: the conversation will not survive a reload.");
    }
}

/// The stored record, or a fresh one when there is none, it is unreadable, or storage is off.
pub fn load(key: &str) -> Persisted {
    let Some(raw) = read(key) else {
        return Persisted::default();
    };
    match parse(&raw) {
        Some(p) if p.v == 1 => p,
        _ => {
            console::warn("ignoring an unreadable stored conversation record; starting a new one.");
            Persisted::default()
        }
    }
}

/// A stored record's text → the record (`None` if unreadable or of another version).
pub fn parse(raw: &str) -> Option<Persisted> {
    Json::parse(raw)
        .and_then(|v| wire::read_persisted(&v))
        .filter(|p| p.v == 1)
}

/// Write the record; a full or disabled storage only costs resuming after a reload.
pub fn save(key: &str, value: &Persisted) {
    write(key, &wire::write_persisted(value));
}

/// The stored outbox of the record at `key` (empty if none or unreadable).
pub fn load_outbox(key: &str) -> Vec<Outgoing> {
    read(&outbox_key(key))
        .map(|raw| parse_outbox(&raw))
        .unwrap_or_default()
}

/// `[{"id","text","time","failed"?}, ...]` → the outbox; unreadable entries are skipped.
pub fn parse_outbox(raw: &str) -> Vec<Outgoing> {
    let Some(doc) = Json::parse(raw) else {
        return Vec::new();
    };
    let read = |v: &Json| {
        Some(Outgoing {
            id: EntryId(Uuid::try_parse(v.get("id")?.as_str()?).ok()?),
            text: v.get("text")?.as_str()?.to_owned(),
            time: v.get("time")?.as_i64()?,
            failed: v.get("failed").and_then(Json::as_str).map(str::to_owned),
        })
    };
    doc.as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(read)
        .collect()
}

/// The outbox as JSON text.
pub fn write_outbox(outbox: &[Outgoing]) -> String {
    let mut out = String::from("[");
    for (n, o) in outbox.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let obj = Obj::new()
            .str("id", &wire::id_string(&o.id.0))
            .str("text", &o.text)
            .int("time", o.time)
            .opt_str("failed", o.failed.as_deref());
        out.push_str(&obj.end());
    }
    out.push(']');
    out
}

/// Write the outbox (an empty one removes the key).
pub fn save_outbox(key: &str, outbox: &[Outgoing]) {
    let key = outbox_key(key);
    if outbox.is_empty() {
        if let Some(s) = local_storage() {
            let _ = s.remove_item(&key);
        }
    } else {
        write(&key, &write_outbox(outbox));
    }
}

/// Forget the record and its outbox.
pub fn clear(key: &str) {
    if let Some(s) = local_storage() {
        let _ = s.remove_item(key);
        let _ = s.remove_item(&outbox_key(key));
    }
    // And what the pre-chat form remembered for this browser session.
    if let Some(s) = session_storage() {
        let _ = s.remove_item(&(key.to_owned() + ":prechat"));
    }
}

/// Pre-chat display `Session`: the values submitted in this browser session, as JSON text
/// (sessionStorage, under `…:prechat` beside the record's `key`).
pub fn load_prechat(key: &str) -> Option<String> {
    session_storage()?
        .get_item(&(key.to_owned() + ":prechat"))
        .ok()?
}

pub fn save_prechat(key: &str, values: &str) {
    if let Some(s) = session_storage() {
        let _ = s.set_item(&(key.to_owned() + ":prechat"), values);
    }
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_round_trips_and_skips_unreadable_entries() {
        // What one page writes, the next reads back (text with quotes and newlines, a failure
        // reason); broken entries and broken documents are skipped, not fatal.
        let outbox = vec![
            Outgoing {
                id: EntryId(Uuid::from_u128(1)),
                text: "say \"hi\"\nand bye".into(),
                time: 1_700_000_000_000,
                failed: None,
            },
            Outgoing {
                id: EntryId(Uuid::from_u128(2)),
                text: "too long".into(),
                time: 5,
                failed: Some("the message is too long".into()),
            },
        ];
        let text = write_outbox(&outbox);
        assert_eq!(parse_outbox(&text), outbox);
        assert_eq!(
            parse_outbox(r#"[{"id":"nope","text":"x","time":1},{"id":"00000000-0000-0000-0000-000000000002","text":"ok","time":2}]"#).len(),
            1
        );
        assert!(parse_outbox("not json").is_empty());
        assert!(parse_outbox("{}").is_empty());
        assert_eq!(write_outbox(&[]), "[]");
    }
}
