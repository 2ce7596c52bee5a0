//! Values by a `u64` key (a storage key, a ticket), in key order, in one sorted `Vec`.
//!
//! The one map type of the crate: keys are handed out in increasing order, so an insert
//! is nearly always a push, and a sorted `Vec` does in a few hundred bytes of wasm what a
//! `BTreeMap` does in kilobytes per value type.

/// A map from `u64` keys to values, sorted by key.
#[derive(Debug, Clone)]
pub struct KeyedVec<V> {
    /// Sorted by key, each key once. A value is `None` only inside [`KeyedVec::remove`].
    entries: Vec<(u64, Option<V>)>,
}

impl<V> Default for KeyedVec<V> {
    fn default() -> Self {
        KeyedVec {
            entries: Vec::new(),
        }
    }
}

impl<V> KeyedVec<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` is, or where it would go.
    fn position(&self, key: u64) -> Result<usize, usize> {
        match self.entries.last() {
            Some(&(last, _)) if key > last => Err(self.entries.len()),
            _ => self.entries.binary_search_by_key(&key, |(k, _)| *k),
        }
    }

    pub fn contains_key(&self, key: u64) -> bool {
        self.position(key).is_ok()
    }

    pub fn get(&self, key: u64) -> Option<&V> {
        let at = self.position(key).ok()?;
        self.entries.get(at)?.1.as_ref()
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        let at = self.position(key).ok()?;
        self.entries.get_mut(at)?.1.as_mut()
    }

    /// Adds `value` under `key`; false (and the old value kept) if the key is there.
    pub fn insert(&mut self, key: u64, value: V) -> bool {
        match self.position(key) {
            Ok(_) => false,
            Err(at) => {
                self.entries.insert(at, (key, Some(value)));
                true
            }
        }
    }

    /// Takes out the values of these keys, in the order of `keys` (a key listed twice
    /// comes out once; an unknown key is skipped).
    pub fn remove(&mut self, keys: &[u64]) -> Vec<V> {
        let removed: Vec<V> = keys
            .iter()
            .filter_map(|&key| {
                let at = self.position(key).ok()?;
                self.entries.get_mut(at)?.1.take()
            })
            .collect();
        if !removed.is_empty() {
            self.entries.retain(|(_, value)| value.is_some());
        }
        removed
    }

    /// Moves in every entry of `other`, whose keys are not in `self`: one pass, where
    /// inserting one by one below the last key would move the whole `Vec` each time.
    pub fn merge(&mut self, other: KeyedVec<V>) {
        if self.entries.is_empty() {
            // A page's first load: take the other `Vec` as it is, no copy.
            self.entries = other.entries;
            return;
        }
        let interleaved = match (self.entries.last(), other.entries.first()) {
            (Some(&(last, _)), Some(&(first, _))) => first < last,
            _ => false,
        };
        if !interleaved {
            self.entries.extend(other.entries);
            return;
        }
        let mut mine = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut theirs = other.entries.into_iter().peekable();
        self.entries = Vec::with_capacity(mine.len() + theirs.len());
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (Some(a), Some(b)) if a.0 < b.0 => mine.next(),
                (_, Some(_)) => theirs.next(),
                _ => mine.next(),
            };
            match next {
                Some(entry) => self.entries.push(entry),
                None => break,
            }
        }
    }

    /// Keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.entries
            .iter()
            .filter_map(|(key, value)| Some((*key, value.as_ref()?)))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.iter().filter_map(|(_, value)| value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<V>(map: &KeyedVec<V>) -> Vec<u64> {
        map.iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn inserts_keep_key_order_and_refuse_a_known_key() {
        let mut map = KeyedVec::default();
        for key in [5, 9, 1, 7, 12] {
            assert!(map.insert(key, key * 10));
        }
        assert!(!map.insert(7, 0));
        assert_eq!(keys(&map), [1, 5, 7, 9, 12]);
        assert_eq!(map.get(7), Some(&70));
        assert_eq!(map.get(8), None);
        *map.get_mut(9).expect("9 was inserted") += 1;
        assert_eq!(
            map.values().copied().collect::<Vec<_>>(),
            [10, 50, 70, 91, 120]
        );
    }

    #[test]
    fn remove_returns_values_in_the_order_asked() {
        let mut map = KeyedVec::default();
        for key in 1..=6 {
            map.insert(key, key);
        }
        assert_eq!(map.remove(&[4, 2, 99, 4, 6]), [4, 2, 6]);
        assert_eq!(keys(&map), [1, 3, 5]);
        assert_eq!(map.len(), 3);
        assert!(map.remove(&[42]).is_empty());
    }

    #[test]
    fn merge_interleaves_and_appends() {
        let mut map = KeyedVec::default();
        for key in [2, 4, 6] {
            map.insert(key, ());
        }
        let mut other = KeyedVec::default();
        for key in [1, 5, 9] {
            other.insert(key, ());
        }
        map.merge(other);
        assert_eq!(keys(&map), [1, 2, 4, 5, 6, 9]);
        let mut later = KeyedVec::default();
        later.insert(10, ());
        map.merge(later);
        assert_eq!(keys(&map), [1, 2, 4, 5, 6, 9, 10]);
        map.merge(KeyedVec::default());
        assert_eq!(map.len(), 7);
    }
}
