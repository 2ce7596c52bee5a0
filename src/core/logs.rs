//! Events logged: stamped, refused if they could never fit in a batch, queued to be
//! written (and posted at once while the page is hidden).

use std::rc::Rc;

use super::stats::DropReason;
use super::types::{LogError, NewEvent, Ticket};
use super::{wire, Core};

impl Core {
    /// An event was logged: `seq` is its number in this page's session, `payload` its
    /// JSON. Refuses an event that could never fit in a batch; otherwise it will be
    /// persisted and sent.
    pub fn handle_log(
        &mut self,
        now: u64,
        id: String,
        seq: u64,
        payload: String,
    ) -> Result<Ticket, LogError> {
        let ticket = self.admit(now, id, seq, payload)?;
        self.post_if_hidden(now);
        self.drive(now);
        Ok(ticket)
    }

    /// Events logged together at `at` (`(id, seq, payload)`, in order): each as by
    /// [`Core::handle_log`], but handed to storage in one write, not the first alone.
    /// `at` is earlier than `now` for calls that waited for the client; their `ts` is the
    /// call's (never later than `now`). Returns the refusals; the other events are kept.
    pub fn handle_logs(
        &mut self,
        now: u64,
        at: u64,
        events: impl IntoIterator<Item = (String, u64, String)>,
    ) -> Vec<LogError> {
        let ts = at.min(now);
        let refused = events
            .into_iter()
            .filter_map(|(id, seq, payload)| self.admit(ts, id, seq, payload).err())
            .collect();
        self.post_if_hidden(now);
        self.drive(now);
        refused
    }

    /// Queues an event stamped `ts` unpersisted, or refuses one that could never fit in a
    /// batch.
    fn admit(
        &mut self,
        ts: u64,
        id: String,
        seq: u64,
        payload: String,
    ) -> Result<Ticket, LogError> {
        self.stats.logged += 1;
        let bytes = self.envelope_bound + wire::event_len(&id, &self.session, seq, ts, &payload);
        if bytes > self.config.max_batch_bytes {
            self.stats.dropped.add(DropReason::Oversize, 1);
            return Err(LogError::TooLarge {
                bytes,
                limit: self.config.max_batch_bytes,
            });
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.unpersisted.push(NewEvent {
            ticket,
            id,
            session: Rc::clone(&self.session),
            seq,
            ts,
            payload,
        });
        Ok(ticket)
    }

    /// A payload could not be serialized; only counted (the caller got the error).
    pub fn handle_invalid_payload(&mut self) {
        self.stats.logged += 1;
        self.stats.dropped.add(DropReason::Invalid, 1);
    }
}
