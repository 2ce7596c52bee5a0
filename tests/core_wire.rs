//! The wire format: the exact length of an event, the bound of an envelope, and a request
//! body that does not depend on how its events are handed in.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use evbuf::core::wire;
use sim::{DEVICE, T0};

#[test]
fn the_length_of_an_event_is_exact_for_every_kind_of_character() {
    for id in ["a b", "\u{1}", "x\u{1f}y", "tab\there", "é€😀", "\"\\"] {
        let mut out = String::new();
        wire::push_event(&mut out, id, id, 7, T0, "{}");
        assert_eq!(out.len(), wire::event_len(id, id, 7, T0, "{}"), "{out}");
    }
    let mut out = String::new();
    wire::push_json_string(&mut out, " \u{1f}\u{7f}");
    assert_eq!(
        out, "\" \\u001f\u{7f}\"",
        "only controls below 0x20 are escaped"
    );
}

#[test]
fn the_bound_of_an_envelope_is_its_largest_length() {
    for device in [DEVICE, "dev\"ice\u{1}"] {
        let empty = wire::body(u64::MAX, device, std::iter::empty());
        assert_eq!(wire::envelope_len_bound(device), empty.len(), "{empty}");
    }
}

#[test]
fn a_body_does_not_depend_on_how_much_its_iterator_says_it_holds() {
    let mut event = String::new();
    wire::push_event(&mut event, "s-7", "s", 7, T0, r#"{"type":"VIEW"}"#);
    let events = [event.as_str(), event.as_str()];
    let exact = wire::body(T0, DEVICE, events.iter().copied());
    // A filter knows no lower bound: its size hint says 0.
    let unknown = wire::body(T0, DEVICE, events.iter().copied().filter(|_| true));
    assert_eq!(unknown, exact);
    assert_eq!(
        wire::body(T0, DEVICE, std::iter::empty()),
        format!(r#"{{"sent_at":{T0},"device":"{DEVICE}","events":[]}}"#)
    );
}
