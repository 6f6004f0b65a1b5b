//! The SQLite schema, named after the data model.

/// Bumped with every schema change; `open` refuses a newer database than it knows.
pub const SCHEMA_VERSION: i64 = 1;

pub const SCHEMA: &str = "
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
