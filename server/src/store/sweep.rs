//! Queries of the periodic sweeps: idle conversations, and deleting ended ones past retention.

use std::collections::BTreeSet;

use em_protocol::SessionStatus;
use rusqlite::params;

use super::rows::{SESSION_SELECT, enum_str, session_row};
use super::{Session, Store};
use crate::error::Result;

impl Store {
    /// `Active` conversations with an agent and no entry since `before` (ms), oldest first.
    pub fn idle_sessions(&self, before: i64) -> Result<Vec<Session>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SESSION_SELECT} WHERE status = ?1 AND agent_username IS NOT NULL AND updated_at <= ?2
             ORDER BY updated_at, rowid"
        ))?;
        let rows = stmt.query_map(
            params![enum_str(&SessionStatus::Active), before],
            session_row,
        )?;
        rows.map(|r| r?).collect()
    }

    /// Deletes the deployment's conversations that ended before `before` (ms) — entries,
    /// routing assignments, session rows — and then those conversations' end users who have
    /// no conversation left. At most `limit` conversations per call, so a large backlog is
    /// worked off over several sweeps instead of holding up the store thread. Returns how
    /// many conversations went.
    pub fn delete_ended_before(
        &self,
        org_id: &str,
        deployment_name: &str,
        before: i64,
        limit: usize,
    ) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT conversation_id, end_user_id FROM messaging_session
             WHERE org_id = ?1 AND deployment_name = ?2 AND status = ?3 AND ended_at < ?4
             LIMIT ?5",
        )?;
        let ended = enum_str(&SessionStatus::Ended);
        let gone: Vec<(String, String)> = stmt
            .query_map(
                params![org_id, deployment_name, ended, before, limit as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        let mut end_users = BTreeSet::new();
        for (conversation, end_user) in &gone {
            for sql in [
                "DELETE FROM conversation_entry WHERE conversation_id = ?1",
                "DELETE FROM routing_assignment WHERE conversation_id = ?1",
                "DELETE FROM messaging_session WHERE conversation_id = ?1",
            ] {
                self.exec(sql, [conversation])?;
            }
            end_users.insert(end_user);
        }
        // Only the end users of deleted conversations: a visitor who said hello and has not
        // written yet has no conversation either, and keeps their identity.
        for end_user in end_users {
            self.exec(
                "DELETE FROM messaging_end_user WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM messaging_session WHERE end_user_id = ?1)",
                [end_user],
            )?;
        }
        Ok(gone.len())
    }
}
