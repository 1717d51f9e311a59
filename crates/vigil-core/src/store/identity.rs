//! A sample's identity: how it is hashed, and compared with a stored series without
//! allocating.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use super::Series;
use super::symbols::{Symbol, SymbolTable};
use crate::signal::{Labels, Sample};

/// Reads the first byte of each of a sample's strings, so that the memory of a sample a few
/// places ahead is on its way into the cache while the current one is compared (a software
/// prefetch: a scrape's samples are far larger than the cache, and walking their label maps
/// is what ingest waits on). It has no effect on any result.
pub(super) fn touch(sample: &Sample) {
    let mut first_bytes = 0_u8;
    for (name, value) in sample.labels.iter() {
        first_bytes ^= name.as_bytes().first().copied().unwrap_or(0);
        first_bytes ^= value.as_bytes().first().copied().unwrap_or(0);
    }
    std::hint::black_box(first_bytes);
}

/// A sample's labels as the store keeps them: as in Prometheus, a label with an empty value
/// is the same as no label.
pub(super) fn kept_labels(labels: &Labels) -> impl Iterator<Item = (&str, &str)> {
    labels.iter().filter(|(_, value)| !value.is_empty())
}

/// The hash of a series' identity. `0xff` never occurs in UTF-8, so it separates the parts
/// unambiguously.
pub(super) fn identity_hash(source: &str, name: &str, labels: &Labels) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(source.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(name.as_bytes());
    hasher.write_u8(0xff);
    for (label, value) in kept_labels(labels) {
        hasher.write(label.as_bytes());
        hasher.write_u8(0xff);
        hasher.write(value.as_bytes());
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

/// Whether `series` is the series of `sample` from `source`.
pub(super) fn is_series_of(
    symbols: &SymbolTable,
    series: &Series,
    source: Symbol,
    sample: &Sample,
) -> bool {
    is_identity_of(symbols, series, source, &sample.name, &sample.labels)
}

/// Whether `series` is the series `name{labels}` from `source`.
pub(super) fn is_identity_of(
    symbols: &SymbolTable,
    series: &Series,
    source: Symbol,
    name: &str,
    labels: &Labels,
) -> bool {
    series.source == source
        && same_text(symbols.text(series.name), name)
        && same_labels(symbols, &series.labels, labels)
}

/// Whether interned `stored` labels are the kept labels of `labels`.
fn same_labels(symbols: &SymbolTable, stored: &[(Symbol, Symbol)], labels: &Labels) -> bool {
    let mut given = kept_labels(labels);
    for &(name, value) in stored {
        match given.next() {
            Some((given_name, given_value))
                if same_text(symbols.text(name), given_name)
                    && same_text(symbols.text(value), given_value) => {}
            _ => return false,
        }
    }
    given.next().is_none()
}

/// String equality without a call to `memcmp`: label strings are short, and the call costs
/// more than the comparison.
fn same_text(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left.len() != right.len() {
        return false;
    }
    let mut left_words = left.chunks_exact(8);
    let mut right_words = right.chunks_exact(8);
    for (left_word, right_word) in (&mut left_words).zip(&mut right_words) {
        let as_word = |bytes: &[u8]| <[u8; 8]>::try_from(bytes).ok().map(u64::from_ne_bytes);
        if as_word(left_word) != as_word(right_word) {
            return false;
        }
    }
    left_words
        .remainder()
        .iter()
        .zip(right_words.remainder())
        .all(|(left_byte, right_byte)| left_byte == right_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_compares_every_byte() {
        for (left, right) in [
            ("", ""),
            ("a", "a"),
            ("12345678", "12345678"),
            ("litellm_proxy_master_key", "litellm_proxy_master_key"),
        ] {
            assert!(same_text(left, right), "{left} {right}");
        }
        for (left, right) in [
            ("", "a"),
            ("a", "b"),
            ("12345678", "12345679"),
            ("123456789", "123456788"),
            ("abcdefgh-1", "abcdefgh-2"),
            ("x2345678abc", "y2345678abc"),
            ("short", "shorter"),
        ] {
            assert!(!same_text(left, right), "{left} {right}");
            assert!(!same_text(right, left), "{right} {left}");
        }
    }

    #[test]
    fn empty_labels_are_no_labels() {
        let with_empty: Labels = [("a", "1"), ("b", "")].into_iter().collect();
        let without: Labels = [("a", "1")].into_iter().collect();
        assert_eq!(
            identity_hash("gw", "m", &with_empty),
            identity_hash("gw", "m", &without)
        );
        assert_ne!(
            identity_hash("gw", "m", &without),
            identity_hash("gw", "m_", &without)
        );
        // The separators keep the parts apart: `ab` + `c` is not `a` + `bc`.
        assert_ne!(
            identity_hash("ab", "c", &without),
            identity_hash("a", "bc", &without)
        );
    }
}
