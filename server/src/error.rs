//! The crate's one error type, and how each variant is told to a peer.

use em_protocol::{EntryId, ErrorCode, ErrorFrame};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is wrong; printed as one line naming file, field and problem.
    #[error("{file}: {path}: {message}")]
    Config {
        file: String,
        path: String,
        message: String,
    },
    #[error("{file}: cannot read: {source}")]
    ConfigRead {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    OpenDb {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A PostgreSQL server that cannot be reached or refuses us (`url` has no password).
    #[error("cannot open database {url}: {}", describe_postgres(.source))]
    OpenPostgres {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("database: {}", describe_postgres(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer asked for something it may not have; answered with an `error` frame.
    #[error("{message}")]
    Peer { code: ErrorCode, message: String },
    /// A limit was reached; answered with `rate_limited` and when to try again.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_ms: u64,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store thread could not commit the group this request was in.
    #[error("the database did not commit")]
    CommitFailed,
    /// The store thread is gone (the server is stopping).
    #[error("the store is stopped")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A PostgreSQL error on one line with its cause ("error connecting to server: Connection
/// refused"; the server's message for a database error), where its `Display` says only
/// "db error".
pub fn describe_postgres(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl Error {
    /// A peer-caused error with a stable wire code.
    pub fn peer(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Peer {
            code,
            message: message.into(),
        }
    }

    /// A `rate_limited` refusal: nothing was done; the same frame may come back after the wait.
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Error::RateLimited {
            message: message.into(),
            // At least 1 ms: a zero wait would invite an immediate, equally refused retry.
            retry_after_ms: (retry_after.as_millis() as u64).max(1),
        }
    }

    /// The `error` frame for this error. Server faults are not detailed to the peer:
    /// they are logged, and the peer may retry (every frame is idempotent).
    pub fn to_frame(&self, entry_id: Option<EntryId>) -> ErrorFrame {
        match self {
            Error::Peer { code, message } => ErrorFrame {
                code: *code,
                message: message.clone(),
                entry_id,
                retry_after_ms: None,
            },
            Error::RateLimited {
                message,
                retry_after_ms,
            } => ErrorFrame {
                code: ErrorCode::RateLimited,
                message: message.clone(),
                entry_id,
                retry_after_ms: Some(*retry_after_ms),
            },
            _ => ErrorFrame {
                code: ErrorCode::Internal,
                message: "internal server error; retry later".into(),
                entry_id,
                retry_after_ms: None,
            },
        }
    }

    /// Whether this is the peer's fault (not worth a warning in the server log).
    pub fn is_peer(&self) -> bool {
        matches!(self, Error::Peer { .. } | Error::RateLimited { .. })
    }
}
