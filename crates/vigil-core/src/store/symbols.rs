//! Interned strings: every metric name, label name, label value and source name is stored
//! once and referred to by a 4-byte [`Symbol`], with a reference count so that strings no
//! series uses any more are freed.

use std::hash::BuildHasher;
use std::mem::size_of;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// A handle to an interned string; valid while its reference count is above zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Symbol(u32);

impl Symbol {
    fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug)]
struct Entry {
    text: Box<str>,
    refs: u32,
}

/// The string interner.
///
/// Lookups hash with a fixed hasher; the table's layout never reaches an output because
/// symbols are only compared for equality and every ordered output sorts by text.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    entries: Vec<Entry>,
    /// Ids of freed entries, reused last-in first-out (deterministically).
    free: Vec<u32>,
    lookup: HashTable<u32>,
    /// The sum of the lengths of the live strings (a `Box<str>` has no spare capacity).
    text_bytes: usize,
}

fn hash_text(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

impl SymbolTable {
    /// The symbol of `text`, if it is interned.
    pub(crate) fn get(&self, text: &str) -> Option<Symbol> {
        let entries = &self.entries;
        self.lookup
            .find(hash_text(text), |&id| {
                entries
                    .get(id as usize)
                    .is_some_and(|entry| &*entry.text == text)
            })
            .map(|&id| Symbol(id))
    }

    /// Interns `text` (or finds it) and takes one reference to it.
    ///
    /// `None` only when four billion distinct strings are already interned.
    pub(crate) fn acquire(&mut self, text: &str) -> Option<Symbol> {
        if let Some(symbol) = self.get(text) {
            if let Some(entry) = self.entries.get_mut(symbol.index()) {
                entry.refs = entry.refs.saturating_add(1);
            }
            return Some(symbol);
        }
        let id = match self.free.pop() {
            Some(id) => {
                let entry = self.entries.get_mut(id as usize)?;
                entry.text = text.into();
                entry.refs = 1;
                id
            }
            None => {
                let id = u32::try_from(self.entries.len()).ok()?;
                self.entries.push(Entry {
                    text: text.into(),
                    refs: 1,
                });
                id
            }
        };
        self.text_bytes += text.len();
        let entries = &self.entries;
        self.lookup.insert_unique(hash_text(text), id, |&other| {
            hash_text(entries.get(other as usize).map_or("", |entry| &entry.text))
        });
        Some(Symbol(id))
    }

    /// Takes one more reference to a live `symbol`.
    pub(crate) fn retain(&mut self, symbol: Symbol) {
        if let Some(entry) = self.entries.get_mut(symbol.index()) {
            // INVARIANT: a live symbol has at least one reference.
            debug_assert!(entry.refs > 0, "retained a dead symbol");
            entry.refs = entry.refs.saturating_add(1);
        }
    }

    /// Gives back one reference to `symbol`; the string is freed with its last reference.
    pub(crate) fn release(&mut self, symbol: Symbol) {
        let Some(entry) = self.entries.get_mut(symbol.index()) else {
            return;
        };
        // INVARIANT: a live symbol has at least one reference.
        debug_assert!(entry.refs > 0, "released a dead symbol");
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs > 0 {
            return;
        }
        let text = std::mem::take(&mut entry.text);
        self.text_bytes = self.text_bytes.saturating_sub(text.len());
        if let Ok(found) = self
            .lookup
            .find_entry(hash_text(&text), |&id| id == symbol.0)
        {
            found.remove();
        }
        self.free.push(symbol.0);
    }

    /// The text of `symbol` (empty for a freed symbol, which callers never hold).
    pub(crate) fn text(&self, symbol: Symbol) -> &str {
        self.entries
            .get(symbol.index())
            .map_or("", |entry| &entry.text)
    }

    /// The number of live strings.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Heap and inline bytes held, counting capacities.
    pub(crate) fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + self.entries.capacity() * size_of::<Entry>()
            + self.text_bytes
            + self.free.capacity() * size_of::<u32>()
            + hash_table_bytes(self.lookup.capacity(), size_of::<u32>())
    }
}

/// An estimate of the heap bytes of a `hashbrown` table that can hold `capacity` items of
/// `item_size` bytes: buckets at 7/8 load, a control byte per bucket and one SIMD group.
pub(crate) fn hash_table_bytes(capacity: usize, item_size: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (item_size + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_frees_with_the_last_reference() {
        let mut table = SymbolTable::default();
        let first = table.acquire("team").unwrap();
        let second = table.acquire("team").unwrap();
        assert_eq!(first, second);
        assert_eq!(table.len(), 1);
        table.release(first);
        assert_eq!(table.get("team"), Some(first));
        table.release(second);
        assert_eq!(table.get("team"), None);
        assert_eq!(table.len(), 0);
        // The freed id is reused for the next new string.
        let reused = table.acquire("model").unwrap();
        assert_eq!(reused, first);
        assert_eq!(table.text(reused), "model");
    }

    #[test]
    fn memory_does_not_grow_under_churn() {
        let mut table = SymbolTable::default();
        for round in 0..10 {
            let symbols: Vec<Symbol> = (0..100)
                .map(|idx| table.acquire(&format!("value-{round}-{idx}")).unwrap())
                .collect();
            for symbol in symbols {
                table.release(symbol);
            }
        }
        let settled = table.memory_bytes();
        for round in 10..20 {
            let symbols: Vec<Symbol> = (0..100)
                .map(|idx| table.acquire(&format!("value-{round}-{idx}")).unwrap())
                .collect();
            for symbol in symbols {
                table.release(symbol);
            }
        }
        assert_eq!(table.memory_bytes(), settled);
        assert_eq!(table.len(), 0);
    }
}
