//! Who the visitor is: the page's identity token in verified deployments, its expiry, and
//! `clearSession` (part of `State::update`). The token lives in memory only, never in storage.

use super::*;
use crate::json::Json;

impl State {
    /// `userVerificationAPI.setIdentityToken`, already shape-checked by `check_token`.
    pub(super) fn set_identity_token(&mut self, token: String, fx: &mut Vec<Effect>) {
        let refresh = self.identity_token.is_some();
        self.identity_token = Some(token.clone());
        match self.link {
            // A fresh token on a live connection (after `identityTokenExpired`, or early).
            Link::Joining | Link::Live if refresh || self.token_expired => {
                self.token_expired = false;
                fx.push(Effect::Send(ToServer::Identify {
                    identity_token: token,
                }));
            }
            // Waiting for a token: a conversation to resume, or an open window, connects now.
            Link::Offline
                if self.conversation_id.is_some() || self.window != WindowState::Closed =>
            {
                self.connect(fx)
            }
            _ => {}
        }
    }

    /// Verified deployments connect only with a token (the server would refuse the hello).
    pub(super) fn may_connect(&self) -> bool {
        !self.verified || self.identity_token.is_some()
    }

    /// The server refused the token or saw it expire: nothing works until the page sets a new
    /// one. `clear` also wipes the session (expired past the grace period).
    pub(super) fn identity_refused(&mut self, why: String, clear: bool, fx: &mut Vec<Effect>) {
        fx.push(Effect::Warn(why));
        if clear {
            self.clear_session(false, false, fx);
        } else {
            self.identity_token = None;
            self.token_expired = false;
            self.link = Link::Offline;
            fx.push(Effect::Disconnect);
        }
    }

    /// `userVerificationAPI.clearSession(end)` here, or following another tab (`follow`):
    /// forget the identity, the conversation and every line, close the window, disconnect;
    /// Ready fires again. With `end`, the server ends the conversation first. Only the tab
    /// that clears renews the shared connection and wipes storage; followers already see both.
    pub(super) fn clear_session(&mut self, end: bool, follow: bool, fx: &mut Vec<Effect>) {
        if let (true, Link::Live, Some(conversation_id)) = (end, self.link, self.conversation_id) {
            fx.push(Effect::Send(ToServer::EndConversation { conversation_id }));
        }
        if self.credential.is_some() {
            self.forgotten = self.credential.clone();
        }
        self.forget_identity();
        self.items.clear();
        self.dirty = 0;
        self.unread = 0;
        self.read_seq = 0;
        self.opened_fired = false;
        self.welcomed_once = false;
        self.identity_token = None;
        self.token_expired = false;
        self.link = Link::Offline;
        self.was_live = false;
        self.context.prechat.clear();
        self.forget_prechat();
        fx.push(Effect::Disconnect);
        if self.window != WindowState::Closed {
            self.window = WindowState::Closed;
            fx.push(Effect::Emit(Event::WindowClosed));
        }
        fx.push(Effect::Emit(Event::UnreadCountChanged(0)));
        if !follow {
            fx.extend([Effect::ResetLink, Effect::ClearStorage]);
        }
        fx.push(Effect::Emit(Event::Ready));
    }
}

/// Why `setIdentityToken` refuses `token` at `now_ms`, or `Ok` for a JWT that is not yet
/// expired. Only the shape and `exp` are checked here; the server verifies the signature.
pub fn check_token(token: &str, now_ms: f64) -> Result<(), &'static str> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("is not a JWT (three base64url parts separated by dots)");
    };
    let claims = base64url(payload)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| Json::parse(&text))
        .filter(|_| !signature.is_empty())
        .ok_or("is not a JWT (its payload is not base64url JSON)")?;
    match claims.get("exp").and_then(Json::as_i64) {
        Some(exp) if (exp as f64) * 1000.0 > now_ms => Ok(()),
        Some(_) => Err("has expired (its exp is in the past)"),
        None => Err("has no exp claim"),
    }
}

/// Decodes unpadded base64url (`-`, `_`); `None` on any other character.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
