//! The one localStorage record per org + deployment (see `state::Persisted`).

use crate::console;
use crate::json::Json;
use crate::state::Persisted;
use crate::wire;

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The stored record, or a fresh one when there is none, it is unreadable, or storage is off.
pub fn load(key: &str) -> Persisted {
    let Some(raw) = local_storage().and_then(|s| s.get_item(key).ok().flatten()) else {
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
    let ok =
        local_storage().is_some_and(|s| s.set_item(key, &wire::write_persisted(value)).is_ok());
    if !ok {
        console::warn("localStorage is not available: the conversation will not survive a reload.");
    }
}

/// Forget the record.
pub fn clear(key: &str) {
    if let Some(s) = local_storage() {
        let _ = s.remove_item(key);
    }
}
