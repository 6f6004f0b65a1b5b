//! The figures the metrics are computed from, added up by PostgreSQL.

use super::PostgresStore;
use crate::error::Result;
use crate::store::{AssignmentFigures, Figures, GroupTotals, SessionFigures, SessionTotals};

impl Figures for PostgresStore {
    fn session_figures(&mut self) -> Result<Vec<SessionFigures>> {
        let rows = self.conn.query(
            "SELECT conversation_id::text, deployment_name, status, queue, agent_username,
             bot_state IS NOT NULL, bot_answers, handed_off, waiting_at, first_assigned_at,
             first_response_at, ended_at, transfers
             FROM messaging_session ORDER BY created_at, position",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(SessionFigures {
                    conversation_id: r.try_get(0)?,
                    deployment_name: r.try_get(1)?,
                    status: r.try_get(2)?,
                    queue: r.try_get(3)?,
                    agent: r.try_get(4)?,
                    bot: r.try_get(5)?,
                    bot_answers: r.try_get(6)?,
                    handed_off: r.try_get(7)?,
                    waiting_at: r.try_get(8)?,
                    first_assigned_at: r.try_get(9)?,
                    first_response_at: r.try_get(10)?,
                    ended_at: r.try_get(11)?,
                    transfers: r.try_get(12)?,
                })
            })
            .collect()
    }

    fn assignment_figures(&mut self) -> Result<Vec<AssignmentFigures>> {
        let rows = self.conn.query(
            "SELECT agent_username, queue, assigned_at, released_at FROM routing_assignment
             ORDER BY position",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AssignmentFigures {
                    agent: r.try_get(0)?,
                    queue: r.try_get(1)?,
                    assigned_at: r.try_get(2)?,
                    released_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    fn session_totals(&mut self) -> Result<SessionTotals> {
        // SUM of bigint is numeric (NULL on no rows): back to bigint, 0 when empty.
        let r = self.conn.query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE bot_state IS NOT NULL),
             COUNT(*) FILTER (WHERE bot_state IS NOT NULL AND bot_answers > 0 AND NOT handed_off
                              AND waiting_at IS NULL),
             COUNT(*) FILTER (WHERE handed_off), COUNT(first_assigned_at), COUNT(ended_at),
             coalesce(SUM(transfers), 0)::bigint,
             coalesce(SUM(first_assigned_at - waiting_at), 0)::bigint, COUNT(first_assigned_at - waiting_at),
             coalesce(SUM(first_response_at - waiting_at), 0)::bigint, COUNT(first_response_at - waiting_at),
             coalesce(SUM(ended_at - first_assigned_at), 0)::bigint, COUNT(ended_at - first_assigned_at)
             FROM messaging_session",
            &[],
        )?;
        Ok(SessionTotals {
            conversations: r.try_get(0)?,
            with_bot: r.try_get(1)?,
            deflected: r.try_get(2)?,
            handed_off: r.try_get(3)?,
            assigned: r.try_get(4)?,
            ended: r.try_get(5)?,
            transfers: r.try_get(6)?,
            wait: (r.try_get(7)?, r.try_get(8)?),
            first_response: (r.try_get(9)?, r.try_get(10)?),
            handle: (r.try_get(11)?, r.try_get(12)?),
        })
    }

    fn group_totals(&mut self) -> Result<(Vec<GroupTotals>, Vec<GroupTotals>)> {
        let by_queue = self.conn.query(
            "SELECT queue, COUNT(*), COUNT(released_at), coalesce(SUM(released_at - assigned_at), 0)::bigint
             FROM routing_assignment GROUP BY queue ORDER BY queue",
            &[],
        )?;
        let by_agent = self.conn.query(
            "SELECT agent_username, COUNT(*), COUNT(released_at),
             coalesce(SUM(released_at - assigned_at), 0)::bigint
             FROM routing_assignment GROUP BY agent_username ORDER BY agent_username",
            &[],
        )?;
        let totals = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<GroupTotals>> {
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect()
        };
        Ok((totals(by_queue)?, totals(by_agent)?))
    }
}
