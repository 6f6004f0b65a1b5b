//! `[http]`: timeouts and connection caps of the messaging listener, read at start.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// A client must send a request's headers within this long of connecting (or of its
    /// previous response, on a kept-alive connection), else the connection is closed: a
    /// client sending nothing, or half a request line, cannot hold a connection open.
    pub header_read_timeout_seconds: u64,
    /// A request not answered within this long gets `408 Request Timeout`. A WebSocket is
    /// answered at once (101), so the socket itself is not limited by it.
    pub request_timeout_seconds: u64,
    /// Open connections, WebSockets included, across all clients. Further ones are answered
    /// `503` and closed at once. Lowered at start to what the open-files limit allows.
    pub max_connections: usize,
    /// Open connections, WebSockets included, from one TCP peer address; 0 turns this cap off
    /// (behind a reverse proxy every client shares the proxy's address).
    pub max_connections_per_address: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_connections: 50_000,
            max_connections_per_address: 500,
        }
    }
}

impl HttpSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            ("request_timeout_seconds", self.request_timeout_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                return Err((format!("[http] {key}"), "must be from 1 to 3600".into()));
            }
        }
        if self.max_connections == 0 {
            return Err(("[http] max_connections".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}
