//! Rows of the PostgreSQL store read back into the engine's types.

use em_protocol::agent::ConversationContext;
use em_protocol::{ConversationEntry, ConversationId, Participant, Role};
use tokio_postgres::Row;
use uuid::Uuid;

use super::super::sqlite::rows::parse_enum;
use crate::error::{Error, Result};
use crate::store::Session;

/// A stored seq (a `bigint`, never negative).
pub(super) fn seq(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative seq {n}")))
}

/// A row of `session_select!`. The last column is the end user's verified subject: read
/// from the end user, never from the stored context, so the agent's `verifiedSubject` is
/// always the proven one.
pub(super) fn session_row(r: &Row) -> Result<Session> {
    let skills: String = r.try_get(9)?;
    let context: String = r.try_get(10)?;
    let status: String = r.try_get(4)?;
    Ok(Session {
        conversation_id: ConversationId(r.try_get::<_, Uuid>(0)?),
        end_user_id: em_protocol::EndUserId(r.try_get::<_, Uuid>(1)?),
        org_id: r.try_get(2)?,
        deployment_name: r.try_get(3)?,
        status: parse_enum(&status)?,
        agent_username: r.try_get(5)?,
        last_seq: seq(r.try_get(6)?)?,
        queue: r.try_get(7)?,
        priority: r.try_get(8)?,
        skills: serde_json::from_str(&skills)
            .map_err(|e| Error::Corrupt(format!("skills: {e}")))?,
        context: ConversationContext {
            verified_subject: r.try_get(13)?,
            ..serde_json::from_str(&context).map_err(|e| Error::Corrupt(format!("context: {e}")))?
        },
        bot_state: r.try_get(11)?,
        updated_at: r.try_get(12)?,
    })
}

/// A row of `entry_select!`.
pub(super) fn entry_row(id: ConversationId, r: &Row) -> Result<ConversationEntry> {
    let role: String = r.try_get(2)?;
    let payload: String = r.try_get(7)?;
    Ok(ConversationEntry {
        identifier: em_protocol::EntryId(r.try_get::<_, Uuid>(0)?),
        conversation_id: id,
        seq: seq(r.try_get(1)?)?,
        sender: Participant {
            role: parse_enum::<Role>(&role)?,
            subject: r.try_get(3)?,
        },
        sender_display_name: r.try_get(4)?,
        transcripted_timestamp: r.try_get(5)?,
        client_timestamp: r.try_get(6)?,
        entry_payload: serde_json::from_str(&payload)
            .map_err(|e| Error::Corrupt(format!("entry payload: {e}")))?,
    })
}
