//! Storage as the core sees it, one named test per decision: writes (one at a time, retried
//! when they fail), events sent only once stored, deletes that wait for a write, what a page
//! loads from an earlier one, snapshots, and the keys of the memory store.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{Action, Config, Core, MemoryStore, NewEvent, Report};
use sim::{actions, batch_ids, stored, Sim, DEVICE, T0};

// ---- writes -------------------------------------------------------------------------

#[test]
fn logs_made_while_a_write_is_pending_go_to_storage_in_one_write() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log_many(10);
    sim.complete_persist(); // the first log's write
    sim.complete_persist(); // the other nine together
    assert_eq!(sim.store.len(), 10);
    assert_eq!(sim.core.stats(sim.now).persisted, 10);
}

#[test]
fn events_are_not_sent_until_they_are_stored() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log();
    sim.advance(10_000);
    assert!(sim.sent.is_empty());
    sim.complete_persist();
    sim.advance(3_000);
    assert_eq!(sim.sent.len(), 1);
}

#[test]
fn a_failed_write_is_handed_to_storage_again() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    let id = sim.log();
    sim.core
        .handle_persist_failed(sim.now, "QuotaExceededError".into());
    let mut actions = Vec::new();
    while let Some(action) = sim.core.poll_action() {
        actions.push(action);
    }
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Persist(events) if events[0].id == id)),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| matches!(a,
        Action::Report(r @ Report::StorageFailed { .. }) if r.to_string().contains("QuotaExceeded"))));
}

#[test]
fn no_send_starts_while_an_acknowledged_batch_is_still_stored() {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    sim.log_many(150);
    sim.complete_persist(); // the first event
    sim.complete_persist(); // the other 149: a full batch goes out at once
    assert_eq!(sim.sent.len(), 1);
    sim.log(); // a write starts: the delete of the next acknowledgement waits for it
    sim.ok();
    assert_eq!(sim.pending_deletes.len(), 100);
    sim.advance(10_000);
    assert_eq!(
        sim.sent.len(),
        1,
        "a kill now would resend one batch, not two"
    );
    sim.complete_persist(); // the write takes the deletes with it
    assert!(sim.pending_deletes.is_empty());
    assert_eq!(sim.sent.len(), 2);
}

// ---- loading and snapshots ----------------------------------------------------------

#[test]
fn events_left_by_an_earlier_page_go_out_with_the_next_flush() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(4);
    sim.crash_and_reload(false);
    assert_eq!(sim.core.stats(sim.now).loaded, 4);
    sim.advance(3_000);
    assert_eq!(batch_ids(&sim.sent[0]), ids);
    sim.ok();
    assert!(sim.store.is_empty());
}

#[test]
fn loading_a_key_already_known_is_ignored() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    let again = sim.store.load();
    sim.core.handle_loaded(sim.now, again);
    assert_eq!(sim.core.stats(sim.now).queued, 3);
}

#[test]
fn each_event_loaded_from_storage_is_counted_once() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(T0, vec![stored(1), stored(2), stored(3)]);
    core.handle_loaded(T0, vec![stored(3), stored(4)]);
    assert_eq!(core.stats(T0).loaded, 4);
}

#[test]
fn a_snapshot_forgets_only_missing_keys_below_its_mark() {
    let mut core = Core::new(Config::default(), DEVICE.into(), "s").unwrap();
    core.handle_loaded(
        T0,
        vec![stored(1), stored(2), stored(3), stored(5), stored(6)],
    );
    actions(&mut core);
    // Taken when keys below 5 had been assigned: 2 is gone (another tab acknowledged it),
    // 5 was assigned after the read (it is not in it, but is not gone), 6 is read.
    core.handle_snapshot(T0, vec![stored(1), stored(3), stored(6)], 5);
    assert_eq!(core.queued_keys().collect::<Vec<_>>(), vec![1, 3, 5, 6]);
    assert_eq!(
        core.stats(T0).loaded,
        5,
        "keys already known are not loaded again"
    );
    // What is left goes out at once (an earlier page left it).
    assert!(
        actions(&mut core)
            .iter()
            .all(|action| matches!(action, Action::Send(_))),
        "forgotten, not deleted nor reported"
    );
}

// ---- the memory store ---------------------------------------------------------------

#[test]
fn a_memory_store_hands_out_keys_from_its_first_key_on() {
    let mut store = MemoryStore::new(1_000);
    assert_eq!(store.next_key(), 1_000);
    let new = |ticket| NewEvent {
        ticket,
        id: format!("e{ticket}"),
        session: "s".into(),
        seq: ticket,
        ts: T0,
        payload: "{}".into(),
    };
    assert_eq!(store.put_all(&[new(1), new(2)]), vec![1_000, 1_001]);
    assert_eq!(store.next_key(), 1_002);
    assert_eq!(MemoryStore::new(0).next_key(), 1, "keys start at 1");
}
