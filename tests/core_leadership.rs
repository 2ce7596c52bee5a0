//! The sending tab, one named test per decision: only the sender sends, a flush in another
//! tab asks it and waits for its deletes or its backoff, and what a tab keeps or drops as it
//! takes over the role or gives it up.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{Action, Config, Core, FlushError, SendOutcome};
use sim::{batch_ids, status, Sim};

// ---- only the sender sends ----------------------------------------------------------

#[test]
fn a_tab_that_is_not_the_sender_stores_but_does_not_send() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(60);
    sim.advance(10_000);
    assert!(sim.sent.is_empty());
    assert_eq!(sim.store.len(), 60);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(sim.sent.len(), 1);
}

/// Executes the sending tab's actions as its driver would, against a collector that
/// answers 200 at once; returns whether there were any.
fn run_sender(
    sender: &mut Core,
    other: &mut Core,
    store: &mut evbuf::core::MemoryStore,
    delivered: &mut Vec<String>,
    now: u64,
) -> bool {
    let mut busy = false;
    while let Some(action) = sender.poll_action() {
        busy = true;
        match action {
            Action::Persist(events) => {
                let keys = store.put_all(&events);
                sender.handle_persisted(now, &keys);
            }
            Action::Send(batch) => {
                delivered.extend(batch_ids(&batch));
                sender.handle_send_result(now, batch.id, SendOutcome::status(200), 0.5);
            }
            Action::Delete(keys) => {
                store.delete(&keys);
                sender.handle_deleted(now, keys.len());
                // The "deleted" broadcast.
                other.handle_removed_elsewhere(now, &keys);
            }
            _ => {}
        }
    }
    busy
}

#[test]
fn two_tabs_sharing_storage_deliver_every_event_exactly_once() {
    use evbuf::core::MemoryStore;
    let config = Config::default();
    let mut store = MemoryStore::new(1);
    let mut sender = Core::new(config.clone(), sim::DEVICE.into(), "s").unwrap();
    let mut other = Core::new(config, sim::DEVICE.into(), "s").unwrap();
    other.handle_leadership(0, false);
    let mut delivered: Vec<String> = Vec::new();
    let mut now = 0;
    for round in 0..40u64 {
        now += 100;
        for (tab, core) in [(0, &mut sender), (1, &mut other)] {
            for i in 0..25 {
                core.handle_log(
                    now,
                    format!("t{tab}-r{round}-{i}"),
                    round * 25 + i,
                    "{}".into(),
                )
                .unwrap();
            }
        }
        // Execute both tabs' actions until quiet, as their drivers would.
        loop {
            let mut busy = false;
            while let Some(action) = other.poll_action() {
                busy = true;
                match action {
                    Action::Persist(events) => {
                        let keys = store.put_all(&events);
                        other.handle_persisted(now, &keys);
                        // The "stored" broadcast: the sender reads what the other wrote.
                        sender.handle_loaded(now, store.load());
                    }
                    Action::Send(_) | Action::SendUnload(_) => panic!("only the sender sends"),
                    _ => {}
                }
            }
            busy |= run_sender(&mut sender, &mut other, &mut store, &mut delivered, now);
            if !busy {
                break;
            }
        }
        sender.handle_timeout(now + 3_000);
    }
    sender.handle_flush(now, 1);
    run_sender(&mut sender, &mut other, &mut store, &mut delivered, now);
    let distinct: std::collections::BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(distinct.len(), 2_000);
    assert_eq!(delivered.len(), 2_000, "no duplicates between tabs");
    assert_eq!(
        other.stats(now).queued,
        0,
        "the other tab forgot what the sender deleted"
    );
}

// ---- a flush in a tab that does not send --------------------------------------------

#[test]
fn a_flush_in_a_tab_that_does_not_send_asks_the_sender_and_waits_for_its_deletes() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(3);
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert_eq!(sim.settled(waiter), None);
    let keys: Vec<u64> = sim.store.load().iter().map(|e| e.key).collect();
    sim.core.handle_removed_elsewhere(sim.now, &keys);
    sim.pump();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
    assert_eq!(sim.core.stats(sim.now).queued, 0);
    assert_eq!(
        sim.core.stats(sim.now).acknowledged,
        0,
        "counted by the sender, not here"
    );
}

#[test]
fn a_follower_flush_settles_with_the_senders_backoff() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert!(sim.settled(waiter).is_none());
    sim.core.handle_sender_backing_off(sim.now, sim.now + 8_000);
    sim.pump();
    assert_eq!(
        sim.settled(waiter),
        Some(&Err(FlushError::BackingOff {
            retry_at: sim.now + 8_000
        }))
    );
}

#[test]
fn only_a_tab_that_does_not_send_settles_its_flushes_with_the_senders_backoff() {
    // The sender itself ignores the announcement (it is its own).
    let mut sender = Sim::with_defaults();
    sender.log();
    let waiter = sender.flush();
    sender
        .core
        .handle_sender_backing_off(sender.now, sender.now + 5_000);
    sender.pump();
    assert_eq!(sender.settled(waiter), None);
    // A follower ignores a backoff that has already ended, even at this very moment.
    let mut follower = Sim::with_defaults();
    follower.core.handle_leadership(follower.now, false);
    follower.log();
    let waiter = follower.flush();
    for retry_at in [follower.now - 1, follower.now] {
        follower
            .core
            .handle_sender_backing_off(follower.now, retry_at);
        follower.pump();
        assert_eq!(follower.settled(waiter), None, "{retry_at}");
    }
    follower
        .core
        .handle_sender_backing_off(follower.now, follower.now + 1);
    follower.pump();
    assert_eq!(
        follower.settled(waiter),
        Some(&Err(FlushError::BackingOff {
            retry_at: follower.now + 1
        }))
    );
}

#[test]
fn a_follower_flush_gives_up_when_the_sender_stays_silent() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    let patience = sim.config.send_timeout_ms + sim.config.flush_interval_ms;
    sim.advance(patience - 1);
    assert!(sim.settled(waiter).is_none());
    sim.advance(1);
    assert!(matches!(
        sim.settled(waiter),
        Some(Err(FlushError::SenderSilent { .. }))
    ));
}

#[test]
fn a_sender_asked_to_flush_while_backing_off_announces_its_backoff() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(status(503));
    let remembered = sim.remembered_backoff;
    sim.remembered_backoff = None;
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.remembered_backoff, remembered);
}

// ---- the role changing hands --------------------------------------------------------

#[test]
fn a_new_sender_forgets_what_the_old_one_acknowledged() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(5);
    // The old sender delivered and deleted keys 1-3; this tab missed the broadcast.
    sim.store.delete(&[1, 2, 3]);
    let snapshot = sim.store.load();
    sim.core.handle_snapshot(sim.now, snapshot, 6);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    let sent = sim.in_flight.as_ref().unwrap();
    assert_eq!(
        sent.keys,
        vec![4, 5],
        "never resends what another tab acknowledged"
    );
}

#[test]
fn a_tab_taking_over_drops_a_backoff_the_last_sender_ended() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    // Read as the page started, while the old sender was backing off.
    sim.core
        .handle_backoff_restored(sim.now, Some((sim.now + 60_000, 4)));
    sim.log();
    sim.advance(5_000);
    // The old sender recovered and closed; this tab takes over and reads storage again.
    sim.core.handle_backoff_restored(sim.now, None);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    let stats = sim.core.stats(sim.now);
    assert_eq!((stats.retry_at, stats.backoff_attempt), (None, 0));
    assert_eq!(sim.sent.len(), 1, "sends at once: its interval is past");
}

/// A tab that does not send, with a flush waiting and a backoff read from storage that
/// ends `ends_in` ms from now.
fn follower_waiting_with_backoff(ends_in: u64) -> (Sim, u64) {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log();
    let waiter = sim.flush();
    sim.core
        .handle_backoff_restored(sim.now, Some((sim.now + ends_in, 1)));
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    (sim, waiter)
}

#[test]
fn a_tab_becoming_the_sender_while_backing_off_settles_waiting_flushes_with_the_backoff() {
    let (mut sim, waiter) = follower_waiting_with_backoff(5_000);
    let retry_at = sim.now + 5_000;
    sim.core.handle_leadership(sim.now, false); // told again: still not the sender
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(
        sim.settled(waiter),
        Some(&Err(FlushError::BackingOff { retry_at }))
    );
    assert!(sim.sent.is_empty());
}

#[test]
fn a_tab_becoming_the_sender_as_the_backoff_ends_sends_for_the_waiting_flush() {
    let (mut sim, waiter) = follower_waiting_with_backoff(5_000);
    sim.now += 5_000;
    sim.core.handle_leadership(sim.now, true);
    sim.pump();
    assert_eq!(sim.settled(waiter), None);
    assert_eq!(sim.sent.len(), 1);
    sim.ok();
    assert_eq!(sim.settled(waiter), Some(&Ok(())));
}

#[test]
fn a_tab_that_stopped_sending_waits_for_the_sender_instead_of_its_own_old_backoff() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    assert!(sim.core.stats(sim.now).retry_at.is_some());
    sim.core.handle_leadership(sim.now, false);
    sim.pump();
    let waiter = sim.flush();
    assert_eq!(sim.asked_sender, 1);
    assert_eq!(sim.settled(waiter), None, "it waits for the sender");
    let patience = sim.config.send_timeout_ms + sim.config.flush_interval_ms;
    sim.advance(patience);
    assert!(matches!(
        sim.settled(waiter),
        Some(Err(FlushError::SenderSilent { waited_ms })) if *waited_ms == patience
    ));
}

#[test]
fn a_tab_that_stopped_sending_does_not_announce_its_old_backoff_on_a_hint() {
    let mut sim = Sim::with_defaults();
    sim.log();
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    sim.core.handle_leadership(sim.now, false);
    sim.pump();
    // Announcing it would overwrite what the new sender remembers.
    sim.remembered_backoff = None;
    sim.core.handle_flush_hint(sim.now);
    sim.pump();
    assert_eq!(sim.remembered_backoff, None);
}
