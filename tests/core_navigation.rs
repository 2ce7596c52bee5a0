//! Leaving for the next page of a multi-page site, one named test per decision: a page
//! that starts a navigation to another document of its origin leaves its stored events to
//! the next page, which sends what it finds stored as it starts and hears the answer.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::{SendOutcome, NAVIGATION_HANDOFF_MS};
use sim::{batch_ids, Sim};

/// A page of a multi-page site: it logs `n` events, then a same-origin navigation starts
/// and the page hides; returns how many keepalive posts it made.
fn log_and_navigate(sim: &mut Sim, n: usize) -> usize {
    sim.log_many(n);
    sim.advance(300);
    sim.core.handle_navigation(sim.now, true);
    sim.post_on_hide()
}

#[test]
fn a_page_leaving_for_the_next_page_of_the_site_leaves_its_stored_events_to_it() {
    let mut sim = Sim::with_defaults();
    let ids = sim.log_many(5);
    sim.core.handle_navigation(sim.now, true);
    assert_eq!(sim.post_on_hide(), 0, "they are safe in storage");
    assert_eq!(sim.store.len(), 5);
    // The next page sends them as it starts, without waiting for an interval, and hears
    // the answer.
    sim.crash_and_reload(true);
    assert_eq!(
        batch_ids(sim.in_flight.as_ref().expect("sent at once")),
        ids
    );
    sim.ok();
    assert!(sim.store.is_empty());
    assert_eq!(sim.collector.duplicates(), 0);
}

#[test]
fn a_multi_page_site_sends_each_event_once() {
    // 30 pages of 10 events, each left 300 ms after it started; the answer to a normal
    // send comes within the page's life, a keepalive post's never reaches a page.
    let mut sim = Sim::with_defaults();
    for _ in 0..30 {
        if sim.in_flight.is_some() {
            sim.ok();
        }
        log_and_navigate(&mut sim, 10);
        sim.crash_and_reload(true);
    }
    sim.advance(3_000);
    while sim.in_flight.is_some() {
        sim.ok();
        sim.advance(3_000);
    }
    assert_eq!(sim.collector.distinct(), 300);
    assert_eq!(sim.collector.duplicates(), 0);
    assert!(sim.store.is_empty());
}

#[test]
fn events_not_yet_stored_still_go_out_when_leaving_for_the_next_page() {
    let mut sim = Sim::with_defaults();
    let stored = sim.log_many(2);
    sim.persist_at_once = false;
    let writing = sim.log_many(3);
    sim.core.handle_navigation(sim.now, true);
    assert_eq!(
        sim.post_on_hide(),
        1,
        "only the events that exist nowhere else"
    );
    assert_eq!(batch_ids(&sim.unload[0]), writing);
    // The write dies with the page; the next page sends what is stored.
    sim.crash_and_reload(true);
    assert_eq!(
        batch_ids(sim.in_flight.as_ref().expect("sent at once")),
        stored
    );
    sim.ok();
    assert_eq!(sim.collector.distinct(), 5);
    assert_eq!(sim.collector.duplicates(), 0);
}

#[test]
fn a_navigation_to_another_origin_or_one_that_did_not_leave_posts_on_hide() {
    for ended in ["another origin", "ended", "visible again", "long ago"] {
        let mut sim = Sim::with_defaults();
        let ids = sim.log_many(3);
        sim.core.handle_navigation(sim.now, true);
        match ended {
            // The latest navigation decides: the page may not come back to this origin.
            "another origin" | "ended" => sim.core.handle_navigation(sim.now, false),
            "visible again" => {
                sim.post_on_hide();
                sim.core.handle_page_visible();
            }
            _ => sim.now += NAVIGATION_HANDOFF_MS + 1,
        }
        let posts = sim.post_on_hide();
        let posted: Vec<String> = sim.unload.iter().flat_map(batch_ids).collect();
        assert_eq!((posts, posted), (1, ids), "{ended}");
    }
}

#[test]
fn a_page_that_starts_sends_what_it_finds_stored_at_once() {
    let mut sim = Sim::with_defaults();
    sim.core.handle_online(sim.now, false); // nothing goes out before the reload
    let ids = sim.log_many(3);
    sim.crash_and_reload(false);
    assert_eq!(
        batch_ids(sim.in_flight.as_ref().expect("sent at once")),
        ids
    );
    // A remembered backoff still holds it back.
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    sim.advance(3_000);
    sim.answer(SendOutcome::status(503));
    sim.crash_and_reload(false);
    assert!(sim.in_flight.is_none(), "the backoff is waited out first");
}

#[test]
fn a_hide_at_the_end_of_the_handoff_window_still_leaves_stored_events_to_the_next_page() {
    let mut sim = Sim::with_defaults();
    sim.log_many(3);
    sim.core.handle_navigation(sim.now, true);
    sim.now += NAVIGATION_HANDOFF_MS;
    assert_eq!(sim.post_on_hide(), 0);
}

#[test]
fn a_page_that_starts_with_nothing_stored_waits_for_the_interval() {
    let mut sim = Sim::with_defaults();
    sim.crash_and_reload(false);
    let ids = sim.log_many(3);
    assert!(sim.in_flight.is_none(), "nothing to send at once");
    sim.advance(3_000);
    assert_eq!(
        batch_ids(sim.in_flight.as_ref().expect("the interval")),
        ids
    );
}
