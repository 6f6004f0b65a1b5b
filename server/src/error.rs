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

impl Error {
    /// A peer-caused error with a stable wire code.
    pub fn peer(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Peer {
            code,
            message: message.into(),
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
            },
            _ => ErrorFrame {
                code: ErrorCode::Internal,
                message: "internal server error; retry later".into(),
                entry_id,
            },
        }
    }

    /// Whether this is the peer's fault (not worth a warning in the server log).
    pub fn is_peer(&self) -> bool {
        matches!(self, Error::Peer { .. })
    }
}
