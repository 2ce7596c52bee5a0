//! The tabs of one origin: one sender elected with Web Locks, the others kept informed
//! over a BroadcastChannel, and the snapshot of storage a new sender starts from.

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;

use super::super::channel::{Channel, Message};
use super::super::leader;
use super::Inner;
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
        let shared = leadership.is_some();
        *self.leadership.borrow_mut() = leadership;
        let weak = Rc::downgrade(self);
        let channel = Channel::open(&format!("evbuf:{storage_name}"), move |message| {
            let Some(inner) = weak.upgrade() else { return };
            let leader = inner.core.borrow().is_leader();
            match message {
                Message::Stored { first, last } if shared && leader => {
                    spawn_local(async move {
                        match inner.store.get().load_range(first, last).await {
                            Ok(events) => {
                                inner.core.borrow_mut().handle_loaded(inner.now(), events)
                            }
                            Err(err) => inner.report(err),
                        }
                        inner.pump();
                    });
                }
                Message::Deleted(keys) => {
                    inner
                        .core
                        .borrow_mut()
                        .handle_removed_elsewhere(inner.now(), &keys);
                    inner.pump();
                }
                Message::Flush if leader => {
                    inner.core.borrow_mut().handle_flush_hint(inner.now());
                    inner.pump();
                }
                Message::BackingOff(retry_at) => {
                    inner
                        .core
                        .borrow_mut()
                        .handle_sender_backing_off(inner.now(), retry_at);
                    inner.pump();
                }
                // A tab that says it opened will wait for the lock: believe it at once, as
                // this tab may close before a count would see the request. Then count, once
                // the new tab's request or a closing tab's release has settled.
                Message::Tab(opened) if leader => {
                    if opened {
                        inner.core.borrow_mut().handle_other_tabs(inner.now(), true);
                        inner.pump();
                    }
                    inner.count_other_tabs(TAB_SETTLE_MS);
                }
                Message::Tab(false) => {
                    inner.core.borrow_mut().handle_tab_closing();
                    inner.pump();
                }
                Message::NewSender => {
                    inner.core.borrow_mut().handle_new_sender();
                    inner.pump();
                }
                Message::HandOver { tab, lines } if leader => {
                    inner
                        .core
                        .borrow_mut()
                        .handle_adopt(inner.now(), tab, &lines);
                    inner.pump();
                }
                Message::Adopted { tab, keys } if tab == inner.tab_id => {
                    inner
                        .core
                        .borrow_mut()
                        .handle_handed_over(inner.now(), &keys);
                    inner.pump();
                }
                _ => {}
            }
        });
        *self.channel.borrow_mut() = channel;
        self.broadcast(Message::Tab(true));
    }

    /// Reads all of storage with the backoff an earlier sender left, forgetting what
    /// other tabs deleted (the backoff goes to the core first, so loaded events do not go
    /// out at once to a server that is down).
    pub(super) async fn load_snapshot(self: &Rc<Self>) {
        match self.store.get().load().await {
            Ok(snapshot) => {
                let now = self.now();
                let mut core = self.core.borrow_mut();
                core.handle_backoff_restored(now, snapshot.backoff);
                core.handle_snapshot(now, snapshot.events, snapshot.below)
            }
            Err(err) => self.report(err),
        }
    }

    /// Waits for the sender's lock (or, `if_free`, takes it only if no tab holds it);
    /// `None` without Web Locks.
    pub(super) fn request_leadership(self: &Rc<Self>, if_free: bool) -> Option<leader::Leadership> {
        let weak = Rc::downgrade(self);
        leader::request(&self.lock_name, if_free, move || {
            let Some(inner) = weak.upgrade() else { return };
            spawn_local(async move {
                // Catch up on what the previous sender left and other tabs wrote.
                inner.load_snapshot().await;
                inner.core.borrow_mut().handle_leadership(inner.now(), true);
                inner.pump();
                inner.broadcast(Message::NewSender);
                inner.count_other_tabs(0);
            });
        })
    }

    /// Tells the core, `after_ms` from now, whether another tab waits to take over
    /// sending: a sender that can be replaced does not post on the unload path.
    pub(super) fn count_other_tabs(self: &Rc<Self>, after_ms: u32) {
        let weak = Rc::downgrade(self);
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(after_ms).await;
            let Some(inner) = weak.upgrade() else { return };
            let alive = leader::others_waiting(&inner.lock_name).await;
            inner
                .core
                .borrow_mut()
                .handle_other_tabs(inner.now(), alive);
            inner.pump();
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
    pub(super) fn lead_if_free(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(TAB_SETTLE_MS).await;
            let Some(inner) = weak.upgrade() else { return };
            if inner.stopped.get() || inner.core.borrow().is_leader() {
                return;
            }
            let leadership = inner.request_leadership(true);
            *inner.leadership.borrow_mut() = leadership;
        });
    }

    pub(super) fn broadcast(&self, message: Message) {
        if let Some(channel) = &*self.channel.borrow() {
            channel.post(&message);
        }
    }
}
