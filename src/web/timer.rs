//! The timer driver: at most one armed timeout, for the core's earliest deadline.

use gloo_timers::callback::Timeout;

use crate::core::MAX_TIMER_MS;

#[derive(Default)]
pub struct Timer {
    armed: Option<(u64, Timeout)>,
}

impl Timer {
    /// Arms for `deadline` (ms since the epoch), replacing any other deadline; a deadline
    /// already armed is left alone, so logging in a loop does not churn timers.
    pub fn arm(&mut self, deadline: Option<u64>, now: u64, fire: impl FnOnce() + 'static) {
        match deadline {
            None => self.armed = None,
            Some(at) if self.armed.as_ref().is_some_and(|(armed, _)| *armed == at) => {}
            Some(at) => {
                // The browser fires a longer delay at once, which would spin; waking early
                // is harmless: the core re-arms for its real deadline.
                let delay = at.saturating_sub(now).min(MAX_TIMER_MS) as u32;
                self.armed = Some((at, Timeout::new(delay, fire)));
            }
        }
    }

    /// Forgets the armed deadline after it fired.
    pub fn fired(&mut self) {
        if let Some((_, timeout)) = self.armed.take() {
            // It already ran; forgetting avoids a clearTimeout on a spent id.
            timeout.forget();
        }
    }

    pub fn cancel(&mut self) {
        self.armed = None;
    }
}
