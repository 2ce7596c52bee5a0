//! The tabs of one origin: one sender elected with Web Locks, the others kept informed
//! over a BroadcastChannel, and the snapshot of storage a new sender starts from.

use std::rc::Rc;

use super::super::channel::{Channel, Message};
use super::super::leader;
use super::super::storage::Snapshot;
use super::super::Error;
use super::{Inner, Input};
use crate::core::Key;

/// How long after a tab says it opened or is closing the sender counts the tabs again.
const TAB_SETTLE_MS: u32 = 250;

impl Inner {
    /// Several tabs share one IndexedDB: elect one sender with Web Locks and keep the
    /// others informed over a BroadcastChannel. Without Web Locks every tab sends what it
    /// logged itself (see docs/behaviour.md: duplicates only for events stored as a tab opens).
    pub(super) fn coordinate_tabs(self: &Rc<Self>, storage_name: &str) {
        let leadership = self.request_leadership(false);
        if leadership.is_some() {
            self.core.borrow_mut().handle_leadership(self.now(), false);
        }
        self.sender_elected.set(leadership.is_some());
        *self.leadership.borrow_mut() = leadership;
        let weak = Rc::downgrade(self);
        let channel = Channel::open(&format!("evbuf:{storage_name}"), move |message| {
            if let Some(inner) = weak.upgrade() {
                inner.feed(Input::Heard(message));
            }
        });
        *self.channel.borrow_mut() = channel;
        self.broadcast(Message::Tab(true));
    }

    /// What another tab said.
    pub(super) fn heard(self: &Rc<Self>, message: Message) {
        let now = self.now();
        let leader = self.core.borrow().is_leader();
        let mut core = self.core.borrow_mut();
        match message {
            Message::Stored { first, last } if self.sender_elected.get() && leader => {
                drop(core);
                let storage = self.store.get();
                self.start(async move { Input::Loaded(storage.load_range(first, last).await) });
            }
            Message::Deleted(keys) => core.handle_removed_elsewhere(now, &keys),
            Message::Flush if leader => core.handle_flush_hint(now),
            Message::BackingOff(retry_at) => core.handle_sender_backing_off(now, retry_at),
            // A tab that says it opened will wait for the lock: believe it at once, as
            // this tab may close before a count would see the request. Then count, once
            // the new tab's request or a closing tab's release has settled.
            Message::Tab(opened) if leader => {
                if opened {
                    core.handle_other_tabs(now, true);
                }
                drop(core);
                self.count_other_tabs(TAB_SETTLE_MS);
            }
            Message::Tab(false) => core.handle_tab_closing(),
            Message::NewSender => core.handle_new_sender(),
            Message::HandOver { tab, lines } if leader => core.handle_adopt(now, tab, &lines),
            Message::Adopted { tab, keys } if tab == self.tab_id => {
                core.handle_handed_over(now, &keys)
            }
            _ => {}
        }
    }

    /// Hands the core a full read of storage with the backoff an earlier sender left,
    /// forgetting what other tabs deleted (the backoff goes first, so loaded events do not
    /// go out at once to a server that is down).
    pub(super) fn apply_snapshot(&self, snapshot: Result<Snapshot, Error>) {
        match snapshot {
            Ok(snapshot) => {
                let now = self.now();
                let mut core = self.core.borrow_mut();
                core.handle_backoff_restored(now, snapshot.backoff);
                core.handle_snapshot(now, snapshot.events, snapshot.below)
            }
            Err(err) => self.report(err),
        }
    }

    /// This tab became the sender, caught up on what the previous one left and other
    /// tabs wrote: it sends, and tells the tabs.
    pub(super) fn took_over(self: &Rc<Self>, snapshot: Result<Snapshot, Error>) {
        self.apply_snapshot(snapshot);
        self.core.borrow_mut().handle_leadership(self.now(), true);
        self.pump();
        self.broadcast(Message::NewSender);
        self.count_other_tabs(0);
    }

    /// Waits for the sender's lock (or, `if_free`, takes it only if no tab holds it);
    /// `None` without Web Locks.
    pub(super) fn request_leadership(self: &Rc<Self>, if_free: bool) -> Option<leader::Leadership> {
        let weak = Rc::downgrade(self);
        leader::request(&self.lock_name, if_free, move || {
            if let Some(inner) = weak.upgrade() {
                inner.feed(Input::Granted);
            }
        })
    }

    /// Tells the core, `after_ms` from now, whether another tab waits to take over
    /// sending: a sender that can be replaced does not post on the unload path.
    pub(super) fn count_other_tabs(self: &Rc<Self>, after_ms: u32) {
        let lock_name = self.lock_name.clone();
        self.start(async move {
            gloo_timers::future::TimeoutFuture::new(after_ms).await;
            Input::OtherTabs(leader::others_waiting(&lock_name).await)
        });
    }

    /// Tells the sender which keys are stored, one message per run of consecutive keys.
    pub(super) fn announce_stored(&self, keys: &[Key]) {
        let mut rest = keys;
        while let Some(&first) = rest.first() {
            let run = rest
                .windows(2)
                .take_while(|pair| pair[1] == pair[0] + 1)
                .count();
            self.broadcast(Message::Stored {
                first,
                last: rest[run],
            });
            rest = &rest[run + 1..];
        }
    }

    /// Takes the sender's lock, if no tab holds it once a closing tab has let it go.
    pub(super) fn lead_if_free_soon(self: &Rc<Self>) {
        self.start(async {
            gloo_timers::future::TimeoutFuture::new(TAB_SETTLE_MS).await;
            Input::LockMaybeFree
        });
    }

    pub(super) fn lead_if_free(self: &Rc<Self>) {
        if self.stopped.get() || self.core.borrow().is_leader() {
            return;
        }
        let leadership = self.request_leadership(true);
        *self.leadership.borrow_mut() = leadership;
    }

    pub(super) fn broadcast(&self, message: Message) {
        if let Some(channel) = &*self.channel.borrow() {
            channel.post(&message);
        }
    }
}
