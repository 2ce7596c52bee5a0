//! The unload path, one named test per decision: keepalive posts as the page hides or
//! closes, within the budget, what they carry and their answers; and the events whose
//! write has not completed, which go out too (a closing page may never see it complete).
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{Config, SendOutcome};
use sim::{batch_ids, Sim};

// ---- stored events ----------------------------------------------------------------

#[test]
fn hiding_the_page_sends_what_is_stored_within_the_keepalive_budget() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false); // nothing goes out on the normal path
    sim.core.handle_online(sim.now, true);
    sim.pump();
    let ids: Vec<String> = (0..200).map(|_| sim.log_sized(900).unwrap()).collect();
    // 200 events of ~1 kB: the normal path has one batch in flight, the rest is stored.
    sim.core.handle_page_hidden(sim.now);
    sim.pump();
    let total: usize = sim.unload.iter().map(|b| b.body.len()).sum();
    assert!(total <= 64 * 1024, "{total} bytes of keepalive bodies");
    assert!(sim.unload.len() >= 2, "a budget's worth goes out in chunks");
    let in_flight = batch_ids(sim.in_flight.as_ref().expect("a normal send is out"));
    let first = batch_ids(&sim.unload[0]);
    assert_eq!(
        first[0],
        ids[in_flight.len()],
        "oldest first, after those in flight"
    );
    assert!(sim
        .unload
        .iter()
        .flat_map(batch_ids)
        .all(|id| !in_flight.contains(&id)));
    // A second hide sends nothing that an earlier post carries.
    let count = sim.unload.len();
    sim.core.handle_page_hidden(sim.now);
    sim.pump();
    assert_eq!(sim.unload.len(), count);
    // The events stay stored: no answer has acknowledged them.
    assert_eq!(sim.store.len(), 200);
}

#[test]
fn an_answered_unload_send_deletes_its_events() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    assert_eq!(sim.hide(true, true), 1);
    assert!(sim.store.is_empty());
    assert_eq!(sim.core.stats(sim.now).acknowledged, 5);
    assert!(ids.iter().all(|id| sim.collector.acknowledged[id] == 1));
    sim.advance(10_000);
    assert!(sim.sent.is_empty(), "nothing is left to send");
}

#[test]
fn an_unanswered_unload_send_is_sent_again_by_the_next_page() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    sim.hide(true, false);
    sim.crash_and_reload(false);
    sim.advance(3_000);
    sim.ok();
    assert!(
        ids.iter().all(|id| sim.collector.acknowledged[id] == 2),
        "at least once; the server dedups"
    );
}

#[test]
fn a_tab_that_is_not_the_sender_sends_nothing_on_hide() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.log_many(5);
    assert_eq!(sim.hide(true, true), 0);
}

#[test]
fn a_hide_while_a_send_is_out_posts_only_what_it_does_not_carry() {
    let mut sim = Sim::new(Config {
        max_buffer_size: 10,
        ..Config::default()
    });
    sim.log_many(10); // the early flush sends these ten
    let in_flight = batch_ids(sim.in_flight.as_ref().expect("sent"));
    let later = sim.log_many(5);
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(batch_ids(&sim.unload[0]), later);
    // The normal send's answer comes after the hide; nothing was posted twice.
    sim.ok();
    sim.answer_unload(true, true);
    assert_eq!(sim.collector.distinct(), 15);
    assert_eq!(sim.collector.duplicates(), 0);
    assert!(in_flight
        .iter()
        .all(|id| sim.collector.acknowledged[id] == 1));
    assert!(sim.store.is_empty());
}

#[test]
fn events_a_keepalive_post_carries_are_not_sent_again_before_its_answer() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    assert_eq!(sim.post_on_hide(), 1);
    sim.advance(10_000);
    assert!(
        sim.sent.is_empty(),
        "the timer leaves them to the keepalive answer"
    );
    sim.answer_unload(true, true);
    assert!(sim.store.is_empty());
    assert!(ids.iter().all(|id| sim.collector.acknowledged[id] == 1));
}

#[test]
fn a_keepalive_post_that_fails_leaves_its_events_to_the_next_send() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.post_on_hide();
    sim.answer_unload(false, true); // the page lives, the post failed
    sim.advance(3_000);
    assert_eq!(batch_ids(&sim.sent[0]).len(), 5);
    sim.ok();
    assert!(sim.store.is_empty());
}

#[test]
fn a_later_hide_posts_what_was_logged_since() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    assert_eq!(sim.post_on_hide(), 1);
    sim.core.handle_page_visible(); // a tab switch and back
    let since = sim.log_many(3);
    assert_eq!(sim.post_on_hide(), 1, "the next hide, or pagehide");
    assert_eq!(batch_ids(&sim.unload[1]), since);
}

#[test]
fn tab_switches_with_slow_answers_send_each_event_once() {
    let mut sim = Sim::with_defaults();
    for _ in 0..40 {
        sim.log_many(45); // 1.5 s at 30/s
        sim.post_on_hide();
        sim.log_many(5); // posted at once while hidden
        sim.advance(400);
        if sim.in_flight.is_some() {
            sim.ok();
        }
        sim.answer_unload(true, true);
        sim.core.handle_page_visible();
        sim.advance(1_100);
        if sim.in_flight.is_some() {
            sim.ok();
        }
    }
    sim.advance(3_000);
    if sim.in_flight.is_some() {
        sim.ok();
    }
    assert_eq!(sim.collector.distinct(), 2_000);
    assert_eq!(sim.collector.duplicates(), 0);
}

#[test]
fn a_sender_another_tab_can_replace_posts_nothing_on_hide() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.core.handle_other_tabs(sim.now, true);
    assert_eq!(sim.post_on_hide(), 0);
    sim.core.handle_other_tabs(sim.now, false);
    assert_eq!(sim.post_on_hide(), 1, "the last tab posts");
}

// ---- events whose write has not completed ------------------------------------------

/// A sim whose writes wait for `complete_persist`, with `n` events logged into one write.
fn writing(n: usize) -> (Sim, Vec<String>) {
    let mut sim = Sim::with_defaults();
    sim.persist_at_once = false;
    let ids = sim.log_many(n);
    (sim, ids)
}

/// Completes the write out and every one after it.
fn finish_writes(sim: &mut Sim) {
    sim.persist_at_once = true;
    sim.complete_persist_if_pending();
}

#[test]
fn a_page_closed_while_its_write_is_out_posts_those_events() {
    let (mut sim, ids) = writing(5);
    let later = sim.log_many(3); // waiting behind the write
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(
        batch_ids(&sim.unload[0]),
        [ids.clone(), later.clone()].concat()
    );
    // The page is gone before the write completes: the write is lost, the post got there.
    sim.crash_and_reload(true);
    assert!(sim.store.is_empty());
    assert!(ids
        .iter()
        .chain(&later)
        .all(|id| sim.collector.acknowledged[id] == 1));
}

#[test]
fn a_tab_that_does_not_send_posts_its_unstored_events_but_not_its_stored_ones() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_leadership(sim.now, false);
    sim.pump();
    sim.log_many(2); // stored: the sending tab reads them from storage
    sim.persist_at_once = false;
    let writing = sim.log_many(3);
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(batch_ids(&sim.unload[0]), writing);
    // So does a sender that another tab could replace.
    let mut sim = Sim::with_defaults();
    sim.core.handle_other_tabs(sim.now, true);
    sim.persist_at_once = false;
    let writing = sim.log_many(3);
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(batch_ids(&sim.unload[0]), writing);
}

#[test]
fn unstored_events_go_in_a_post_before_the_stored_ones() {
    let mut sim = Sim::with_defaults();
    let stored = sim.log_many(2);
    sim.persist_at_once = false;
    let writing = sim.log_many(2);
    assert_eq!(sim.post_on_hide(), 2);
    assert_eq!(batch_ids(&sim.unload[0]), writing);
    assert_eq!(batch_ids(&sim.unload[1]), stored);
}

#[test]
fn a_posted_event_stored_later_is_carried_by_the_post_until_its_answer() {
    let (mut sim, ids) = writing(5);
    sim.post_on_hide();
    assert_eq!(sim.post_on_hide(), 0, "a second hide posts nothing again");
    finish_writes(&mut sim); // the page lived on
    sim.advance(10_000);
    assert!(sim.sent.is_empty(), "left to the keepalive answer");
    sim.answer_unload(true, true);
    assert!(sim.store.is_empty(), "its 2xx acknowledged them");
    assert!(ids.iter().all(|id| sim.collector.acknowledged[id] == 1));
    assert_eq!(sim.core.stats(sim.now).acknowledged, 5);
}

#[test]
fn a_2xx_that_comes_before_the_write_completes_deletes_the_events_once_stored() {
    let (mut sim, ids) = writing(5);
    sim.hide(true, true);
    assert_eq!(sim.store.len(), 0, "not stored yet");
    finish_writes(&mut sim);
    assert!(sim.store.is_empty(), "deleted as they were stored");
    sim.advance(10_000);
    assert!(sim.sent.is_empty(), "never sent again");
    assert!(ids.iter().all(|id| sim.collector.acknowledged[id] == 1));
    assert_eq!(sim.core.stats(sim.now).acknowledged, 5);
}

#[test]
fn a_failed_post_of_unstored_events_leaves_them_to_the_next_send() {
    let (mut sim, ids) = writing(5);
    sim.hide(false, true);
    finish_writes(&mut sim);
    sim.advance(3_000);
    assert_eq!(batch_ids(&sim.sent[0]), ids);
    sim.ok();
    assert!(sim.store.is_empty());
}

#[test]
fn an_event_posted_before_its_write_completed_carries_the_session_and_seq_it_is_sent_with_later() {
    let (mut sim, _) = writing(3);
    assert_eq!(sim.post_on_hide(), 1);
    let posted = sim.unload[0].body.clone();
    sim.answer_unload(false, true); // the post failed: the normal send carries them again
    finish_writes(&mut sim);
    sim.advance(3_000);
    let identity = |body: &str| -> Vec<(String, String, u64)> {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let session = e["session"].as_str().expect("a session").to_owned();
                let id = e["id"].as_str().unwrap().to_owned();
                (id, session, e["seq"].as_u64().expect("a seq"))
            })
            .collect()
    };
    let posted = identity(&posted);
    assert_eq!(
        posted.iter().map(|(_, _, seq)| *seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "numbered as logged, without waiting for storage"
    );
    assert!(posted.iter().all(|(_, session, _)| session == sim::SESSION));
    assert_eq!(identity(&sim.sent[0].body), posted);
}

#[test]
fn offline_nothing_is_posted() {
    let (mut sim, _) = writing(5);
    sim.core.handle_online(sim.now, false);
    assert_eq!(sim.post_on_hide(), 0);
}

#[test]
fn events_at_risk_take_the_keepalive_budget_before_stored_ones() {
    let mut sim = Sim::with_defaults();
    // ~100 kB of small events stored: beyond the budget, whatever the normal send in
    // flight carries, and packed so tightly that no larger event fits in what they leave.
    sim.log_many(1_000);
    sim.persist_at_once = false;
    let click = sim.log_sized(300).unwrap(); // its write is still out as the page hides
    sim.post_on_hide();
    sim.post_on_hide(); // pagehide: the hide's posts are unanswered and still count
    let total: usize = sim.unload.iter().map(|b| b.body.len()).sum();
    assert!(total <= 64 * 1024, "{total} bytes of keepalive bodies");
    let first = batch_ids(&sim.unload[0]);
    assert!(sim.unload.len() >= 2, "stored events fill what is left");
    sim.crash_and_reload(true); // the write is lost with the page
    assert_eq!(
        sim.collector.acknowledged.get(&click),
        Some(&1),
        "the click"
    );
    assert_eq!(first, [click], "the event only a post can save goes first");
}

// ---- events logged while the page is hidden -----------------------------------------

#[test]
fn an_event_logged_after_the_page_hid_is_posted_at_once() {
    let mut sim = Sim::with_defaults();
    let earlier = sim.log_many(3);
    sim.persist_at_once = false;
    sim.post_on_hide(); // evbuf's own handler runs first
    let last = sim.log(); // then the app's: "session end"
    let posted: Vec<String> = sim.unload.iter().flat_map(batch_ids).collect();
    assert_eq!(posted, [earlier, vec![last.clone()]].concat());
    // No later lifecycle event comes: the page dies with the write still out.
    sim.crash_and_reload(true);
    assert_eq!(sim.collector.acknowledged.get(&last), Some(&1));
}

#[test]
fn events_logged_while_hidden_are_posted_once_each() {
    let mut sim = Sim::with_defaults();
    sim.post_on_hide();
    let first = sim.log_many(2);
    let second = sim.log_many(2);
    assert_eq!(
        sim.unload.len(),
        4,
        "each call as it comes: the page may die after any"
    );
    sim.post_on_hide(); // pagehide after the hide
    assert_eq!(sim.unload.len(), 4, "nothing is posted twice");
    // The page lived on: the writes completed, the posts carry them until their answers.
    sim.advance(10_000);
    assert!(sim.sent.is_empty(), "left to the keepalive answers");
    sim.answer_unload(true, true);
    assert!(sim.store.is_empty());
    assert!(first
        .iter()
        .chain(&second)
        .all(|id| sim.collector.acknowledged[id] == 1));
}

#[test]
fn once_visible_again_events_wait_for_the_normal_send() {
    let mut sim = Sim::with_defaults();
    sim.post_on_hide();
    sim.core.handle_page_visible();
    let ids = sim.log_many(3);
    assert!(sim.unload.is_empty());
    sim.advance(3_000);
    assert_eq!(batch_ids(&sim.sent[0]), ids);
}

#[test]
fn events_logged_while_hidden_and_offline_are_not_posted() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false);
    sim.post_on_hide();
    sim.log();
    assert!(sim.unload.is_empty());
}

// ---- counting keepalive posts and their budget --------------------------------------

#[test]
fn each_keepalive_post_is_counted_as_an_unload_request() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    assert_eq!(sim.post_on_hide(), 1);
    let stats = sim.core.stats(sim.now);
    assert_eq!(stats.unload_requests, 1);
    assert_eq!(stats.requests, 1);
}

#[test]
fn a_keepalive_post_that_fails_is_counted_as_a_failed_request() {
    let mut sim = Sim::with_defaults();
    sim.log_many(5);
    sim.post_on_hide();
    sim.answer_unload(false, true);
    assert_eq!(sim.core.stats(sim.now).failed_requests, 1);
}

#[test]
fn an_answered_keepalive_post_gives_its_bytes_back_to_the_budget_and_one_still_out_keeps_them() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false); // nothing goes out on the normal path
    sim.core.handle_online(sim.now, true);
    sim.pump();
    // ~100 kB stored with one ~1 kB batch in flight: the hide spends the whole budget in
    // two posts, a full batch and the rest of the 64 KiB.
    for _ in 0..100 {
        sim.log_sized(900).unwrap();
    }
    assert!(sim.in_flight.is_some());
    assert_eq!(sim.post_on_hide(), 2);
    let (big, small) = (sim.unload[0].clone(), sim.unload[1].clone());
    assert!(
        big.body.len() > 4 * small.body.len(),
        "{} / {}",
        big.body.len(),
        small.body.len()
    );
    sim.unload.clear();
    // The page lives: the big post fails, the small one is still out.
    let failed = SendOutcome::NetworkError("keepalive failed".into());
    sim.core.handle_unload_result(sim.now, big.id, &failed);
    sim.pump();
    // A second hide may spend what the big post gave back, not what the small one holds.
    assert_eq!(sim.post_on_hide(), 1);
    assert_eq!(batch_ids(&sim.unload[0]), batch_ids(&big));
    assert!(sim.unload[0].body.len() + small.body.len() <= 64 * 1024);
}
