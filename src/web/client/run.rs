//! The driver loop, in the shape of the core's: every JS callback (the timer, the page's
//! lifecycle, another tab's message, the sender's lock) and every operation's end (a
//! write, a delete, a load, a send, a lock query, a pause) becomes an [`Input`]; `feed`
//! hands it to the core and `pump` drains the core's actions, starts the operations they
//! ask for and arms the one timer. The operations under way are futures in one list,
//! polled from one task ([`Ops`]), each ending in the input it feeds back.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use js_sys::Math;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

use crate::core::{Action, Batch, Key, SendOutcome, StoredEvent};

use super::super::channel::Message;
use super::super::errors;
use super::super::storage::{Snapshot, WriteFailed};
use super::super::transport::{self, Mode};
use super::super::Error;
use super::Inner;

/// What reaches the loop from the drivers.
pub(super) enum Input {
    /// The timer reached the core's deadline.
    Timeout,
    /// The browser went online (`true`) or offline.
    Online(bool),
    /// A navigation started (`leaving`: for another page of this origin) or ended.
    Navigation { leaving: bool },
    /// The page was hidden; `closing` on `pagehide`.
    Hidden { closing: bool },
    /// The page is visible again.
    Shown,
    /// Another tab said something.
    Heard(Message),
    /// This tab was granted the sender's lock.
    Granted,
    /// The snapshot of storage a new sender starts from was read.
    SnapshotRead(Result<Snapshot, Error>),
    /// A write ended: the deletes it carried and the keys it gave its events.
    Written {
        deletes: Vec<Key>,
        result: Result<Vec<Key>, WriteFailed>,
    },
    /// A delete of its own ended.
    Deleted {
        keys: Vec<Key>,
        result: Result<(), Error>,
    },
    /// What another tab stored, read back.
    Loaded(Result<Vec<StoredEvent>, Error>),
    /// A send was answered, failed or timed out.
    Answered {
        batch: u64,
        mode: Mode,
        outcome: SendOutcome,
    },
    /// Whether another tab waits for the sender's lock.
    OtherTabs(bool),
    /// The pause before taking a lock a closing tab let go has passed.
    LockMaybeFree,
    /// The backoff was kept for the next page, or could not be.
    BackoffKept(Result<(), Error>),
}

/// An operation under way and the input it ends in.
type Op = Pin<Box<dyn Future<Output = Input>>>;

/// The operations under way, polled from one task: the task runs while any is under way
/// and ends with the last.
#[derive(Default)]
pub(super) struct Ops {
    under_way: RefCell<Vec<Op>>,
    /// The task's waker while it waits; `None` before its first poll.
    waker: RefCell<Option<Waker>>,
    task_running: Cell<bool>,
}

impl Inner {
    /// Starts `op`; its input is fed to the loop when it ends (never from within this
    /// call, so that no input arrives while the caller holds a borrow).
    pub(super) fn start(self: &Rc<Self>, op: impl Future<Output = Input> + 'static) {
        let ops = &self.ops;
        ops.under_way.borrow_mut().push(Box::pin(op));
        if let Some(waker) = &*ops.waker.borrow() {
            waker.wake_by_ref();
        }
        if !ops.task_running.replace(true) {
            let inner = self.clone();
            spawn_local(poll_fn(move |cx| inner.poll_ops(cx)));
        }
    }

    /// Polls every operation under way and feeds the inputs of those that ended, until
    /// none ends: feeding starts operations that must be polled to begin.
    fn poll_ops(self: &Rc<Self>, cx: &mut Context<'_>) -> Poll<()> {
        let ops = &self.ops;
        loop {
            // Out of the list while polled: feeding starts more.
            let mut polled = std::mem::take(&mut *ops.under_way.borrow_mut());
            let mut any_ended = false;
            polled.retain_mut(|op| match op.as_mut().poll(cx) {
                Poll::Ready(input) => {
                    any_ended = true;
                    // The operation let go of what it held as it ended (a write its
                    // events, which the core may now move back).
                    self.feed(input);
                    false
                }
                Poll::Pending => true,
            });
            let mut under_way = ops.under_way.borrow_mut();
            polled.append(&mut under_way);
            *under_way = polled;
            if !any_ended {
                break;
            }
        }
        if ops.under_way.borrow().is_empty() {
            ops.task_running.set(false);
            ops.waker.borrow_mut().take();
            return Poll::Ready(());
        }
        *ops.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Hands `input` to the core (or to the driver it concerns), then pumps.
    pub(super) fn feed(self: &Rc<Self>, input: Input) {
        let now = self.now();
        match input {
            Input::Timeout => {
                self.timer.borrow_mut().fired();
                self.core.borrow_mut().handle_timeout(now);
            }
            Input::Online(online) => self.core.borrow_mut().handle_online(now, online),
            Input::Navigation { leaving } => self.core.borrow_mut().handle_navigation(now, leaving),
            Input::Hidden { closing } => {
                if closing {
                    self.broadcast(Message::Tab(false));
                }
                self.core.borrow_mut().handle_page_hidden(now);
            }
            Input::Shown => self.core.borrow_mut().handle_page_visible(),
            Input::Heard(message) => self.heard(message),
            Input::Granted => {
                let storage = self.store.get();
                self.start(async move { Input::SnapshotRead(storage.load().await) });
            }
            Input::SnapshotRead(snapshot) => self.took_over(snapshot),
            Input::Written { deletes, result } => self.written(deletes, result),
            Input::Deleted { keys, result } => self.deleted(keys, result),
            Input::Loaded(Ok(events)) => self.core.borrow_mut().handle_loaded(now, events),
            Input::Answered {
                batch,
                mode: Mode::Normal,
                outcome,
            } => self
                .core
                .borrow_mut()
                .handle_send_result(now, batch, outcome, Math::random()),
            Input::Answered {
                batch,
                mode: Mode::Unload,
                outcome,
            } => self
                .core
                .borrow_mut()
                .handle_unload_result(now, batch, &outcome),
            Input::OtherTabs(alive) => self.core.borrow_mut().handle_other_tabs(now, alive),
            Input::LockMaybeFree => self.lead_if_free(),
            Input::BackoffKept(Ok(())) => {}
            Input::Loaded(Err(err)) | Input::BackoffKept(Err(err)) => self.report(err),
        }
        self.pump();
    }

    /// Drains the core's actions, executes them, and arms the timer.
    pub(super) fn pump(self: &Rc<Self>) {
        if self.withdrawn.get() {
            return;
        }
        loop {
            let action = self.core.borrow_mut().poll_action();
            let Some(action) = action else { break };
            self.execute(action);
        }
        if self.stopped.get() {
            return;
        }
        let deadline = self.core.borrow().poll_timeout();
        let weak: Weak<Inner> = Rc::downgrade(self);
        self.timer.borrow_mut().arm(deadline, self.now(), move || {
            if let Some(inner) = weak.upgrade() {
                inner.feed(Input::Timeout);
            }
        });
    }

    fn execute(self: &Rc<Self>, action: Action) {
        match action {
            Action::Persist(events) => self.persist(events),
            Action::Delete(keys) => self.delete_later(keys),
            Action::Send(batch) => self.send(batch, Mode::Normal),
            Action::SendUnload(batch) => self.send(batch, Mode::Unload),
            Action::Report(report) => self.report(errors::reported(&report)),
            Action::AskSenderToFlush => self.broadcast(Message::Flush),
            Action::AnnounceStored(keys) => self.announce_stored(&keys),
            Action::StepDown => {
                self.leadership.borrow_mut().take();
            }
            Action::LeadIfFree => self.lead_if_free_soon(),
            Action::HandOver(lines) => self.broadcast(Message::HandOver {
                tab: self.tab_id.clone(),
                lines,
            }),
            Action::ConfirmAdopted { tab, keys } => self.broadcast(Message::Adopted { tab, keys }),
            Action::RememberBackoff(backoff) => {
                if let Some((retry_at, _)) = backoff {
                    self.broadcast(Message::BackingOff(retry_at));
                }
                let storage = self.store.get();
                self.start(
                    async move { Input::BackoffKept(storage.remember_backoff(backoff).await) },
                );
            }
            Action::FlushSettled { waiter, result } => {
                let settled = {
                    let mut waiters = self.flush_waiters.borrow_mut();
                    let index = waiters.iter().position(|(w, _, _)| *w == waiter);
                    index.map(|i| waiters.swap_remove(i))
                };
                let Some((_, resolve, reject)) = settled else {
                    return;
                };
                let _ = match result {
                    Ok(()) => resolve.call0(&JsValue::NULL),
                    Err(err) => reject.call1(&JsValue::NULL, &Error::Flush(err).into()),
                };
            }
        }
    }

    fn send(self: &Rc<Self>, batch: Batch, mode: Mode) {
        if mode == Mode::Normal && self.leadership.borrow().is_some() {
            self.count_other_tabs(0);
        }
        let timeout_ms = self.core.borrow().config().send_timeout_ms;
        let inner = self.clone();
        self.start(async move {
            let outcome = transport::send(
                &inner.endpoint,
                inner.headers.as_ref(),
                &batch.body,
                mode,
                inner.gzip,
                timeout_ms,
            )
            .await;
            Input::Answered {
                batch: batch.id,
                mode,
                outcome,
            }
        });
    }
}
