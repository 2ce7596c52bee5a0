//! Recovery from answers about a batch's content: 413 (too large: split it) and 400 or 422
//! (some event is rejected: bisect to find it). Both end the same way: events the server refused
//! alone are dropped only if the server accepted something meanwhile; if it accepted
//! nothing, the endpoint is refusing everything, and every event is kept.

use super::queue::Queue;
use super::types::Key;

#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// Pieces of a split batch, sent before anything else: a stack, the next piece last.
    pieces: Vec<Vec<Key>>,
    search: Option<Search>,
}

#[derive(Debug, Default)]
struct Search {
    /// Some piece was acknowledged: the server works.
    acknowledged_any: bool,
    /// Single events refused alone, and the status that refused them (413, 400, 422).
    suspects: Vec<(Key, u16)>,
}

/// How a search ended.
pub(super) enum Ending {
    /// The server accepted other pieces: these events are refused for themselves.
    Drop(Vec<(Key, u16)>),
    /// The server accepted nothing (the last refusal had this status): keep everything
    /// and wait.
    RefusedEverything(u16),
}

impl Recovery {
    /// A batch of several events was refused for its content: send its halves next.
    pub fn split(&mut self, keys: Vec<Key>) {
        self.search.get_or_insert_with(Search::default);
        let (first, second) = keys.split_at(keys.len() / 2);
        self.pieces.push(second.to_vec());
        self.pieces.push(first.to_vec());
    }

    /// A single event was refused with `status`.
    pub fn suspect(&mut self, key: Key, status: u16) {
        self.search
            .get_or_insert_with(Search::default)
            .suspects
            .push((key, status));
    }

    /// A piece failed for a transient reason: it keeps its place at the head of the line.
    pub fn retry_piece(&mut self, keys: Vec<Key>) {
        self.pieces.push(keys);
    }

    pub fn acknowledged(&mut self) {
        if let Some(search) = &mut self.search {
            search.acknowledged_any = true;
        }
    }

    pub fn is_suspect(&self, key: Key) -> bool {
        self.search
            .as_ref()
            .is_some_and(|s| s.suspects.iter().any(|(k, _)| *k == key))
    }

    /// The next piece with a key still queued and free, if any.
    pub fn next_piece(&mut self, queue: &Queue) -> Option<Vec<Key>> {
        while let Some(piece) = self.pieces.pop() {
            let alive = queue.free_among(&piece, &|_| true);
            if !alive.is_empty() {
                return Some(alive);
            }
        }
        None
    }

    pub fn has_pieces(&self, queue: &Queue) -> bool {
        self.pieces.iter().flatten().any(|&k| queue.is_free(k))
    }

    /// Ends the search once no piece is left to send or awaited.
    pub fn finish(&mut self, queue: &Queue) -> Option<Ending> {
        if self.has_pieces(queue) {
            return None;
        }
        self.pieces.clear();
        let search = self.search.take()?;
        let suspects: Vec<(Key, u16)> = search
            .suspects
            .into_iter()
            .filter(|(k, _)| queue.is_free(*k))
            .collect();
        if suspects.is_empty() {
            return None;
        }
        if !search.acknowledged_any {
            return Some(Ending::RefusedEverything(suspects[suspects.len() - 1].1));
        }
        Some(Ending::Drop(suspects))
    }
}
