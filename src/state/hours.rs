//! Business hours: the button hides (or shows "offline") while the deployment is closed, and
//! the boundary events fire (part of `State::update`).

use super::*;

/// The deployment's business hours as the config said at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hours {
    pub open: bool,
    /// While closed, the button stays, marked offline (else it hides).
    pub offline_button: bool,
}

impl State {
    /// `nextChangeAt` passed: open ↔ closed, and the matching event.
    pub(super) fn hours_boundary(&mut self, fx: &mut Vec<Effect>) {
        if let Some(h) = &mut self.hours {
            h.open = !h.open;
            fx.push(Effect::Emit(if h.open {
                Event::BusinessHoursStarted
            } else {
                Event::BusinessHoursEnded
            }));
        }
    }

    /// Closed now, per the deployment's business hours.
    pub fn closed(&self) -> bool {
        self.hours.is_some_and(|h| !h.open)
    }

    /// The launcher is not shown: hidden by the page, the window shows, no verified identity
    /// yet, or closed hours with a hidden button. A conversation already going keeps its
    /// button after hours: the visitor can still read replies.
    pub fn launcher_hidden(&self) -> bool {
        self.button_hidden
            || self.inline
            || self.window != WindowState::Closed
            || !self.may_connect()
            || (self.closed()
                && !self.hours.is_some_and(|h| h.offline_button)
                && self.conversation_id.is_none())
    }
}
