//! What the nodes on one PostgreSQL share (see `cluster.rs`): the advisory lock that puts
//! their groups in one order, the log those groups write, heartbeats, the one sweep per period
//! and the agents' presence per node.

use em_protocol::agent::Presence;

use super::PostgresStore;
use crate::error::Result;
use crate::store::Cluster;
use crate::store::sqlite::rows::{enum_str, parse_enum};

/// Any fixed number: the transaction-scoped advisory lock every group takes.
const GROUP_LOCK: i64 = 0x656d_5f67_726f_7570; // "em_group"

impl Cluster for PostgresStore {
    fn lock_group(&mut self) -> Result<()> {
        self.conn
            .execute("SELECT pg_advisory_xact_lock($1)", &[&GROUP_LOCK])?;
        Ok(())
    }

    fn log_head(&mut self) -> Result<u64> {
        let row = self
            .conn
            .query_one("SELECT last FROM cluster_head WHERE id = 1", &[])?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn log_after(&mut self, after: u64) -> Result<Vec<(u64, String, String)>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = self.conn.query(
            "SELECT id, node, events FROM cluster_log WHERE id > $1 ORDER BY id",
            &[&after],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2)))
            .collect())
    }

    fn log(&mut self, node: &str, events: &str) -> Result<u64> {
        // The head row is only written under the group lock, so ids have no gaps: a node that
        // finds one knows rows were trimmed before it read them.
        let id: i64 = self
            .conn
            .query_one(
                "UPDATE cluster_head SET last = last + 1 WHERE id = 1 RETURNING last",
                &[],
            )?
            .get(0);
        let now = self.clock.now_ms();
        self.conn.execute(
            "INSERT INTO cluster_log (id, node, events, at) VALUES ($1, $2, $3, $4)",
            &[&id, &node, &events, &now],
        )?;
        // Delivered when the transaction commits, to every node listening.
        // (The channel is `cluster::CHANNEL`.)
        self.conn
            .execute("SELECT pg_notify('em_cluster', '')", &[])?;
        Ok(id as u64)
    }

    fn prune_log(&mut self, before: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM cluster_log WHERE at < $1", &[&before])?;
        Ok(())
    }

    fn beat(&mut self, node: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO cluster_node (node, seen_at) VALUES ($1, $2)
             ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at",
            &[&node, &now],
        )?;
        Ok(())
    }

    fn silent_nodes(&mut self, before: i64) -> Result<Vec<String>> {
        let rows = self.conn.query(
            "SELECT node FROM cluster_node WHERE seen_at < $1 ORDER BY node",
            &[&before],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn forget_node(&mut self, node: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM agent_presence WHERE node = $1", &[&node])?;
        self.conn
            .execute("DELETE FROM cluster_node WHERE node = $1", &[&node])?;
        Ok(())
    }

    fn claim_sweep(&mut self, now: i64, every: i64) -> Result<bool> {
        let claimed = self.conn.execute(
            "UPDATE cluster_head SET swept_at = $1 WHERE id = 1 AND swept_at <= $1::bigint - $2::bigint",
            &[&now, &every],
        )?;
        Ok(claimed == 1)
    }

    fn set_presence(&mut self, agent: &str, node: &str, presence: Option<Presence>) -> Result<()> {
        match presence {
            Some(p) => {
                let p = enum_str(&p);
                self.conn.execute(
                    "INSERT INTO agent_presence (agent, node, presence) VALUES ($1, $2, $3)
                     ON CONFLICT (agent, node) DO UPDATE SET presence = excluded.presence",
                    &[&agent, &node, &p],
                )?;
            }
            None => {
                self.conn.execute(
                    "DELETE FROM agent_presence WHERE agent = $1 AND node = $2",
                    &[&agent, &node],
                )?;
            }
        }
        Ok(())
    }

    fn presences(&mut self) -> Result<Vec<(String, String, Presence)>> {
        let rows = self.conn.query(
            "SELECT agent, node, presence FROM agent_presence ORDER BY agent, node",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.get(0), r.get(1), parse_enum(&r.get::<_, String>(2))?)))
            .collect()
    }
}

/// The tables the statements above use (a migration of `schema.rs`).
pub(super) const SCHEMA: &str = "
-- The order of every node's groups: one row per group that changed something.
CREATE TABLE cluster_head (
    id integer PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL,
    -- When a node last took the cluster's periodic sweep (ms).
    swept_at bigint NOT NULL
);
INSERT INTO cluster_head (id, last, swept_at) VALUES (1, 0, 0);
CREATE TABLE cluster_log (
    id bigint PRIMARY KEY,
    node text NOT NULL,
    events text NOT NULL,
    at bigint NOT NULL
);
CREATE INDEX cluster_log_at ON cluster_log (at);
CREATE TABLE cluster_node (
    node text PRIMARY KEY,
    seen_at bigint NOT NULL
);
CREATE TABLE agent_presence (
    agent text NOT NULL,
    node text NOT NULL,
    presence text NOT NULL,
    PRIMARY KEY (agent, node)
);
";
