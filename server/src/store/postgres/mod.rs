//! The PostgreSQL store: one database shared by any number of server nodes.
//!
//! Behaves as the SQLite store does, method for method; what differs is that other nodes
//! write at the same time. Sequence numbers come from `UPDATE … SET last_seq = last_seq + n
//! RETURNING`, whose row lock orders the appends to one conversation across nodes until the
//! group commits, and a resent entry is found by `ON CONFLICT` on `(conversation_id,
//! identifier)`, which also catches the same entry sent through two nodes at once.

use std::collections::BTreeMap;

use em_protocol::agent::ConversationContext;
use em_protocol::{ConversationEntry, ConversationId, EndUserId, EntryId, SessionStatus};
use uuid::Uuid;

use super::sqlite::rows::{enum_str, json};
use super::{Appended, NewEntry, Session, Store, Update};
use crate::clock::SharedClock;
use crate::config::Route;
use crate::error::{Error, Result};

mod cluster;
mod conn;
mod metrics;
mod rows;
mod schema;

use conn::Conn;
use rows::{entry_row, seq, session_row};
pub use schema::SCHEMA_VERSION;

/// Many nodes, one PostgreSQL database.
pub struct PostgresStore {
    conn: Conn,
    clock: SharedClock,
}

/// The URL as it may be shown: user, hosts, ports and database, never a password.
pub fn redacted(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "postgres:(an invalid URL)".into();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

impl PostgresStore {
    /// Connects and migrates the schema forward (one node at a time).
    pub fn open(url: &str, clock: SharedClock) -> Result<Self> {
        let mut conn = Conn::connect(url)?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn, clock })
    }

    /// A connection for the metrics; it sees every committed group.
    pub fn open_reader(url: &str, clock: SharedClock) -> Result<Self> {
        Ok(Self {
            conn: Conn::connect(url)?,
            clock,
        })
    }
}

macro_rules! session_select {
    ($rest:literal) => {
        concat!(
            "SELECT conversation_id, end_user_id, org_id, deployment_name, status, agent_username,
             last_seq, queue, priority, skills_json, context_json, bot_state, updated_at,
             (SELECT subject FROM messaging_end_user u WHERE u.id = s.end_user_id)
             FROM messaging_session s ",
            $rest
        )
    };
}

macro_rules! entry_select {
    ($rest:literal) => {
        concat!(
            "SELECT identifier, seq, sender_role, sender_subject, sender_display_name,
             transcripted_timestamp, client_timestamp, payload_json
             FROM conversation_entry ",
            $rest
        )
    };
}

fn unknown_conversation(id: ConversationId) -> Error {
    Error::Corrupt(format!("append to unknown conversation {id}"))
}

/// An appended entry as the engine sends it on.
fn stored_entry(id: ConversationId, seq: i64, now: i64, e: NewEntry) -> Result<ConversationEntry> {
    Ok(ConversationEntry {
        identifier: e.identifier,
        conversation_id: id,
        seq: rows::seq(seq)?,
        sender: e.sender,
        sender_display_name: e.sender_display_name,
        transcripted_timestamp: now,
        client_timestamp: e.client_timestamp,
        entry_payload: e.payload,
    })
}

/// Seqs are `bigint`: a bound beyond them means "no bound".
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for PostgresStore {
    fn cluster(&mut self) -> Option<&mut dyn super::Cluster> {
        Some(self)
    }

    fn raise_read(&mut self, id: ConversationId, seq: u64) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE messaging_session SET read_seq = $2 WHERE conversation_id = $1 AND read_seq < $2",
            &[&id.0, &clamp(seq)],
        )?;
        Ok(changed > 0)
    }

    fn read_seq(&mut self, id: ConversationId) -> Result<u64> {
        match self.conn.query_opt(
            "SELECT read_seq FROM messaging_session WHERE conversation_id = $1",
            &[&id.0],
        )? {
            Some(row) => seq(row.try_get(0)?),
            None => Ok(0),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn begin(&mut self) -> Result<()> {
        self.conn.begin()
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.commit()
    }

    fn rollback(&mut self) {
        self.conn.rollback();
    }

    fn savepoint(&mut self) -> Result<()> {
        self.conn.batch("SAVEPOINT job")
    }

    fn release(&mut self) -> Result<()> {
        self.conn.batch("RELEASE job")
    }

    fn rollback_to(&mut self) -> Result<()> {
        self.conn.batch("ROLLBACK TO job; RELEASE job")?;
        self.conn.rolled_back_to_savepoint();
        Ok(())
    }

    fn create_end_user(
        &mut self,
        id: EndUserId,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "INSERT INTO messaging_end_user (id, credential_sha256, created_at, org_id, deployment_name)
             VALUES ($1, $2, $3, $4, $5)",
            &[&id.0, &credential_sha256, &now, &org_id, &deployment_name],
        )?;
        Ok(())
    }

    fn end_user_by_credential(
        &mut self,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<EndUserId>> {
        // Twice at most: a legacy end user bound meanwhile by another node is read again.
        for _ in 0..2 {
            let Some(row) = self.conn.query_opt(
                "SELECT id, org_id, deployment_name FROM messaging_end_user
                 WHERE credential_sha256 = $1",
                &[&credential_sha256],
            )?
            else {
                return Ok(None);
            };
            let (id, org, name): (Uuid, Option<String>, Option<String>) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            match (org, name) {
                (Some(org), Some(name)) => {
                    return Ok((org == org_id && name == deployment_name).then_some(EndUserId(id)));
                }
                (None, None) => {
                    let bound = self.conn.execute(
                        "UPDATE messaging_end_user SET org_id = $2, deployment_name = $3
                         WHERE id = $1 AND org_id IS NULL AND deployment_name IS NULL",
                        &[&id, &org_id, &deployment_name],
                    )?;
                    if bound == 1 {
                        return Ok(Some(EndUserId(id)));
                    }
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    fn open_conversation_count(&mut self, end_user: EndUserId) -> Result<u64> {
        let count: i64 = self
            .conn
            .query_one(
                "SELECT COUNT(*) FROM messaging_session WHERE end_user_id = $1 AND status <> $2",
                &[&end_user.0, &enum_str(&SessionStatus::Ended)],
            )?
            .try_get(0)?;
        Ok(count.unsigned_abs())
    }

    fn verified_end_user(
        &mut self,
        org_id: &str,
        deployment_name: &str,
        subject: &str,
    ) -> Result<EndUserId> {
        const FIND: &str = "SELECT id FROM messaging_end_user
             WHERE org_id = $1 AND deployment_name = $2 AND subject = $3";
        if let Some(row) = self
            .conn
            .query_opt(FIND, &[&org_id, &deployment_name, &subject])?
        {
            return Ok(EndUserId(row.try_get(0)?));
        }
        let id = Uuid::new_v4();
        let no_credential: [u8; 32] = rand::random();
        let now = self.now();
        // Two nodes seeing the subject first at once: one row, the other reads it.
        let created = self.conn.execute(
            "INSERT INTO messaging_end_user (id, credential_sha256, created_at, org_id, deployment_name, subject)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org_id, deployment_name, subject) WHERE subject IS NOT NULL DO NOTHING",
            &[&id, &no_credential.as_slice(), &now, &org_id, &deployment_name, &subject],
        )?;
        if created == 1 {
            return Ok(EndUserId(id));
        }
        let row = self
            .conn
            .query_one(FIND, &[&org_id, &deployment_name, &subject])?;
        Ok(EndUserId(row.try_get(0)?))
    }

    fn open_conversation(
        &mut self,
        end_user: EndUserId,
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<ConversationId>> {
        let row = self.conn.query_opt(
            "SELECT conversation_id FROM messaging_session
             WHERE end_user_id = $1 AND org_id = $2 AND deployment_name = $3 AND status <> $4
             ORDER BY created_at DESC, position DESC LIMIT 1",
            &[
                &end_user.0,
                &org_id,
                &deployment_name,
                &enum_str(&SessionStatus::Ended),
            ],
        )?;
        Ok(match row {
            Some(row) => Some(ConversationId(row.try_get(0)?)),
            None => None,
        })
    }

    fn create_session(&mut self, s: &Session) -> Result<()> {
        debug_assert!(
            s.queue.is_empty() && s.bot_state.is_none(),
            "set later, by routing and the bot"
        );
        let now = self.now();
        let last_seq = clamp(s.last_seq);
        self.conn.execute(
            "INSERT INTO messaging_session (conversation_id, end_user_id, org_id, deployment_name, status,
             agent_username, last_seq, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            &[&s.conversation_id.0, &s.end_user_id.0, &s.org_id, &s.deployment_name,
              &enum_str(&s.status), &s.agent_username, &last_seq, &now],
        )?;
        Ok(())
    }

    fn session(&mut self, id: ConversationId) -> Result<Option<Session>> {
        self.conn
            .query_opt(session_select!("WHERE conversation_id = $1"), &[&id.0])?
            .map(|row| session_row(&row))
            .transpose()
    }

    fn sessions_with_status(&mut self, status: SessionStatus) -> Result<Vec<Session>> {
        self.conn
            .query(
                session_select!("WHERE status = $1 ORDER BY updated_at, position"),
                &[&enum_str(&status)],
            )?
            .iter()
            .map(session_row)
            .collect()
    }

    fn append(
        &mut self,
        id: ConversationId,
        entries: Vec<NewEntry>,
        update: Update,
    ) -> Result<Appended> {
        let now = self.now();
        let status = update.status.as_ref().map(enum_str);
        let (set_agent, agent) = match update.agent {
            Some(agent) => (true, agent),
            None => (false, None),
        };
        let mut entries = entries.into_iter();
        let Some(first) = entries.next() else {
            let updated = self.conn.execute(
                "UPDATE messaging_session SET updated_at = $2, status = coalesce($3, status),
                 agent_username = CASE WHEN $4 THEN $5 ELSE agent_username END
                 WHERE conversation_id = $1",
                &[&id.0, &now, &status, &set_agent, &agent],
            )?;
            return match updated {
                0 => Err(unknown_conversation(id)),
                _ => Ok(Appended::Stored(Vec::new())),
            };
        };
        let count = i64::try_from(entries.len() + 1).unwrap_or(i64::MAX);
        // One round trip for the usual append of one entry. `old` locks the session row until
        // the group commits, so another node appending to this conversation waits there and
        // then counts on from this one's seqs; the first entry goes in under that lock, where
        // `ON CONFLICT` sees it if any node stored it before (the dedupe).
        let row = self
            .conn
            .query_opt(
                "WITH old AS (
                     SELECT status, agent_username, updated_at FROM messaging_session
                     WHERE conversation_id = $1 FOR UPDATE
                 ), bumped AS (
                     UPDATE messaging_session s SET last_seq = s.last_seq + $2, updated_at = $3,
                     status = coalesce($4, s.status),
                     agent_username = CASE WHEN $5 THEN $6 ELSE s.agent_username END
                     FROM old WHERE s.conversation_id = $1
                     RETURNING s.last_seq
                 ), inserted AS (
                     INSERT INTO conversation_entry (conversation_id, seq, identifier, sender_role,
                     sender_subject, sender_display_name, transcripted_timestamp, client_timestamp,
                     payload_json)
                     SELECT $1, last_seq - $2 + 1, $7, $8, $9, $10, $3, $11, $12 FROM bumped
                     ON CONFLICT (conversation_id, identifier) DO NOTHING
                     RETURNING seq
                 )
                 SELECT bumped.last_seq, EXISTS (SELECT 1 FROM inserted),
                 old.status, old.agent_username, old.updated_at
                 FROM bumped, old",
                &[
                    &id.0,
                    &count,
                    &now,
                    &status,
                    &set_agent,
                    &agent,
                    &first.identifier.0,
                    &enum_str(&first.sender.role),
                    &first.sender.subject,
                    &first.sender_display_name,
                    &first.client_timestamp,
                    &json(&first.payload),
                ],
            )?
            .ok_or_else(|| unknown_conversation(id))?;
        let last: i64 = row.try_get(0)?;
        if !row.try_get::<_, bool>(1)? {
            // Stored before: put the session back as it was and answer with the stored seq.
            let (old_status, old_agent, old_updated): (String, Option<String>, i64) =
                (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
            self.conn.execute(
                "UPDATE messaging_session SET last_seq = last_seq - $2, status = $3,
                 agent_username = $4, updated_at = $5 WHERE conversation_id = $1",
                &[&id.0, &count, &old_status, &old_agent, &old_updated],
            )?;
            let seq = self
                .seq_of(id, first.identifier)?
                .ok_or_else(|| Error::Corrupt(format!("entry {} vanished", first.identifier)))?;
            return Ok(Appended::Duplicate { seq });
        }
        let mut next = last - count + 1;
        let mut stored = Vec::with_capacity(entries.len() + 1);
        stored.push(stored_entry(id, next, now, first)?);
        for e in entries {
            next += 1;
            self.conn.execute(
                "INSERT INTO conversation_entry (conversation_id, seq, identifier, sender_role,
                 sender_subject, sender_display_name, transcripted_timestamp, client_timestamp,
                 payload_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &id.0,
                    &next,
                    &e.identifier.0,
                    &enum_str(&e.sender.role),
                    &e.sender.subject,
                    &e.sender_display_name,
                    &now,
                    &e.client_timestamp,
                    &json(&e.payload),
                ],
            )?;
            stored.push(stored_entry(id, next, now, e)?);
        }
        Ok(Appended::Stored(stored))
    }

    fn set_route(&mut self, id: ConversationId, r: &Route) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "UPDATE messaging_session SET queue = $2, priority = $3, skills_json = $4,
             waiting_at = coalesce(waiting_at, $5) WHERE conversation_id = $1",
            &[&id.0, &r.queue, &r.priority, &json(&r.skills), &now],
        )?;
        Ok(())
    }

    fn set_context(&mut self, id: ConversationId, ctx: &ConversationContext) -> Result<()> {
        self.conn.execute(
            "UPDATE messaging_session SET context_json = $2 WHERE conversation_id = $1",
            &[&id.0, &json(ctx)],
        )?;
        Ok(())
    }

    fn set_bot(
        &mut self,
        id: ConversationId,
        state: &str,
        answered: bool,
        handoff: bool,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE messaging_session SET bot_state = $2, bot_answers = bot_answers + $3,
             handed_off = handed_off OR $4 WHERE conversation_id = $1",
            &[&id.0, &state, &i64::from(answered), &handoff],
        )?;
        Ok(())
    }

    fn assignment_start(&mut self, id: ConversationId, agent: &str, queue: &str) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "INSERT INTO routing_assignment (conversation_id, agent_username, queue, assigned_at)
             VALUES ($1, $2, $3, $4)",
            &[&id.0, &agent, &queue, &now],
        )?;
        self.conn.execute(
            "UPDATE messaging_session SET first_assigned_at = coalesce(first_assigned_at, $2), queue = $3
             WHERE conversation_id = $1",
            &[&id.0, &now, &queue],
        )?;
        Ok(())
    }

    fn assignment_end(&mut self, id: ConversationId, agent: &str, transfer: bool) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "UPDATE routing_assignment SET released_at = $3
             WHERE conversation_id = $1 AND agent_username = $2 AND released_at IS NULL",
            &[&id.0, &agent, &now],
        )?;
        self.conn.execute(
            "UPDATE messaging_session SET transfers = transfers + $2 WHERE conversation_id = $1",
            &[&id.0, &i64::from(transfer)],
        )?;
        Ok(())
    }

    fn mark_first_response(&mut self, id: ConversationId) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "UPDATE messaging_session SET first_response_at = coalesce(first_response_at, $2)
             WHERE conversation_id = $1",
            &[&id.0, &now],
        )?;
        Ok(())
    }

    fn set_updated_at(&mut self, id: ConversationId, at: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE messaging_session SET updated_at = $2 WHERE conversation_id = $1",
            &[&id.0, &at],
        )?;
        Ok(())
    }

    fn mark_ended(&mut self, id: ConversationId) -> Result<()> {
        let now = self.now();
        self.conn.execute(
            "UPDATE messaging_session SET ended_at = coalesce(ended_at, $2) WHERE conversation_id = $1",
            &[&id.0, &now],
        )?;
        Ok(())
    }

    fn seq_of(&mut self, id: ConversationId, entry: EntryId) -> Result<Option<u64>> {
        self.conn
            .query_opt(
                "SELECT seq FROM conversation_entry WHERE conversation_id = $1 AND identifier = $2",
                &[&id.0, &entry.0],
            )?
            .map(|row| seq(row.try_get(0)?))
            .transpose()
    }

    fn entries_after(
        &mut self,
        id: ConversationId,
        after_seq: u64,
    ) -> Result<Vec<ConversationEntry>> {
        self.conn
            .query(
                entry_select!("WHERE conversation_id = $1 AND seq > $2 ORDER BY seq"),
                &[&id.0, &clamp(after_seq)],
            )?
            .iter()
            .map(|row| entry_row(id, row))
            .collect()
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
            entry_select!(
                "WHERE conversation_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
            )
        } else {
            entry_select!(
                "WHERE conversation_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4"
            )
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut entries = self
            .conn
            .query(sql, &[&id.0, &clamp(after), &clamp(before), &limit])?
            .iter()
            .map(|row| entry_row(id, row))
            .collect::<Result<Vec<_>>>()?;
        if newest {
            entries.reverse();
        }
        Ok(entries)
    }

    fn auto_response_parameters(&mut self, id: ConversationId) -> Result<BTreeMap<String, String>> {
        let row = self.conn.query_opt(
            "SELECT auto_response_parameters_json FROM messaging_session WHERE conversation_id = $1",
            &[&id.0],
        )?;
        let text: Option<String> = match row {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        match text {
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
        self.conn.execute(
            "UPDATE messaging_session SET auto_response_parameters_json = $2 WHERE conversation_id = $1",
            &[&id.0, &json(parameters)],
        )?;
        Ok(())
    }

    fn idle_sessions(&mut self, before: i64) -> Result<Vec<Session>> {
        self.conn
            .query(
                session_select!(
                    "WHERE status = $1 AND agent_username IS NOT NULL AND updated_at <= $2
                     ORDER BY updated_at, position"
                ),
                &[&enum_str(&SessionStatus::Active), &before],
            )?
            .iter()
            .map(session_row)
            .collect()
    }

    fn delete_ended_before(
        &mut self,
        org_id: &str,
        deployment_name: &str,
        before: i64,
        limit: usize,
    ) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.conn.query(
            "SELECT conversation_id, end_user_id FROM messaging_session
             WHERE org_id = $1 AND deployment_name = $2 AND status = $3 AND ended_at < $4
             LIMIT $5",
            &[
                &org_id,
                &deployment_name,
                &enum_str(&SessionStatus::Ended),
                &before,
                &limit,
            ],
        )?;
        let mut conversations = Vec::with_capacity(rows.len());
        let mut end_users = Vec::with_capacity(rows.len());
        for row in &rows {
            conversations.push(row.try_get::<_, Uuid>(0)?);
            end_users.push(row.try_get::<_, Uuid>(1)?);
        }
        if conversations.is_empty() {
            return Ok(0);
        }
        for sql in [
            "DELETE FROM conversation_entry WHERE conversation_id = ANY($1)",
            "DELETE FROM routing_assignment WHERE conversation_id = ANY($1)",
            "DELETE FROM messaging_session WHERE conversation_id = ANY($1)",
        ] {
            self.conn.execute(sql, &[&conversations])?;
        }
        // Only the end users of deleted conversations: a visitor who said hello and has not
        // written yet has no conversation either, and keeps their identity.
        self.conn.execute(
            "DELETE FROM messaging_end_user u WHERE id = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM messaging_session s WHERE s.end_user_id = u.id)",
            &[&end_users],
        )?;
        Ok(conversations.len())
    }
}
