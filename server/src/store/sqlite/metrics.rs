//! The figures the metrics are computed from, read straight from the tables.

use rusqlite::params;

use super::SqliteStore;
use crate::error::Result;
use crate::store::{AssignmentFigures, Figures, GroupTotals, SessionFigures, SessionTotals};

impl Figures for SqliteStore {
    fn session_figures(&mut self) -> Result<Vec<SessionFigures>> {
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

    fn assignment_figures(&mut self) -> Result<Vec<AssignmentFigures>> {
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

    fn session_totals(&mut self) -> Result<SessionTotals> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), TOTAL(bot_state IS NOT NULL),
             TOTAL(bot_state IS NOT NULL AND bot_answers > 0 AND NOT handed_off AND waiting_at IS NULL),
             TOTAL(handed_off != 0), COUNT(first_assigned_at), COUNT(ended_at), TOTAL(transfers),
             TOTAL(first_assigned_at - waiting_at), COUNT(first_assigned_at - waiting_at),
             TOTAL(first_response_at - waiting_at), COUNT(first_response_at - waiting_at),
             TOTAL(ended_at - first_assigned_at), COUNT(ended_at - first_assigned_at)
             FROM messaging_session",
            params![],
            |r| {
                // TOTAL() is a float (0.0 on no rows); the values are whole numbers.
                let int = |i: usize| r.get::<_, f64>(i).map(|v| v as i64);
                Ok(SessionTotals {
                    conversations: r.get(0)?,
                    with_bot: int(1)?,
                    deflected: int(2)?,
                    handed_off: int(3)?,
                    assigned: r.get(4)?,
                    ended: r.get(5)?,
                    transfers: int(6)?,
                    wait: (int(7)?, r.get(8)?),
                    first_response: (int(9)?, r.get(10)?),
                    handle: (int(11)?, r.get(12)?),
                })
            },
        )?)
    }

    fn group_totals(&mut self) -> Result<(Vec<GroupTotals>, Vec<GroupTotals>)> {
        let by = |column: &str| -> Result<Vec<GroupTotals>> {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {column}, COUNT(*), COUNT(released_at), TOTAL(released_at - assigned_at)
                 FROM routing_assignment GROUP BY {column}"
            ))?;
            let rows = stmt.query_map(params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, f64>(3)? as i64))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        Ok((by("queue")?, by("agent_username")?))
    }
}
