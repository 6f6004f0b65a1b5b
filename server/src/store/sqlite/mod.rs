//! The SQLite store: the embedded default, one file and zero set-up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use em_protocol::agent::ConversationContext;
use em_protocol::{ConversationEntry, ConversationId, EndUserId, EntryId, SessionStatus};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Appended, NewEntry, Session, Store, Update};
use crate::clock::SharedClock;
use crate::config::Route;
use crate::error::{Error, Result};

mod metrics;
pub(super) mod rows;
mod schema;

use rows::{SESSION_SELECT, entry_row, enum_str, json, parse_id, seq_of, session_row};
use schema::{MIGRATIONS, SCHEMA};
pub use schema::{SCHEMA as SCHEMA_V1, SCHEMA_VERSION};

/// The embedded default: one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    clock: SharedClock,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates its schema forward.
    pub fn open(path: &Path, clock: SharedClock) -> Result<Self> {
        let open_err = |source| Error::OpenDb {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL + FULL: an acknowledged entry is on disk before the ack leaves.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Corrupt(format!(
                "schema version {version} is newer than this server's ({SCHEMA_VERSION})"
            )));
        }
        if version == 0 {
            conn.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = 1; COMMIT;"))
                .map_err(open_err)?;
        }
        // Each step in its own transaction: a crash mid-way resumes at the last finished one.
        for v in version.max(1)..SCHEMA_VERSION {
            let step = MIGRATIONS[(v - 1) as usize];
            conn.execute_batch(&format!(
                "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
                v + 1
            ))
            .map_err(open_err)?;
            tracing::info!(from = v, to = v + 1, "database schema migrated");
        }
        Ok(Self { conn, clock })
    }

    /// A read-only connection to the same file, for readers off the store thread (metrics):
    /// with WAL it sees every committed group and never blocks the writer.
    pub fn open_reader(path: &Path, clock: SharedClock) -> Result<Self> {
        let open_err = |source| Error::OpenDb {
            path: path.display().to_string(),
            source,
        };
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        Ok(Self { conn, clock })
    }

    /// Runs one statement, prepared once and cached: the hot path parses no SQL.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute(params)?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn raise_read(&mut self, id: ConversationId, seq: u64) -> Result<bool> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE messaging_session SET read_seq = ?2 WHERE conversation_id = ?1 AND read_seq < ?2",
            )?
            .execute(params![id.to_string(), seq])?;
        Ok(changed > 0)
    }

    fn read_seq(&mut self, id: ConversationId) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT read_seq FROM messaging_session WHERE conversation_id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn begin(&mut self) -> Result<()> {
        self.exec("BEGIN IMMEDIATE", [])
    }

    fn commit(&mut self) -> Result<()> {
        self.exec("COMMIT", [])
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn savepoint(&mut self) -> Result<()> {
        self.exec("SAVEPOINT job", [])
    }

    fn release(&mut self) -> Result<()> {
        self.exec("RELEASE job", [])
    }

    fn rollback_to(&mut self) -> Result<()> {
        self.exec("ROLLBACK TO job", [])?;
        self.exec("RELEASE job", [])
    }

    fn create_end_user(
        &mut self,
        id: EndUserId,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO messaging_end_user (id, credential_sha256, created_at, org_id, deployment_name)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.to_string(), credential_sha256, self.now(), org_id, deployment_name],
        )
    }

    fn end_user_by_credential(
        &mut self,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<EndUserId>> {
        type Row = (String, Option<String>, Option<String>);
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT id, org_id, deployment_name FROM messaging_end_user
                 WHERE credential_sha256 = ?1",
            )?
            .query_row([credential_sha256], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        match row {
            Some((id, Some(org), Some(name))) if org == org_id && name == deployment_name => {
                parse_id(&id).map(Some)
            }
            Some((id, None, None)) => {
                self.exec(
                    "UPDATE messaging_end_user SET org_id = ?2, deployment_name = ?3 WHERE id = ?1",
                    params![id, org_id, deployment_name],
                )?;
                parse_id(&id).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn open_conversation_count(&mut self, end_user: EndUserId) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM messaging_session WHERE end_user_id = ?1 AND status <> ?2",
            )?
            .query_row(
                params![end_user.to_string(), enum_str(&SessionStatus::Ended)],
                |r| r.get::<_, i64>(0),
            )? as u64)
    }

    fn verified_end_user(
        &mut self,
        org_id: &str,
        deployment_name: &str,
        subject: &str,
    ) -> Result<EndUserId> {
        let found: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM messaging_end_user
                 WHERE org_id = ?1 AND deployment_name = ?2 AND subject = ?3",
            )?
            .query_row(params![org_id, deployment_name, subject], |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            return parse_id(&id);
        }
        let id = EndUserId(uuid::Uuid::new_v4());
        let no_credential: [u8; 32] = rand::random();
        self.exec(
            "INSERT INTO messaging_end_user (id, credential_sha256, created_at, org_id, deployment_name, subject)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id.to_string(), no_credential.as_slice(), self.now(), org_id, deployment_name, subject],
        )?;
        Ok(id)
    }

    fn open_conversation(
        &mut self,
        end_user: EndUserId,
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<ConversationId>> {
        let id: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT conversation_id FROM messaging_session
                 WHERE end_user_id = ?1 AND org_id = ?2 AND deployment_name = ?3 AND status <> ?4
                 ORDER BY created_at DESC, rowid DESC LIMIT 1",
            )?
            .query_row(
                params![
                    end_user.to_string(),
                    org_id,
                    deployment_name,
                    enum_str(&SessionStatus::Ended)
                ],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|s| parse_id(&s)).transpose()
    }

    fn create_session(&mut self, s: &Session) -> Result<()> {
        debug_assert!(
            s.queue.is_empty() && s.bot_state.is_none(),
            "set later, by routing and the bot"
        );
        let now = self.now();
        self.exec(
            "INSERT INTO messaging_session (conversation_id, end_user_id, org_id, deployment_name, status,
             agent_username, last_seq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![s.conversation_id.to_string(), s.end_user_id.to_string(), s.org_id, s.deployment_name,
                    enum_str(&s.status), s.agent_username, s.last_seq, now],
        )
    }

    fn session(&mut self, id: ConversationId) -> Result<Option<Session>> {
        self.conn
            .prepare_cached(&format!("{SESSION_SELECT} WHERE conversation_id = ?1"))?
            .query_row([id.to_string()], session_row)
            .optional()?
            .transpose()
    }

    fn sessions_with_status(&mut self, status: SessionStatus) -> Result<Vec<Session>> {
        let mut stmt = self.conn.prepare(&format!(
            "{SESSION_SELECT} WHERE status = ?1 ORDER BY updated_at, rowid"
        ))?;
        let rows = stmt.query_map([enum_str(&status)], session_row)?;
        rows.map(|r| r?).collect()
    }

    fn append(
        &mut self,
        id: ConversationId,
        entries: Vec<NewEntry>,
        update: Update,
    ) -> Result<Appended> {
        let cid = id.to_string();
        if let Some(first) = entries.first()
            && let Some(seq) = seq_of(&self.conn, &cid, first.identifier)?
        {
            return Ok(Appended::Duplicate { seq });
        }
        let mut seq: u64 = self
            .conn
            .prepare_cached("SELECT last_seq FROM messaging_session WHERE conversation_id = ?1")?
            .query_row([&cid], |r| r.get(0))?;
        let now = self.now();
        let mut stored = Vec::with_capacity(entries.len());
        for e in entries {
            seq += 1;
            self.exec(
                "INSERT INTO conversation_entry (conversation_id, seq, identifier, sender_role, sender_subject,
                 sender_display_name, transcripted_timestamp, client_timestamp, payload_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![cid, seq, e.identifier.to_string(), enum_str(&e.sender.role), e.sender.subject,
                        e.sender_display_name, now, e.client_timestamp, json(&e.payload)],
            )?;
            stored.push(ConversationEntry {
                identifier: e.identifier,
                conversation_id: id,
                seq,
                sender: e.sender,
                sender_display_name: e.sender_display_name,
                transcripted_timestamp: now,
                client_timestamp: e.client_timestamp,
                entry_payload: e.payload,
            });
        }
        let (set_agent, agent) = match update.agent {
            Some(agent) => (true, agent),
            None => (false, None),
        };
        self.exec(
            "UPDATE messaging_session SET last_seq = ?2, updated_at = ?3, status = coalesce(?4, status),
             agent_username = CASE WHEN ?5 THEN ?6 ELSE agent_username END WHERE conversation_id = ?1",
            params![cid, seq, now, update.status.as_ref().map(enum_str), set_agent, agent],
        )?;
        Ok(Appended::Stored(stored))
    }

    fn set_route(&mut self, id: ConversationId, r: &Route) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET queue = ?2, priority = ?3, skills_json = ?4,
             waiting_at = coalesce(waiting_at, ?5) WHERE conversation_id = ?1",
            params![
                id.to_string(),
                r.queue,
                r.priority,
                json(&r.skills),
                self.now()
            ],
        )
    }

    fn set_context(&mut self, id: ConversationId, ctx: &ConversationContext) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET context_json = CASE
                 WHEN json_type(context_json, '$.autoResponseParameters') IS NULL THEN ?2
                 ELSE json_set(?2, '$.autoResponseParameters',
                               json(json_extract(context_json, '$.autoResponseParameters')))
             END WHERE conversation_id = ?1",
            params![id.to_string(), json(ctx)],
        )
    }

    fn set_bot(
        &mut self,
        id: ConversationId,
        state: &str,
        answered: bool,
        handoff: bool,
    ) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET bot_state = ?2, bot_answers = bot_answers + ?3,
             handed_off = handed_off OR ?4 WHERE conversation_id = ?1",
            params![id.to_string(), state, i64::from(answered), handoff],
        )
    }

    fn assignment_start(&mut self, id: ConversationId, agent: &str, queue: &str) -> Result<()> {
        let now = self.now();
        self.exec(
            "INSERT INTO routing_assignment (conversation_id, agent_username, queue, assigned_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![id.to_string(), agent, queue, now],
        )?;
        self.exec(
            "UPDATE messaging_session SET first_assigned_at = coalesce(first_assigned_at, ?2), queue = ?3
             WHERE conversation_id = ?1",
            params![id.to_string(), now, queue],
        )
    }

    fn assignment_end(&mut self, id: ConversationId, agent: &str, transfer: bool) -> Result<()> {
        let now = self.now();
        self.exec(
            "UPDATE routing_assignment SET released_at = ?3
             WHERE conversation_id = ?1 AND agent_username = ?2 AND released_at IS NULL",
            params![id.to_string(), agent, now],
        )?;
        self.exec(
            "UPDATE messaging_session SET transfers = transfers + ?2 WHERE conversation_id = ?1",
            params![id.to_string(), i64::from(transfer)],
        )
    }

    fn mark_first_response(&mut self, id: ConversationId) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET first_response_at = coalesce(first_response_at, ?2)
             WHERE conversation_id = ?1",
            params![id.to_string(), self.now()],
        )
    }

    fn set_updated_at(&mut self, id: ConversationId, at: i64) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET updated_at = ?2 WHERE conversation_id = ?1",
            params![id.to_string(), at],
        )
    }

    fn mark_ended(&mut self, id: ConversationId) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET ended_at = coalesce(ended_at, ?2) WHERE conversation_id = ?1",
            params![id.to_string(), self.now()],
        )
    }

    fn seq_of(&mut self, id: ConversationId, entry: EntryId) -> Result<Option<u64>> {
        seq_of(&self.conn, &id.to_string(), entry)
    }

    fn entries_after(
        &mut self,
        id: ConversationId,
        after_seq: u64,
    ) -> Result<Vec<ConversationEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT identifier, seq, sender_role, sender_subject, sender_display_name, transcripted_timestamp,
             client_timestamp, payload_json FROM conversation_entry WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![id.to_string(), after_seq], |r| entry_row(id, r))?;
        rows.map(|r| r?).collect()
    }

    fn entries_page(
        &mut self,
        id: ConversationId,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<ConversationEntry>> {
        let sql = if newest {
            "SELECT identifier, seq, sender_role, sender_subject, sender_display_name, transcripted_timestamp,
             client_timestamp, payload_json FROM conversation_entry
             WHERE conversation_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
        } else {
            "SELECT identifier, seq, sender_role, sender_subject, sender_display_name, transcripted_timestamp,
             client_timestamp, payload_json FROM conversation_entry
             WHERE conversation_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq LIMIT ?4"
        };
        // Seqs are SQLite integers: bounds beyond them mean "no bound".
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![id.to_string(), clamp(after), clamp(before), limit],
            |r| entry_row(id, r),
        )?;
        let mut entries = rows.map(|r| r?).collect::<Result<Vec<_>>>()?;
        if newest {
            entries.reverse();
        }
        Ok(entries)
    }

    fn auto_response_parameters(&mut self, id: ConversationId) -> Result<BTreeMap<String, String>> {
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT json_extract(context_json, '$.autoResponseParameters')
                 FROM messaging_session WHERE conversation_id = ?1",
            )?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        match text.flatten() {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| Error::Corrupt(format!("auto-response parameters: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    fn set_auto_response_parameters(
        &mut self,
        id: ConversationId,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.exec(
            "UPDATE messaging_session
             SET context_json = json_set(context_json, '$.autoResponseParameters', json(?2))
             WHERE conversation_id = ?1",
            params![id.to_string(), json(parameters)],
        )
    }

    fn idle_sessions(&mut self, before: i64) -> Result<Vec<Session>> {
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

    fn delete_ended_before(
        &mut self,
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
