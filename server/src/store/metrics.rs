//! The figures the metrics are computed from, read straight from the tables.

use rusqlite::params;

use super::Store;
use crate::error::Result;

/// One session's timestamps and counters (ms; `None` when it has not happened).
#[derive(Debug, Clone)]
pub struct SessionFigures {
    pub conversation_id: String,
    pub deployment_name: String,
    pub status: String,
    pub queue: String,
    pub agent: Option<String>,
    pub bot: bool,
    pub bot_answers: i64,
    pub handed_off: bool,
    pub waiting_at: Option<i64>,
    pub first_assigned_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub transfers: i64,
}

/// One agent's part of a conversation.
#[derive(Debug, Clone)]
pub struct AssignmentFigures {
    pub agent: String,
    pub queue: String,
    pub assigned_at: i64,
    pub released_at: Option<i64>,
}

impl Store {
    /// Every session, oldest first.
    pub fn session_figures(&self) -> Result<Vec<SessionFigures>> {
        let mut stmt = self.conn.prepare(
            "SELECT conversation_id, deployment_name, status, queue, agent_username, bot_state IS NOT NULL,
             bot_answers, handed_off, waiting_at, first_assigned_at, first_response_at, ended_at, transfers
             FROM messaging_session ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok(SessionFigures {
                conversation_id: r.get(0)?,
                deployment_name: r.get(1)?,
                status: r.get(2)?,
                queue: r.get(3)?,
                agent: r.get(4)?,
                bot: r.get(5)?,
                bot_answers: r.get(6)?,
                handed_off: r.get(7)?,
                waiting_at: r.get(8)?,
                first_assigned_at: r.get(9)?,
                first_response_at: r.get(10)?,
                ended_at: r.get(11)?,
                transfers: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every assignment, in order.
    pub fn assignment_figures(&self) -> Result<Vec<AssignmentFigures>> {
        let mut stmt = self.conn.prepare(
            "SELECT agent_username, queue, assigned_at, released_at FROM routing_assignment ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok(AssignmentFigures {
                agent: r.get(0)?,
                queue: r.get(1)?,
                assigned_at: r.get(2)?,
                released_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
