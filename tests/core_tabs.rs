//! The tabs of one origin, one named test per decision: what a tab tells the sender it
//! stored, who may send while a tab keeps its events in memory, and how those events are
//! handed to the sender. (Which tab sends, and flushes across tabs: core_leadership.rs.)
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{wire, Key, MemoryStore, SendOutcome};
use sim::Sim;

/// A tab that does not send, sharing the sender's storage and collector.
fn follower() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.pump();
    follower
}

/// The "stored" broadcast: the sender loads from the shared storage the keys `from`
/// announced since the last call.
fn deliver_announced(from: &mut Sim, sender: &mut Sim) {
    let announced: Vec<Key> = std::mem::take(&mut from.announced);
    let events = from
        .store
        .load()
        .into_iter()
        .filter(|e| announced.contains(&e.key))
        .collect();
    sender.core.handle_loaded(sender.now, events);
    sender.pump();
}

/// The follower's keepalive posts reach the sender's collector (one server); their
/// answers come back to the follower as `outcome`.
fn answer_follower_posts(follower: &mut Sim, sender: &mut Sim, outcome: &SendOutcome) {
    let delivered = matches!(outcome, SendOutcome::Status { status: 200, .. });
    for batch in std::mem::take(&mut follower.unload) {
        if delivered {
            sender.collector.accept(&batch, true);
        }
        follower
            .core
            .handle_unload_result(follower.now, batch.id, outcome);
        follower.pump();
    }
}

#[test]
fn a_follower_announces_what_it_stored() {
    let mut follower = follower();
    follower.log_many(3);
    assert_eq!(follower.announced, [1, 2, 3]);
}

#[test]
fn the_sender_announces_nothing_it_stores_as_only_a_sender_loads_what_is_announced() {
    let mut sender = Sim::with_defaults();
    sender.log_many(3);
    assert!(sender.announced.is_empty());
    sender.hide(false, true); // its keepalive post failed: stored, free again
    assert!(sender.announced.is_empty());
    sender.core.handle_page_visible();
    sender.core.handle_leadership(sender.now, false);
    sender.log();
    assert_eq!(sender.announced, [4], "stepped down, it announces again");
}

#[test]
fn a_follower_hidden_while_its_write_is_out_keeps_what_it_posted_from_the_sender() {
    let mut sender = Sim::with_defaults();
    let mut follower = follower();
    follower.persist_at_once = false;
    let id = follower.log();
    assert_eq!(follower.post_on_hide(), 1, "the unstored event is posted");
    follower.complete_persist();
    assert!(
        follower.announced.is_empty(),
        "the post carries it: the sender must not send it before the answer"
    );
    deliver_announced(&mut follower, &mut sender);
    sender.flush();
    assert!(sender.sent.is_empty());
    // The post is acknowledged: the follower deletes the event itself.
    answer_follower_posts(&mut follower, &mut sender, &SendOutcome::status(200));
    assert!(follower.store.is_empty());
    let stats = follower.core.stats(follower.now);
    assert_eq!((stats.acknowledged, stats.queued), (1, 0));
    assert_eq!(sender.collector.acknowledged[&id], 1);
}

#[test]
fn a_follower_whose_post_fails_announces_what_it_carried() {
    let mut sender = Sim::with_defaults();
    let mut follower = follower();
    follower.persist_at_once = false;
    let id = follower.log();
    follower.post_on_hide();
    follower.complete_persist();
    answer_follower_posts(
        &mut follower,
        &mut sender,
        &SendOutcome::NetworkError("keepalive failed".into()),
    );
    assert_eq!(follower.announced, [1], "free again: the sender's to send");
    deliver_announced(&mut follower, &mut sender);
    sender.flush();
    sender.ok();
    assert_eq!(sender.collector.acknowledged[&id], 1);
}

#[test]
fn a_follower_whose_post_was_acknowledged_before_the_write_announces_nothing() {
    let mut sender = Sim::with_defaults();
    let mut follower = follower();
    follower.persist_at_once = false;
    follower.log();
    follower.post_on_hide();
    answer_follower_posts(&mut follower, &mut sender, &SendOutcome::status(200));
    follower.complete_persist();
    assert!(follower.announced.is_empty(), "deleted as it is stored");
    assert_eq!(follower.pending_deletes.len() + follower.store.len(), 0);
}

// ---- memory -------------------------------------------------------------------------

#[test]
fn a_tab_in_memory_announces_none_of_its_memory_keys() {
    let mut follower = follower();
    follower.log();
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = evbuf::core::MemoryStore::new(1_000);
    follower.log_many(2);
    assert_eq!(follower.announced, [1]);
}

#[test]
fn a_follower_falling_back_to_memory_stops_waiting_to_send() {
    let mut follower = follower();
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.pump();
    assert_eq!(follower.stepped_down, 1, "it must not be granted the role");
    assert!(!follower.core.is_leader());
}

#[test]
fn a_follower_in_memory_asks_for_the_role_only_if_free_when_a_tab_closes() {
    let mut reader = follower();
    reader.core.handle_tab_closing();
    reader.pump();
    assert_eq!(
        reader.asked_to_lead, 0,
        "a tab that can read storage waits for it"
    );
    let mut in_memory = follower();
    in_memory.core.handle_memory_fallback(in_memory.now, 1_000);
    in_memory.core.handle_tab_closing();
    in_memory.pump();
    assert_eq!(in_memory.asked_to_lead, 1, "it may be the last tab left");
}

#[test]
fn a_sender_in_memory_steps_down_when_a_tab_that_can_store_waits() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_memory_fallback(sim.now, 1_000);
    sim.pump();
    assert_eq!(sim.stepped_down, 0, "alone: it keeps sending from memory");
    sim.core.handle_other_tabs(sim.now, true);
    sim.pump();
    assert_eq!(sim.stepped_down, 1);
    assert!(!sim.core.is_leader());
}

#[test]
fn a_sender_in_memory_steps_down_while_another_tab_can_send() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_other_tabs(sim.now, true);
    sim.log();
    sim.core.handle_memory_fallback(sim.now, 1_000);
    sim.pump();
    assert_eq!(sim.stepped_down, 1);
    assert!(!sim.core.stats(sim.now).leader);
    // The last tab keeps sending from memory.
    let mut alone = Sim::with_defaults();
    alone.core.handle_memory_fallback(alone.now, 1_000);
    alone.pump();
    assert_eq!(alone.stepped_down, 0);
    assert!(alone.core.stats(alone.now).leader);
}

// ---- handing events kept in memory to the sender ------------------------------------

/// A tab that does not send, whose storage failed and keeps events in memory from key 1,000.
fn follower_in_memory() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = evbuf::core::MemoryStore::new(1_000);
    follower
}

#[test]
fn a_follower_in_memory_hands_its_events_to_the_sender() {
    let mut sender = Sim::with_defaults();
    let mut follower = follower_in_memory();
    let ids = follower.log_many(5);
    let lines: Vec<String> = follower.handed.drain(..).flatten().collect();
    assert_eq!(lines.len(), 5, "offered to the sender as they are stored");
    sender.core.handle_adopt(sender.now, "tab-2".into(), &lines);
    sender.pump();
    let (tab, keys) = sender.confirmed.pop().expect("confirmed once stored");
    assert_eq!(tab, "tab-2");
    assert_eq!(keys, (1_000..1_005).collect::<Vec<_>>());
    follower.core.handle_handed_over(follower.now, &keys);
    follower.pump();
    assert!(follower.store.is_empty());
    assert_eq!(follower.core.stats(follower.now).handed_over, 5);
    let stored = sender.store.load();
    let follower_ts = follower.now;
    assert!(
        stored.iter().all(|e| e.ts == follower_ts),
        "timestamps kept"
    );
    sender.advance(3_000);
    sender.ok();
    assert!(ids.iter().all(|id| sender.collector.acknowledged[id] == 1));
}

#[test]
fn a_follower_in_memory_offers_again_to_a_new_sender() {
    let mut follower = follower_in_memory();
    follower.log_many(3);
    follower.handed.clear(); // the sender closed before storing them
    follower.core.handle_new_sender();
    follower.pump();
    assert_eq!(follower.handed.len(), 1);
    assert_eq!(follower.handed[0].len(), 3, "all in one offer");
}

#[test]
fn a_flush_in_the_sender_waits_for_the_events_it_adopted() {
    let mut follower = follower_in_memory();
    follower.log_many(2);
    let lines: Vec<String> = follower.handed.drain(..).flatten().collect();
    let mut sender = Sim::with_defaults();
    sender.core.handle_online(sender.now, false); // the adopted events stay queued
    sender.core.handle_adopt(sender.now, "tab-2".into(), &lines);
    sender.pump();
    assert_eq!(sender.core.stats(sender.now).queued, 2);
    sender.core.handle_online(sender.now, true);
    sender.pump();
    let waiter = sender.flush();
    assert_eq!(sender.settled(waiter), None);
    sender.advance(3_000);
    while sender.in_flight.is_some() {
        sender.ok();
    }
    assert_eq!(sender.settled(waiter), Some(&Ok(())));
}

/// A tab that does not send, with events 1 and 2 in IndexedDB and 1000 and 1001 in
/// memory (its storage failed in between).
fn follower_with_stored_and_memory_events() -> Sim {
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.log_many(2);
    follower.core.handle_memory_fallback(follower.now, 1_000);
    follower.store = MemoryStore::new(1_000);
    follower.log_many(2);
    follower.handed.clear();
    assert_eq!(
        follower.core.queued_keys().collect::<Vec<_>>(),
        vec![1, 2, 1_000, 1_001]
    );
    follower
}

#[test]
fn a_follower_offers_a_new_sender_only_its_memory_events() {
    let mut follower = follower_with_stored_and_memory_events();
    follower.core.handle_new_sender();
    follower.pump();
    let offered: Vec<u64> = follower
        .handed
        .concat()
        .iter()
        .map(|line| wire::parse_keyed(line).unwrap().0)
        .collect();
    assert_eq!(offered, vec![1_000, 1_001], "1 and 2 are in IndexedDB");
}

#[test]
fn a_handover_confirmation_never_forgets_an_event_stored_in_indexeddb() {
    let mut follower = follower_with_stored_and_memory_events();
    follower.core.handle_handed_over(follower.now, &[1, 1_000]);
    follower.pump();
    assert_eq!(
        follower.core.queued_keys().collect::<Vec<_>>(),
        vec![1, 2, 1_001]
    );
    assert_eq!(follower.core.stats(follower.now).handed_over, 1);
}

#[test]
fn another_tabs_delete_never_hits_an_event_held_in_memory_under_the_same_key() {
    let mut follower = follower_in_memory();
    follower.log_many(3);
    // The sender acknowledged IndexedDB events 1000..1002 that other tabs wrote.
    follower
        .core
        .handle_removed_elsewhere(follower.now, &[1_000, 1_001, 1_002]);
    follower.pump();
    assert_eq!(follower.core.stats(follower.now).queued, 3);
    assert_eq!(follower.store.len(), 3);
}
