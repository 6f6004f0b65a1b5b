//! Periodic sweeps on the injected clock: idle conversations become `Inactive`, and ended
//! ones past their deployment's retention are deleted.
//!
//! The store thread runs a sweep every [`SWEEP_EVERY`] of real time (see `engine.rs`) and
//! compares stored times with the injected clock, so a test that moves a manual clock sees
//! the effect at the next sweep, or at once with [`Engine::sweep`].

use std::time::Duration;

use em_protocol::{EntryPayload, SessionStatus};

use crate::engine::{Ctx, Engine, Inner};
use crate::error::Result;
use crate::lifecycle::system_entry;
use crate::routing::Change;
use crate::store::{NewEntry, Session, Update};

/// Real time between two sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Retention runs on one sweep in this many: its query scans the ended conversations.
pub const RETENTION_EVERY: u32 = 60;

/// Most conversations one sweep deletes per deployment; a backlog goes over several sweeps.
const RETENTION_BATCH: usize = 1000;

const DAY_MS: i64 = 86_400_000;

/// Several nodes: log rows older than this are deleted (every live node read them long ago).
const LOG_KEPT_MS: i64 = 10 * 60 * 1000;

impl Ctx {
    /// Marks idle conversations `Inactive`; with `retention`, also deletes old ended ones.
    /// With several nodes, each node beats here, and one sweep per period runs cluster-wide.
    pub fn sweep(&self, inner: &mut Inner, retention: bool) -> Result<()> {
        if !self.cluster_turn(inner)? {
            return Ok(());
        }
        self.mark_inactive(inner)?;
        if retention {
            self.apply_retention(inner)?;
        }
        Ok(())
    }

    /// Several nodes: records this node's heartbeat, and tells whether this sweep is the
    /// cluster's for this period. The node that takes it also finds nodes gone silent (their
    /// agents' connections went with them) and trims the log. One node: always its turn.
    fn cluster_turn(&self, inner: &mut Inner) -> Result<bool> {
        let now = self.clock.now_ms();
        let timeout_ms = self.config().server.node_timeout_seconds as i64 * 1000;
        let node = inner.node.clone();
        let Some(cluster) = inner.store.cluster() else {
            return Ok(true);
        };
        cluster.beat(&node, now)?;
        if !cluster.claim_sweep(now, SWEEP_EVERY.as_millis() as i64)? {
            return Ok(false);
        }
        let gone = cluster.silent_nodes(now - timeout_ms)?;
        for node in &gone {
            cluster.forget_node(node)?;
        }
        cluster.prune_log(now - LOG_KEPT_MS)?;
        for node in gone {
            tracing::warn!(%node, "node silent; its agents' connections are gone");
            inner.change(Change::NodeGone { node });
        }
        Ok(true)
    }

    /// Every `Active` conversation with an agent and no entry for `inactive_after_seconds`
    /// gets `SessionStatusChanged` `Inactive` (visitor and agent see it). It keeps its agent,
    /// who keeps it in their capacity; the entry does not count as activity, so reopening
    /// (`reopen_after_seconds`) still measures from the last real entry.
    fn mark_inactive(&self, inner: &mut Inner) -> Result<()> {
        let limit_ms = self.config().routing.inactive_after_seconds as i64 * 1000;
        let before = self.clock.now_ms() - limit_ms;
        for s in inner.store.idle_sessions(before)? {
            let entry = system_entry(EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Inactive,
            });
            self.notice(inner, &s, entry, Some(SessionStatus::Inactive))?;
            tracing::info!(conversation = %s.conversation_id, agent = ?s.agent_username, "inactive");
        }
        Ok(())
    }

    /// Deletes ended conversations older than their deployment's `retention_days`.
    fn apply_retention(&self, inner: &mut Inner) -> Result<()> {
        let now = self.clock.now_ms();
        for d in &self.config().deployment {
            let Some(days) = d.retention_days else {
                continue;
            };
            let before = now - i64::from(days) * DAY_MS;
            let deleted =
                inner
                    .store
                    .delete_ended_before(&d.org_id, &d.name, before, RETENTION_BATCH)?;
            if deleted > 0 {
                tracing::info!(deployment = %d.name, deleted, days, "ended conversations past retention deleted");
            }
        }
        Ok(())
    }
}

/// A message in an `Inactive` conversation makes it `Active` again: the message is stored
/// first (its `entryId` dedupes a resend), then `SessionStatusChanged` `Active`.
pub fn waking(
    s: &Session,
    mut entries: Vec<NewEntry>,
    mut update: Update,
) -> (Vec<NewEntry>, Update) {
    if s.status == SessionStatus::Inactive {
        entries.push(system_entry(EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Active,
        }));
        update.status = Some(SessionStatus::Active);
    }
    (entries, update)
}

impl Engine {
    /// Runs every sweep now, retention included (the store thread also runs them on its own).
    pub async fn sweep(&self) -> Result<()> {
        self.run(|inner, ctx| ctx.sweep(inner, true)).await
    }
}

#[cfg(test)]
mod tests {
    use em_protocol::{ConversationId, EndUserId, EntryId, Participant, Role};
    use uuid::Uuid;

    use super::*;

    fn message() -> NewEntry {
        let id = EntryId(Uuid::new_v4());
        NewEntry {
            identifier: id,
            sender: Participant {
                role: Role::EndUser,
                subject: "u".into(),
            },
            sender_display_name: "Guest".into(),
            client_timestamp: None,
            payload: EntryPayload::text(id, "hi"),
        }
    }

    #[test]
    // A message wakes only an Inactive conversation: the message stays first, `Active` follows.
    fn waking_appends_active_after_the_message_only_when_inactive() {
        let mut s = Session::new(
            ConversationId(Uuid::new_v4()),
            EndUserId(Uuid::new_v4()),
            "00D000000000001",
            "D",
        );
        let m = message();
        for status in [
            SessionStatus::New,
            SessionStatus::Waiting,
            SessionStatus::Active,
        ] {
            s.status = status;
            let (entries, update) = waking(&s, vec![m.clone()], Update::default());
            assert_eq!(entries.len(), 1, "{status:?}");
            assert_eq!(update.status, None, "{status:?}");
        }
        s.status = SessionStatus::Inactive;
        let (entries, update) = waking(&s, vec![m.clone()], Update::default());
        assert_eq!(entries[0].identifier, m.identifier);
        assert_eq!(
            entries[1].payload,
            EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Active
            }
        );
        assert_eq!(update.status, Some(SessionStatus::Active));
        assert!(update.agent.is_none(), "the agent stays");
    }
}
