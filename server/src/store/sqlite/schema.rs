//! The SQLite schema, named after the data model, and its forward migrations.

/// Bumped with every migration; `open` refuses a newer database than it knows.
pub const SCHEMA_VERSION: i64 = 4;

/// Version 1: the first schema.
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

/// `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
pub const MIGRATIONS: &[&str] = &[
    "
-- 2: routing (queue, priority, skills), context, the bot's state and the metrics' timestamps.
ALTER TABLE messaging_session ADD COLUMN queue TEXT NOT NULL DEFAULT '';
ALTER TABLE messaging_session ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messaging_session ADD COLUMN skills_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messaging_session ADD COLUMN context_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE messaging_session ADD COLUMN bot_state TEXT;
ALTER TABLE messaging_session ADD COLUMN bot_answers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messaging_session ADD COLUMN handed_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messaging_session ADD COLUMN waiting_at INTEGER;
ALTER TABLE messaging_session ADD COLUMN first_assigned_at INTEGER;
ALTER TABLE messaging_session ADD COLUMN first_response_at INTEGER;
ALTER TABLE messaging_session ADD COLUMN ended_at INTEGER;
ALTER TABLE messaging_session ADD COLUMN transfers INTEGER NOT NULL DEFAULT 0;
CREATE TABLE routing_assignment (
    conversation_id TEXT NOT NULL REFERENCES messaging_session(conversation_id),
    agent_username TEXT NOT NULL,
    queue TEXT NOT NULL,
    assigned_at INTEGER NOT NULL,
    released_at INTEGER
);
CREATE INDEX routing_assignment_conversation ON routing_assignment(conversation_id);
",
    "
-- 3: verified visitors. An identity token's `sub` is one end user per deployment (set only for
-- verified end users); their newest open conversation is looked up by end user.
ALTER TABLE messaging_end_user ADD COLUMN org_id TEXT;
ALTER TABLE messaging_end_user ADD COLUMN deployment_name TEXT;
ALTER TABLE messaging_end_user ADD COLUMN subject TEXT;
CREATE UNIQUE INDEX messaging_end_user_subject
    ON messaging_end_user(org_id, deployment_name, subject) WHERE subject IS NOT NULL;
CREATE INDEX messaging_session_end_user ON messaging_session(end_user_id);
",
    "
-- 4: read receipts outlive a restart (and are shared by every node).
ALTER TABLE messaging_session ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
",
];
