//! SQLite storage: end users, messaging sessions and conversation entries.
//!
//! Blocking API on purpose: callers run it inside `spawn_blocking` (see `engine.rs`), so a
//! disk flush never stalls the async runtime.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use em_protocol::{ConversationEntry, ConversationId, EndUserId, EntryId, EntryPayload, Participant, Role, SessionStatus};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// Bumped with every schema change; `open` refuses a newer database than it knows.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE messaging_end_user (
    id TEXT PRIMARY KEY,
    credential_sha256 BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE messaging_session (
    conversation_id TEXT PRIMARY KEY,
    end_user_id TEXT NOT NULL REFERENCES messaging_end_user(id),
    org_id TEXT NOT NULL,
    deployment_name TEXT NOT NULL,
    status TEXT NOT NULL,
    agent_username TEXT,
    last_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX messaging_session_status ON messaging_session(status);
CREATE TABLE conversation_entry (
    conversation_id TEXT NOT NULL REFERENCES messaging_session(conversation_id),
    seq INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    sender_role TEXT NOT NULL,
    sender_subject TEXT NOT NULL,
    sender_display_name TEXT NOT NULL,
    transcripted_timestamp INTEGER NOT NULL,
    client_timestamp INTEGER,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, identifier)
) WITHOUT ROWID;
";

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
    Duplicate { seq: u64 },
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database file and brings the schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let open_err = |source| Error::OpenDb { path: path.display().to_string(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL + FULL: an acknowledged entry is on disk before the ack leaves.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(open_err)?;
        match version {
            0 => {
                conn.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
                    .map_err(open_err)?;
            }
            SCHEMA_VERSION => {}
            v => return Err(Error::Corrupt(format!("schema version {v} is newer than this server's ({SCHEMA_VERSION})"))),
        }
        Ok(Self { conn })
    }

    pub fn create_end_user(&self, id: EndUserId, credential_sha256: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO messaging_end_user (id, credential_sha256, created_at) VALUES (?1, ?2, ?3)",
            params![id.to_string(), credential_sha256, now_ms()],
        )?;
        Ok(())
    }

    pub fn end_user_by_credential(&self, credential_sha256: &[u8]) -> Result<Option<EndUserId>> {
        let id: Option<String> = self
            .conn
            .query_row("SELECT id FROM messaging_end_user WHERE credential_sha256 = ?1", [credential_sha256], |r| r.get(0))
            .optional()?;
        id.map(|s| parse_id(&s)).transpose()
    }

    pub fn create_session(&self, s: &Session) -> Result<()> {
        let now = now_ms();
        self.conn.execute(
            "INSERT INTO messaging_session (conversation_id, end_user_id, org_id, deployment_name, status,
             agent_username, last_seq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![s.conversation_id.to_string(), s.end_user_id.to_string(), s.org_id, s.deployment_name,
                    enum_str(&s.status), s.agent_username, s.last_seq, now],
        )?;
        Ok(())
    }

    pub fn session(&self, id: ConversationId) -> Result<Option<Session>> {
        self.conn
            .query_row(&format!("{SESSION_SELECT} WHERE conversation_id = ?1"), [id.to_string()], session_row)
            .optional()?
            .transpose()
    }

    /// Sessions in one status, oldest first (the FIFO order for rebuilding queues).
    pub fn sessions_with_status(&self, status: SessionStatus) -> Result<Vec<Session>> {
        let mut stmt = self.conn.prepare(&format!("{SESSION_SELECT} WHERE status = ?1 ORDER BY updated_at, rowid"))?;
        let rows = stmt.query_map([enum_str(&status)], session_row)?;
        rows.map(|r| r?).collect()
    }

    /// Appends entries with consecutive seqs and applies `update`, in one transaction.
    /// If the first entry's identifier is already stored, writes nothing (dedupe).
    pub fn append(&mut self, id: ConversationId, entries: Vec<NewEntry>, update: Update) -> Result<Appended> {
        let cid = id.to_string();
        let tx = self.conn.transaction()?;
        if let Some(first) = entries.first() {
            if let Some(seq) = seq_of(&tx, &cid, first.identifier)? {
                return Ok(Appended::Duplicate { seq });
            }
        }
        let mut seq: u64 = tx.query_row("SELECT last_seq FROM messaging_session WHERE conversation_id = ?1", [&cid], |r| r.get(0))?;
        let now = now_ms();
        let mut stored = Vec::with_capacity(entries.len());
        for e in entries {
            seq += 1;
            tx.execute(
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
        tx.execute("UPDATE messaging_session SET last_seq = ?2, updated_at = ?3 WHERE conversation_id = ?1", params![cid, seq, now])?;
        if let Some(status) = update.status {
            tx.execute("UPDATE messaging_session SET status = ?2 WHERE conversation_id = ?1", params![cid, enum_str(&status)])?;
        }
        if let Some(agent) = update.agent {
            tx.execute("UPDATE messaging_session SET agent_username = ?2 WHERE conversation_id = ?1", params![cid, agent])?;
        }
        tx.commit()?;
        Ok(Appended::Stored(stored))
    }

    /// The seq an entry identifier was stored as, if it was.
    pub fn seq_of(&self, id: ConversationId, entry: EntryId) -> Result<Option<u64>> {
        seq_of(&self.conn, &id.to_string(), entry)
    }

    /// Every entry with `seq > after_seq`, in order.
    pub fn entries_after(&self, id: ConversationId, after_seq: u64) -> Result<Vec<ConversationEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT identifier, seq, sender_role, sender_subject, sender_display_name, transcripted_timestamp,
             client_timestamp, payload_json FROM conversation_entry WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![id.to_string(), after_seq], |r| entry_row(id, r))?;
        rows.map(|r| r?).collect()
    }
}

fn seq_of(conn: &Connection, cid: &str, entry: EntryId) -> Result<Option<u64>> {
    let seq = conn
        .query_row("SELECT seq FROM conversation_entry WHERE conversation_id = ?1 AND identifier = ?2",
                   [cid, &entry.to_string()], |r| r.get(0))
        .optional()?;
    Ok(seq)
}

const SESSION_SELECT: &str = "SELECT conversation_id, end_user_id, org_id, deployment_name, status, agent_username, last_seq FROM messaging_session";

fn session_row(r: &Row) -> rusqlite::Result<Result<Session>> {
    let (cid, uid, status): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(4)?);
    let (org_id, deployment_name, agent_username, last_seq) = (r.get(2)?, r.get(3)?, r.get(5)?, r.get(6)?);
    Ok((|| {
        Ok(Session {
            conversation_id: parse_id(&cid)?,
            end_user_id: parse_id(&uid)?,
            org_id,
            deployment_name,
            status: parse_enum(&status)?,
            agent_username,
            last_seq,
        })
    })())
}

fn entry_row(id: ConversationId, r: &Row) -> rusqlite::Result<Result<ConversationEntry>> {
    let (ident, role, payload): (String, String, String) = (r.get(0)?, r.get(2)?, r.get(7)?);
    let (seq, subject, name, ts, cts) = (r.get(1)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
    Ok((|| {
        Ok(ConversationEntry {
            identifier: parse_id(&ident)?,
            conversation_id: id,
            seq,
            sender: Participant { role: parse_enum::<Role>(&role)?, subject },
            sender_display_name: name,
            transcripted_timestamp: ts,
            client_timestamp: cts,
            entry_payload: serde_json::from_str(&payload).map_err(|e| Error::Corrupt(format!("entry payload: {e}")))?,
        })
    })())
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse().map_err(|_| Error::Corrupt(format!("bad id {s:?}")))
}

/// Unit enums are stored by their wire name (`"Waiting"`, `"EndUser"`).
fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.into())).map_err(|_| Error::Corrupt(format!("bad value {s:?}")))
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
