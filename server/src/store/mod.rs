//! The storage boundary: what the engine asks of a database, and the databases that answer.
//!
//! Blocking API on purpose: only the store thread writes (see `engine.rs`), so a disk flush
//! never stalls the async runtime; the metrics read through a second connection of their own.
//! Time comes from the injected clock. Every write of a job runs inside the job's savepoint,
//! inside its group's transaction, so a failed job leaves nothing behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use em_protocol::agent::ConversationContext;
use em_protocol::{
    ConversationEntry, ConversationId, EndUserId, EntryId, EntryPayload, Participant, SessionStatus,
};

use crate::clock::SharedClock;
use crate::config::Route;
use crate::error::Result;

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which database the server keeps its data in.
#[derive(Debug, Clone)]
pub enum Database {
    /// One SQLite file: the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL server's URL (`postgres://user:password@host:port/database`): the
    /// database that several nodes share.
    Postgres(String),
}

impl Database {
    /// The store the engine writes through, its schema migrated forward.
    pub fn open(&self, clock: SharedClock) -> Result<Box<dyn Store>> {
        match self {
            Database::Sqlite(path) => Ok(Box::new(SqliteStore::open(path, clock)?)),
            Database::Postgres(url) => Ok(Box::new(PostgresStore::open(url, clock)?)),
        }
    }

    /// The PostgreSQL server's URL, for connections of other kinds (the cluster's `LISTEN`).
    pub fn postgres_url(&self) -> Option<&str> {
        match self {
            Database::Sqlite(_) => None,
            Database::Postgres(url) => Some(url),
        }
    }

    /// A connection for readers off the store thread (metrics); it sees every committed group
    /// and never blocks the writer.
    pub fn open_reader(&self, clock: SharedClock) -> Result<Box<dyn Figures>> {
        match self {
            Database::Sqlite(path) => Ok(Box::new(SqliteStore::open_reader(path, clock)?)),
            Database::Postgres(url) => Ok(Box::new(PostgresStore::open_reader(url, clock)?)),
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            // Never the password.
            Database::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
}

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

/// What the engine asks of a database. Sequence numbers are allocated by the database inside
/// the append's transaction, and `(conversation_id, identifier)` is unique, so a resent entry
/// is found instead of stored twice.
pub trait Store: Send {
    /// What the nodes on this database share; `None` for a store only one node can use.
    fn cluster(&mut self) -> Option<&mut dyn Cluster> {
        None
    }

    /// Raises the conversation's read mark to `seq`; whether it rose.
    fn raise_read(&mut self, id: ConversationId, seq: u64) -> Result<bool>;

    /// The conversation's read mark (0 when nothing was read).
    fn read_seq(&mut self, id: ConversationId) -> Result<u64>;

    /// The injected clock's time (ms).
    fn now(&self) -> i64;

    /// Starts the transaction of a group of jobs (see `engine.rs`).
    fn begin(&mut self) -> Result<()>;

    fn commit(&mut self) -> Result<()>;

    /// Abandons the group's transaction, if one is open.
    fn rollback(&mut self);

    /// One job's savepoint inside the group: released on success, rolled back on failure.
    fn savepoint(&mut self) -> Result<()>;

    fn release(&mut self) -> Result<()>;

    fn rollback_to(&mut self) -> Result<()>;

    /// An anonymous end user, whose credential is valid only in the deployment that issued it.
    fn create_end_user(
        &mut self,
        id: EndUserId,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<()>;

    /// The end user of a credential in this deployment; a credential issued by another
    /// deployment is unknown here. End users from before credentials were bound to a
    /// deployment are bound to the first one they return to.
    fn end_user_by_credential(
        &mut self,
        credential_sha256: &[u8],
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<EndUserId>>;

    /// How many conversations of an end user are not `Ended`.
    fn open_conversation_count(&mut self, end_user: EndUserId) -> Result<u64>;

    /// The end user of a verified `subject` in this deployment, created on first sight. A
    /// verified end user has no credential: its column holds random bytes, the hash of no
    /// known credential, so no `hello` with a credential can ever match it.
    fn verified_end_user(
        &mut self,
        org_id: &str,
        deployment_name: &str,
        subject: &str,
    ) -> Result<EndUserId>;

    /// The end user's newest conversation in this deployment that has not ended.
    fn open_conversation(
        &mut self,
        end_user: EndUserId,
        org_id: &str,
        deployment_name: &str,
    ) -> Result<Option<ConversationId>>;

    fn create_session(&mut self, s: &Session) -> Result<()>;

    fn session(&mut self, id: ConversationId) -> Result<Option<Session>>;

    /// Sessions in one status, oldest first (the FIFO order for rebuilding queues).
    fn sessions_with_status(&mut self, status: SessionStatus) -> Result<Vec<Session>>;

    /// Appends entries with consecutive seqs and applies `update`. Atomic because every
    /// caller runs inside a job's savepoint (see `engine.rs`), rolled back if this fails.
    /// If the first entry's identifier is already stored, writes nothing (dedupe).
    fn append(
        &mut self,
        id: ConversationId,
        entries: Vec<NewEntry>,
        update: Update,
    ) -> Result<Appended>;

    /// Where the session is routed; also marks when it (first) started waiting.
    fn set_route(&mut self, id: ConversationId, r: &Route) -> Result<()>;

    /// Replaces the context; the auto-response parameters stored beside it stay.
    fn set_context(&mut self, id: ConversationId, ctx: &ConversationContext) -> Result<()>;

    /// The bot's new state; `answered` counts an answer it gave, `handoff` marks the handoff.
    fn set_bot(
        &mut self,
        id: ConversationId,
        state: &str,
        answered: bool,
        handoff: bool,
    ) -> Result<()>;

    /// An agent takes the conversation (routing or transfer).
    fn assignment_start(&mut self, id: ConversationId, agent: &str, queue: &str) -> Result<()>;

    /// The agent's part ends (end, transfer, re-route); `transfer` counts a transfer.
    fn assignment_end(&mut self, id: ConversationId, agent: &str, transfer: bool) -> Result<()>;

    fn mark_first_response(&mut self, id: ConversationId) -> Result<()>;

    /// Puts back the time of the last activity after appending something that is not activity.
    fn set_updated_at(&mut self, id: ConversationId, at: i64) -> Result<()>;

    fn mark_ended(&mut self, id: ConversationId) -> Result<()>;

    /// The seq an entry identifier was stored as, if it was.
    fn seq_of(&mut self, id: ConversationId, entry: EntryId) -> Result<Option<u64>>;

    /// Every entry with `seq > after_seq`, in order.
    fn entries_after(
        &mut self,
        id: ConversationId,
        after_seq: u64,
    ) -> Result<Vec<ConversationEntry>>;

    /// At most `limit` entries with `after < seq < before`, oldest first: the first ones of
    /// that range, or with `newest` its last ones. Every replay goes through here, so no
    /// frame a client asks for grows with the conversation's length.
    fn entries_page(
        &mut self,
        id: ConversationId,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<ConversationEntry>>;

    /// The parameters stored for a conversation (none for an unknown one).
    fn auto_response_parameters(&mut self, id: ConversationId) -> Result<BTreeMap<String, String>>;

    /// Replaces the parameters; `set_context` keeps them when it rewrites the context.
    fn set_auto_response_parameters(
        &mut self,
        id: ConversationId,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()>;

    /// `Active` conversations with an agent and no entry since `before` (ms), oldest first.
    fn idle_sessions(&mut self, before: i64) -> Result<Vec<Session>>;

    /// Deletes the deployment's conversations that ended before `before` (ms) — entries,
    /// routing assignments, session rows — and then those conversations' end users who have
    /// no conversation left. At most `limit` conversations per call, so a large backlog is
    /// worked off over several sweeps instead of holding up the store thread. Returns how
    /// many conversations went.
    fn delete_ended_before(
        &mut self,
        org_id: &str,
        deployment_name: &str,
        before: i64,
        limit: usize,
    ) -> Result<usize>;
}

/// What several nodes on one database share (see `cluster.rs`): the lock that orders their
/// groups, the log of what each group did, the nodes' heartbeats and the agents' presence.
/// Every method runs inside the store thread's current group transaction.
pub trait Cluster {
    /// Takes the cluster-wide lock until the group's transaction ends.
    fn lock_group(&mut self) -> Result<()>;

    /// The id of the newest logged row (0 when none).
    fn log_head(&mut self) -> Result<u64>;

    /// The rows logged after `after`, oldest first: (id, node, events as JSON).
    fn log_after(&mut self, after: u64) -> Result<Vec<(u64, String, String)>>;

    /// Logs one group's events (JSON) as the next row and notifies the other nodes when the
    /// transaction commits; returns the row's id.
    fn log(&mut self, node: &str, events: &str) -> Result<u64>;

    /// Deletes log rows older than `before` (ms) that every node has read.
    fn prune_log(&mut self, before: i64) -> Result<()>;

    /// Records that `node` is alive at `now` (ms).
    fn beat(&mut self, node: &str, now: i64) -> Result<()>;

    /// Nodes whose last heartbeat is older than `before` (ms).
    fn silent_nodes(&mut self, before: i64) -> Result<Vec<String>>;

    /// Removes a node and the presence rows of its agents.
    fn forget_node(&mut self, node: &str) -> Result<()>;

    /// Whether this group runs the cluster's periodic sweep: true for one group per `every`
    /// ms across all nodes.
    fn claim_sweep(&mut self, now: i64, every: i64) -> Result<bool>;

    /// An agent's presence through `node` (`None`: its last connection there went away).
    fn set_presence(
        &mut self,
        agent: &str,
        node: &str,
        presence: Option<em_protocol::agent::Presence>,
    ) -> Result<()>;

    /// Every (agent, node, presence) row.
    fn presences(&mut self) -> Result<Vec<(String, String, em_protocol::agent::Presence)>>;
}

/// The figures the metrics are computed from, read straight from the tables.
pub trait Figures: Send {
    /// Every session, oldest first.
    fn session_figures(&mut self) -> Result<Vec<SessionFigures>>;

    /// Every assignment, in order.
    fn assignment_figures(&mut self) -> Result<Vec<AssignmentFigures>>;

    /// What `/metrics` shows, added up by the database without reading any row into memory (a
    /// session is deflected as in `Report`: the bot answered, and it never went to routing).
    fn session_totals(&mut self) -> Result<SessionTotals>;

    /// Assignments added up by queue, then by agent.
    fn group_totals(&mut self) -> Result<(Vec<GroupTotals>, Vec<GroupTotals>)>;
}

/// One session's timestamps and counters (ms; `None` when it has not happened).
#[derive(Debug, Clone)]
pub struct SessionFigures {
    pub conversation_id: String,
    pub deployment_name: String,
    pub status: String,
    pub queue: String,
    pub agent: Option<String>,
    pub bot: bool,
    pub bot_answers: i64,
    pub handed_off: bool,
    pub waiting_at: Option<i64>,
    pub first_assigned_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub transfers: i64,
}

/// One agent's part of a conversation.
#[derive(Debug, Clone)]
pub struct AssignmentFigures {
    pub agent: String,
    pub queue: String,
    pub assigned_at: i64,
    pub released_at: Option<i64>,
}

/// The sessions' counts and summed durations (ms), added up by SQLite in one pass.
#[derive(Debug, Clone, Default)]
pub struct SessionTotals {
    pub conversations: i64,
    pub with_bot: i64,
    pub deflected: i64,
    pub handed_off: i64,
    pub assigned: i64,
    pub ended: i64,
    pub transfers: i64,
    /// (sum in ms, count) of wait, first response and handle time.
    pub wait: (i64, i64),
    pub first_response: (i64, i64),
    pub handle: (i64, i64),
}

/// A queue's or an agent's assignments: (name, count, finished, summed handle time in ms).
pub type GroupTotals = (String, i64, i64, i64);
