//! SQLite storage: end users, messaging sessions and conversation entries.
//!
//! Blocking API on purpose: only the store thread calls it (see `engine.rs`), so a disk flush
//! never stalls the async runtime. Time comes from the injected clock.

use std::path::Path;

use em_protocol::agent::ConversationContext;
use em_protocol::{
    ConversationEntry, ConversationId, EndUserId, EntryId, EntryPayload, Participant, SessionStatus,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::SharedClock;
use crate::config::Route;
use crate::error::{Error, Result};

mod metrics;
mod params;
mod rows;
mod schema;
mod sweep;

pub use metrics::{AssignmentFigures, SessionFigures};
use rows::{SESSION_SELECT, entry_row, enum_str, json, parse_id, seq_of, session_row};
use schema::{MIGRATIONS, SCHEMA};
pub use schema::{SCHEMA as SCHEMA_V1, SCHEMA_VERSION};

/// A MessagingSession row.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub conversation_id: ConversationId,
    pub end_user_id: EndUserId,
    pub org_id: String,
    pub deployment_name: String,
    pub status: SessionStatus,
    pub agent_username: Option<String>,
    pub last_seq: u64,
    /// Where routing sent it ('' until it first waits).
    pub queue: String,
    pub priority: i32,
    pub skills: Vec<String>,
    pub context: ConversationContext,
    /// The rule bot's state (see `bot.rs`); `None` when no bot took part.
    pub bot_state: Option<String>,
    /// Last time anything was appended (ms).
    pub updated_at: i64,
}

impl Session {
    /// A new session as `createConversation` makes it.
    pub fn new(
        id: ConversationId,
        end_user_id: EndUserId,
        org_id: &str,
        deployment_name: &str,
    ) -> Self {
        Self {
            conversation_id: id,
            end_user_id,
            org_id: org_id.to_string(),
            deployment_name: deployment_name.to_string(),
            status: SessionStatus::New,
            agent_username: None,
            last_seq: 0,
            queue: String::new(),
            priority: 0,
            skills: Vec::new(),
            context: ConversationContext::default(),
            bot_state: None,
            updated_at: 0,
        }
    }
}

/// An entry to append; the store assigns `seq` and the server timestamp.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub identifier: EntryId,
    pub sender: Participant,
    pub sender_display_name: String,
    pub client_timestamp: Option<i64>,
    pub payload: EntryPayload,
}

/// Session fields an append changes in the same transaction.
#[derive(Debug, Default)]
pub struct Update {
    pub status: Option<SessionStatus>,
    /// `Some(None)` clears the agent.
    pub agent: Option<Option<String>>,
}

/// The outcome of [`Store::append`].
#[derive(Debug)]
pub enum Appended {
    Stored(Vec<ConversationEntry>),
    /// The first entry's identifier was already stored, as `seq`; nothing was written.
    Duplicate {
        seq: u64,
    },
}

pub struct Store {
    conn: Connection,
    clock: SharedClock,
}

impl Store {
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

    /// The injected clock's time (ms).
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts the transaction of a group of jobs (see `engine.rs`).
    pub fn begin(&self) -> Result<()> {
        self.exec("BEGIN IMMEDIATE", [])
    }

    pub fn commit(&self) -> Result<()> {
        self.exec("COMMIT", [])
    }

    /// Abandons the group's transaction, if one is open.
    pub fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// One job's savepoint inside the group: released on success, rolled back on failure.
    pub fn savepoint(&self) -> Result<()> {
        self.exec("SAVEPOINT job", [])
    }

    pub fn release(&self) -> Result<()> {
        self.exec("RELEASE job", [])
    }

    pub fn rollback_to(&self) -> Result<()> {
        self.exec("ROLLBACK TO job", [])?;
        self.exec("RELEASE job", [])
    }

    /// Runs one statement, prepared once and cached: the hot path parses no SQL.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute(params)?;
        Ok(())
    }

    /// An anonymous end user, whose credential is valid only in the deployment that issued it.
    pub fn create_end_user(
        &self,
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

    /// The end user of a credential in this deployment; a credential issued by another
    /// deployment is unknown here. End users from before credentials were bound to a
    /// deployment are bound to the first one they return to.
    pub fn end_user_by_credential(
        &self,
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

    /// How many conversations of an end user are not `Ended`.
    pub fn open_conversation_count(&self, end_user: EndUserId) -> Result<u64> {
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

    /// The end user of a verified `subject` in this deployment, created on first sight. A
    /// verified end user has no credential: its column holds random bytes, the hash of no
    /// known credential, so no `hello` with a credential can ever match it.
    pub fn verified_end_user(
        &self,
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

    /// The end user's newest conversation in this deployment that has not ended.
    pub fn open_conversation(
        &self,
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

    pub fn create_session(&self, s: &Session) -> Result<()> {
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

    pub fn session(&self, id: ConversationId) -> Result<Option<Session>> {
        self.conn
            .prepare_cached(&format!("{SESSION_SELECT} WHERE conversation_id = ?1"))?
            .query_row([id.to_string()], session_row)
            .optional()?
            .transpose()
    }

    /// Sessions in one status, oldest first (the FIFO order for rebuilding queues).
    pub fn sessions_with_status(&self, status: SessionStatus) -> Result<Vec<Session>> {
        let mut stmt = self.conn.prepare(&format!(
            "{SESSION_SELECT} WHERE status = ?1 ORDER BY updated_at, rowid"
        ))?;
        let rows = stmt.query_map([enum_str(&status)], session_row)?;
        rows.map(|r| r?).collect()
    }

    /// Appends entries with consecutive seqs and applies `update`. Atomic because every
    /// caller runs inside a job's savepoint (see `engine.rs`), rolled back if this fails.
    /// If the first entry's identifier is already stored, writes nothing (dedupe).
    pub fn append(
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

    /// Where the session is routed; also marks when it (first) started waiting.
    pub fn set_route(&self, id: ConversationId, r: &Route) -> Result<()> {
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

    /// Replaces the context; the auto-response parameters stored beside it stay.
    pub fn set_context(&self, id: ConversationId, ctx: &ConversationContext) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET context_json = CASE
                 WHEN json_type(context_json, '$.autoResponseParameters') IS NULL THEN ?2
                 ELSE json_set(?2, '$.autoResponseParameters',
                               json(json_extract(context_json, '$.autoResponseParameters')))
             END WHERE conversation_id = ?1",
            params![id.to_string(), json(ctx)],
        )
    }

    /// The bot's new state; `answered` counts an answer it gave, `handoff` marks the handoff.
    pub fn set_bot(
        &self,
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

    /// An agent takes the conversation (routing or transfer).
    pub fn assignment_start(&self, id: ConversationId, agent: &str, queue: &str) -> Result<()> {
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

    /// The agent's part ends (end, transfer, re-route); `transfer` counts a transfer.
    pub fn assignment_end(&self, id: ConversationId, agent: &str, transfer: bool) -> Result<()> {
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

    pub fn mark_first_response(&self, id: ConversationId) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET first_response_at = coalesce(first_response_at, ?2)
             WHERE conversation_id = ?1",
            params![id.to_string(), self.now()],
        )
    }

    /// Puts back the time of the last activity after appending something that is not activity.
    pub fn set_updated_at(&self, id: ConversationId, at: i64) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET updated_at = ?2 WHERE conversation_id = ?1",
            params![id.to_string(), at],
        )
    }

    pub fn mark_ended(&self, id: ConversationId) -> Result<()> {
        self.exec(
            "UPDATE messaging_session SET ended_at = coalesce(ended_at, ?2) WHERE conversation_id = ?1",
            params![id.to_string(), self.now()],
        )
    }

    /// The seq an entry identifier was stored as, if it was.
    pub fn seq_of(&self, id: ConversationId, entry: EntryId) -> Result<Option<u64>> {
        seq_of(&self.conn, &id.to_string(), entry)
    }

    /// Every entry with `seq > after_seq`, in order.
    pub fn entries_after(
        &self,
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

    /// At most `limit` entries with `after < seq < before`, oldest first: the first ones of
    /// that range, or with `newest` its last ones. Every replay goes through here, so no
    /// frame a client asks for grows with the conversation's length.
    pub fn entries_page(
        &self,
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
}
