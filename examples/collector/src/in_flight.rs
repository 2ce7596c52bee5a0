//! How many bulk requests are out at once, and which of them a test holds open.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::App;

/// The most of `sends` (arrived, answered) that were out at one moment.
pub(crate) fn most_at_once(sends: &[(Instant, Instant)]) -> u64 {
    // An answer at the instant another send arrives is not an overlap: ends sort first.
    let mut edges: Vec<(Instant, i64)> = sends
        .iter()
        .flat_map(|&(arrived, answered)| [(arrived, 1), (answered, -1)])
        .collect();
    edges.sort();
    let mut out = 0;
    let mut most = 0;
    for (_, step) in edges {
        out += step;
        most = most.max(out);
    }
    most as u64
}

/// Counts a bulk request as in flight for as long as its handler runs,
/// including when the client gives up and the handler is dropped.
pub(crate) struct InFlight<'a> {
    app: &'a App,
}

impl<'a> InFlight<'a> {
    pub(crate) fn enter(app: &'a App) -> Self {
        let now = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        app.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { app }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.app.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.app.in_flight_changed.notify_waiters();
    }
}

/// Counts a request as held until the client gives up (or the server ends).
pub(crate) struct Held<'a>(&'a App);

impl<'a> Held<'a> {
    pub(crate) fn enter(app: &'a App) -> Self {
        app.held.fetch_add(1, Ordering::SeqCst);
        app.in_flight_changed.notify_waiters();
        Held(app)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
        self.0.in_flight_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_the_answered_sends_out_at_once() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        assert_eq!(most_at_once(&[]), 0);
        // One after the other, the second arriving as the first is answered.
        assert_eq!(most_at_once(&[(ms(0), ms(100)), (ms(100), ms(200))]), 1);
        assert_eq!(most_at_once(&[(ms(0), ms(100)), (ms(99), ms(200))]), 2);
        let three = [
            (ms(0), ms(300)),
            (ms(10), ms(20)),
            (ms(50), ms(400)),
            (ms(60), ms(70)),
        ];
        assert_eq!(most_at_once(&three), 3);
    }
}
