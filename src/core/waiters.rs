//! `flush()` callers waiting for the events logged before their call.

use super::types::{Action, FlushError, Ticket};

#[derive(Debug)]
struct Waiter {
    id: u64,
    /// The last ticket handed out before the call.
    upto: Ticket,
    /// When to give up, and how long that is after the call (a tab that waits on another
    /// tab's sends).
    deadline: Option<(u64, u64)>,
}

#[derive(Debug, Default)]
pub(super) struct FlushWaiters {
    waiting: Vec<Waiter>,
}

impl FlushWaiters {
    /// A waiter for the tickets up to `upto`; with `patience`, it gives up that long after `now`.
    pub fn add(&mut self, id: u64, upto: Ticket, now: u64, patience: Option<u64>) {
        let deadline = patience.map(|ms| (now.saturating_add(ms), ms));
        self.waiting.push(Waiter { id, upto, deadline });
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Settles every waiter with `error`.
    pub fn refuse_all(&mut self, error: &FlushError, actions: &mut impl Extend<Action>) {
        actions.extend(self.waiting.drain(..).map(|w| Action::FlushSettled {
            waiter: w.id,
            result: Err(error.clone()),
        }));
    }

    /// Settles the waiters whose events are all gone: `oldest_pending` is the oldest
    /// ticket still logged, stored or queued.
    pub fn settle_done(
        &mut self,
        oldest_pending: Option<Ticket>,
        actions: &mut impl Extend<Action>,
    ) {
        self.settle(actions, |w| {
            oldest_pending
                .is_none_or(|ticket| ticket > w.upto)
                .then_some(Ok(()))
        });
    }

    /// Settles the waiters whose deadline passed.
    pub fn expire(&mut self, now: u64, actions: &mut impl Extend<Action>) {
        self.settle(actions, |w| {
            let (_, waited_ms) = w.deadline.filter(|&(at, _)| now >= at)?;
            Some(Err(FlushError::SenderSilent { waited_ms }))
        });
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.waiting
            .iter()
            .filter_map(|w| w.deadline)
            .map(|(at, _)| at)
            .min()
    }

    fn settle(
        &mut self,
        actions: &mut impl Extend<Action>,
        outcome: impl Fn(&Waiter) -> Option<Result<(), FlushError>>,
    ) {
        let mut settled = Vec::new();
        self.waiting.retain(|w| match outcome(w) {
            Some(result) => {
                settled.push(Action::FlushSettled {
                    waiter: w.id,
                    result,
                });
                false
            }
            None => true,
        });
        actions.extend(settled);
    }
}
