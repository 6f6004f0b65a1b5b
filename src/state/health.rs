//! Connection health: heartbeat ticks, wake-ups (online, tab shown), reconnect jitter
//! (part of `State::update`).

use super::*;

impl State {
    /// Seed the reconnect jitter (so that many visitors do not retry in step).
    pub fn seed(&mut self, seed: u32) {
        self.rng = seed | 1;
    }

    /// Every `KEEPALIVE_MS`: ping a live socket, resend what is still pending (an `internal`
    /// error or a lost frame), and give up on a socket silent since the last tick.
    pub(super) fn heartbeat(&mut self, fx: &mut Vec<Effect>) {
        if matches!(self.link, Link::Offline | Link::Backoff) {
            return;
        }
        if std::mem::replace(&mut self.heartbeat_pending, true) {
            // Nothing heard for a whole tick after a ping (or stuck connecting): reconnect.
            self.attempt = self.attempt.saturating_add(1);
            self.connect(fx);
            return;
        }
        if self.link == Link::Joining && self.prechat_shown() {
            // Welcomed, waiting for the pre-chat form: keep the idle socket alive.
            fx.push(Effect::Send(ToServer::Ping));
        }
        if let (Link::Live, Some(conversation_id)) = (self.link, self.conversation_id) {
            fx.push(Effect::Send(ToServer::Ping));
            self.resend_pending(conversation_id, fx);
        }
    }

    /// The browser came back online or the tab became visible: reconnect now if waiting;
    /// ping a live socket (writing to a dead one makes the browser notice sooner). The ping
    /// does not arm the dead-socket check: a tick right after it would give up on a healthy
    /// socket whose pong is still on its way.
    pub(super) fn wake(&mut self, fx: &mut Vec<Effect>) {
        match self.link {
            Link::Backoff => self.connect(fx),
            Link::Live => fx.push(Effect::Send(ToServer::Ping)),
            _ => {}
        }
    }

    /// A delay between half of `base` and `base`, from the seeded xorshift ("equal jitter").
    pub(super) fn jitter(&mut self, base: u32) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        let half = base / 2;
        half + x % (base - half + 1)
    }
}
