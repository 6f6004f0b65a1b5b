//! The PostgreSQL schema (the SQLite one's tables and columns, in PostgreSQL's types) and its
//! migrations, run on open by one node at a time.

use super::conn::Conn;
use crate::error::{Error, Result};

/// Bumped with every migration; `open` refuses a newer database than it knows.
pub const SCHEMA_VERSION: i32 = 2;

/// Any fixed number: the advisory lock that lets one starting node migrate at a time.
const MIGRATION_LOCK: i64 = 0x656d_5f73_6368_656d; // "em_schem"

/// `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
///
/// Ids are `uuid`, times `bigint` ms. JSON is `text` as written by serde: PostgreSQL's `jsonb`
/// cannot hold `\u0000`, which a visitor may send, and the store only ever reads it whole.
/// `position` orders rows inserted in the same millisecond, as SQLite's `rowid` does.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE messaging_end_user (
    id uuid PRIMARY KEY,
    credential_sha256 bytea NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    -- NULL for end users from before credentials were bound to a deployment.
    org_id text,
    deployment_name text,
    -- A verified end user's identity token `sub`.
    subject text
);
CREATE UNIQUE INDEX messaging_end_user_subject
    ON messaging_end_user (org_id, deployment_name, subject) WHERE subject IS NOT NULL;
CREATE TABLE messaging_session (
    conversation_id uuid PRIMARY KEY,
    position bigint GENERATED ALWAYS AS IDENTITY,
    end_user_id uuid NOT NULL REFERENCES messaging_end_user (id),
    org_id text NOT NULL,
    deployment_name text NOT NULL,
    status text NOT NULL,
    agent_username text,
    last_seq bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    queue text NOT NULL DEFAULT '',
    priority integer NOT NULL DEFAULT 0,
    skills_json text NOT NULL DEFAULT '[]',
    context_json text NOT NULL DEFAULT '{}',
    -- Beside the context, so that replacing the context keeps them.
    auto_response_parameters_json text,
    bot_state text,
    bot_answers bigint NOT NULL DEFAULT 0,
    handed_off boolean NOT NULL DEFAULT false,
    waiting_at bigint,
    first_assigned_at bigint,
    first_response_at bigint,
    ended_at bigint,
    transfers bigint NOT NULL DEFAULT 0,
    -- The highest seq the visitor has read (read receipts outlive a restart).
    read_seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX messaging_session_status ON messaging_session (status, updated_at);
CREATE INDEX messaging_session_end_user ON messaging_session (end_user_id);
CREATE TABLE conversation_entry (
    conversation_id uuid NOT NULL REFERENCES messaging_session (conversation_id),
    seq bigint NOT NULL,
    identifier uuid NOT NULL,
    sender_role text NOT NULL,
    sender_subject text NOT NULL,
    sender_display_name text NOT NULL,
    transcripted_timestamp bigint NOT NULL,
    client_timestamp bigint,
    payload_json text NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, identifier)
);
CREATE TABLE routing_assignment (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES messaging_session (conversation_id),
    agent_username text NOT NULL,
    queue text NOT NULL,
    assigned_at bigint NOT NULL,
    released_at bigint
);
CREATE INDEX routing_assignment_conversation ON routing_assignment (conversation_id);
",
    // 2: several nodes (the cluster's lock order, log, heartbeats, agents' presence).
    super::cluster::SCHEMA,
];

/// Migrates the schema forward in one transaction. Two nodes starting at once queue on the
/// advisory lock, so the second finds the work done; a crash mid-way leaves the old version.
pub(super) fn migrate(conn: &mut Conn) -> Result<()> {
    conn.begin()?;
    let migrated = migrate_in_transaction(conn);
    match migrated {
        Ok(()) => conn.commit(),
        Err(e) => {
            conn.rollback();
            Err(e)
        }
    }
}

fn migrate_in_transaction(conn: &mut Conn) -> Result<()> {
    conn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    conn.batch("CREATE TABLE IF NOT EXISTS em_schema (version integer NOT NULL)")?;
    let version: i32 = conn
        .query_one("SELECT coalesce(max(version), 0) FROM em_schema", &[])?
        .try_get(0)?;
    if version > SCHEMA_VERSION {
        return Err(Error::Corrupt(format!(
            "schema version {version} is newer than this server's ({SCHEMA_VERSION})"
        )));
    }
    for v in version..SCHEMA_VERSION {
        conn.batch(MIGRATIONS[v as usize])?;
        tracing::info!(from = v, to = v + 1, "database schema migrated");
    }
    if version < SCHEMA_VERSION {
        conn.execute("DELETE FROM em_schema", &[])?;
        conn.execute(
            "INSERT INTO em_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    }
    Ok(())
}
