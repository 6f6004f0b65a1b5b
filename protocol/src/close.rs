//! WebSocket close codes and reasons the server sends (SPEC §1.1), so a client can tell
//! shutdown from oversize from idle and knows whether to reconnect.

/// Why the server closed a socket. [`CloseCode::code`] is the status in the close frame,
/// [`CloseCode::reason`] its reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// The server is stopping (restart, deploy): reconnect with backoff and resume.
    Shutdown,
    /// A frame was not valid UTF-8 text.
    InvalidUtf8,
    /// A frame was larger than the server accepts.
    FrameTooLarge,
    /// The peer sent nothing, not even a pong, for the idle limit.
    Idle,
    /// The peer did not read what the server sent fast enough: its outbound queue filled up
    /// or a write timed out.
    SlowConsumer,
    /// The peer went over a rate limit or quota.
    RateLimited,
    /// A verified visitor's identity token expired and no fresh one came within the grace.
    IdentityExpired,
    /// The `hello` asked for a protocol version the server does not speak.
    UnsupportedVersion,
    /// The agent's access was withdrawn (removed from the config, password changed, signed out).
    AccessRevoked,
}

impl CloseCode {
    /// Every code, for tests and for clients that map numbers back.
    pub const ALL: [CloseCode; 9] = [
        CloseCode::Shutdown,
        CloseCode::InvalidUtf8,
        CloseCode::FrameTooLarge,
        CloseCode::Idle,
        CloseCode::SlowConsumer,
        CloseCode::RateLimited,
        CloseCode::IdentityExpired,
        CloseCode::UnsupportedVersion,
        CloseCode::AccessRevoked,
    ];

    /// The close frame's status: RFC 6455 codes where one fits, else the 4000 range that
    /// RFC 6455 leaves to applications.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Shutdown => 1001,
            CloseCode::InvalidUtf8 => 1007,
            CloseCode::FrameTooLarge => 1009,
            CloseCode::Idle => 4000,
            CloseCode::SlowConsumer => 4001,
            CloseCode::RateLimited => 4002,
            CloseCode::IdentityExpired => 4003,
            CloseCode::UnsupportedVersion => 4004,
            CloseCode::AccessRevoked => 4005,
        }
    }

    /// The close frame's reason: short (a close frame holds at most 123 bytes of it).
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::Shutdown => "server shutting down",
            CloseCode::InvalidUtf8 => "invalid UTF-8",
            CloseCode::FrameTooLarge => "frame too large",
            CloseCode::Idle => "idle",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::RateLimited => "rate limited",
            CloseCode::IdentityExpired => "identity expired",
            CloseCode::UnsupportedVersion => "unsupported protocol version",
            CloseCode::AccessRevoked => "access revoked",
        }
    }

    /// Whether a client should reconnect (with backoff) and resume. Reconnecting cannot help
    /// after a version mismatch, an expired identity (it needs a fresh token from the page)
    /// or withdrawn access.
    pub const fn reconnect(self) -> bool {
        !matches!(
            self,
            CloseCode::UnsupportedVersion | CloseCode::IdentityExpired | CloseCode::AccessRevoked
        )
    }

    /// The code with this status, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}
