//! `[deployment.limits]` (quotas and rates per deployment) and `[proxy]` (whose address a
//! client has when a reverse proxy stands in front of the server).

use std::net::IpAddr;

use serde::Deserialize;

/// What one client may do in a deployment. Every limit answers `rate_limited` with
/// `retryAfterMs` (connections: HTTP 429 with `Retry-After`); nothing is stored or sent on.
/// The defaults let a person chat (and a busy page reload) without ever meeting one, while a
/// script hits them within a second.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Visitor sockets open at once from one client address.
    pub connections_per_address: u32,
    /// `hello`s without a credential (new identities) per minute from one client address.
    pub new_visitors_per_minute: u32,
    /// Frames per second on one socket (a burst of twice that is allowed).
    pub frames_per_second: u32,
    /// `sendMessage`s per second on one socket (a burst of twice that is allowed).
    pub messages_per_second: u32,
    /// Conversations one end user may create per hour.
    pub conversations_per_hour: u32,
    /// Conversations one end user may have open (not Ended) at once.
    pub open_conversations: u32,
    /// Entries one conversation may hold; a visitor message beyond it is refused.
    pub entries_per_conversation: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_per_address: 30,
            new_visitors_per_minute: 30,
            frames_per_second: 20,
            messages_per_second: 5,
            conversations_per_hour: 20,
            open_conversations: 3,
            entries_per_conversation: 10_000,
        }
    }
}

impl Limits {
    /// Every limit must be at least 1: zero would refuse everyone, which is what
    /// `published = false` is for.
    pub fn validate(&self, at: &str) -> Result<(), (String, String)> {
        let fields = [
            (
                "connections_per_address",
                u64::from(self.connections_per_address),
            ),
            (
                "new_visitors_per_minute",
                u64::from(self.new_visitors_per_minute),
            ),
            ("frames_per_second", u64::from(self.frames_per_second)),
            ("messages_per_second", u64::from(self.messages_per_second)),
            (
                "conversations_per_hour",
                u64::from(self.conversations_per_hour),
            ),
            ("open_conversations", u64::from(self.open_conversations)),
            ("entries_per_conversation", self.entries_per_conversation),
        ];
        match fields.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err((
                format!("{at}.{name}"),
                "must be at least 1 (to turn a deployment off, set published = false)".into(),
            )),
            None => Ok(()),
        }
    }
}

/// `[proxy]`: without it, a client's address is the TCP peer's. Behind a reverse proxy every
/// client would share the proxy's address (and its limits), so the proxy's own header names
/// the client, but only on connections from the listed proxies: anyone else could forge it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// E.g. `"X-Forwarded-For"` (its last address is the one the proxy saw) or `"X-Real-IP"`.
    pub client_address_header: Option<String>,
    /// Addresses of the proxies whose header is believed.
    #[serde(default)]
    pub trusted: Vec<IpAddr>,
}

impl ProxySettings {
    pub fn validate(&self) -> Result<(), (String, String)> {
        match &self.client_address_header {
            Some(h) if axum::http::HeaderName::try_from(h.as_str()).is_err() => Err((
                "proxy.client_address_header".into(),
                format!("{h:?} is not a valid header name"),
            )),
            Some(_) if self.trusted.is_empty() => Err((
                "proxy.trusted".into(),
                "list the proxies' addresses, or the header could be forged by anyone".into(),
            )),
            _ => Ok(()),
        }
    }
}
