//! Row mapping and column encodings of the store.

use em_protocol::{ConversationEntry, ConversationId, EntryId, Participant, Role};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Serialize, de::DeserializeOwned};

use super::Session;
use crate::error::{Error, Result};

pub(super) fn seq_of(conn: &Connection, cid: &str, entry: EntryId) -> Result<Option<u64>> {
    let seq = conn
        .prepare_cached(
            "SELECT seq FROM conversation_entry WHERE conversation_id = ?1 AND identifier = ?2",
        )?
        .query_row([cid, &entry.to_string()], |r| r.get(0))
        .optional()?;
    Ok(seq)
}

/// The last column is the end user's verified subject: read from the end user, never from
/// the stored context, so the agent's `verifiedSubject` is always the proven one.
pub(super) const SESSION_SELECT: &str =
    "SELECT conversation_id, end_user_id, org_id, deployment_name, status,
    agent_username, last_seq, queue, priority, skills_json, context_json, bot_state, updated_at,
    (SELECT subject FROM messaging_end_user u WHERE u.id = messaging_session.end_user_id)
    FROM messaging_session";

pub(super) fn session_row(r: &Row) -> rusqlite::Result<Result<Session>> {
    let (cid, uid, status): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(4)?);
    let (org_id, deployment_name, agent_username, last_seq) =
        (r.get(2)?, r.get(3)?, r.get(5)?, r.get(6)?);
    let (queue, priority, skills, context): (String, i32, String, String) =
        (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?);
    let (bot_state, updated_at) = (r.get(11)?, r.get(12)?);
    let verified_subject: Option<String> = r.get(13)?;
    Ok((|| {
        Ok(Session {
            conversation_id: parse_id(&cid)?,
            end_user_id: parse_id(&uid)?,
            org_id,
            deployment_name,
            status: parse_enum(&status)?,
            agent_username,
            last_seq,
            queue,
            priority,
            skills: serde_json::from_str(&skills)
                .map_err(|e| Error::Corrupt(format!("skills: {e}")))?,
            context: em_protocol::agent::ConversationContext {
                verified_subject,
                ..serde_json::from_str(&context)
                    .map_err(|e| Error::Corrupt(format!("context: {e}")))?
            },
            bot_state,
            updated_at,
        })
    })())
}

pub(super) fn entry_row(
    id: ConversationId,
    r: &Row,
) -> rusqlite::Result<Result<ConversationEntry>> {
    let (ident, role, payload): (String, String, String) = (r.get(0)?, r.get(2)?, r.get(7)?);
    let (seq, subject, name, ts, cts) = (r.get(1)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
    Ok((|| {
        Ok(ConversationEntry {
            identifier: parse_id(&ident)?,
            conversation_id: id,
            seq,
            sender: Participant {
                role: parse_enum::<Role>(&role)?,
                subject,
            },
            sender_display_name: name,
            transcripted_timestamp: ts,
            client_timestamp: cts,
            entry_payload: serde_json::from_str(&payload)
                .map_err(|e| Error::Corrupt(format!("entry payload: {e}")))?,
        })
    })())
}

pub(super) fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("bad id {s:?}")))
}

/// Unit enums are stored by their wire name (`"Waiting"`, `"EndUser"`), in both stores.
pub(in crate::store) fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(in crate::store) fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| Error::Corrupt(format!("bad value {s:?}")))
}

pub(in crate::store) fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
