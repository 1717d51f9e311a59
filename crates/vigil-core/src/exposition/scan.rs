//! Scanning bytes eight at a time (SWAR: one `u64` holds eight bytes): the end of a name,
//! the first of a few bytes, the common prefix of two lines.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `pos`, if there are eight.
#[inline]
fn word_at(bytes: &[u8], pos: usize) -> Option<u64> {
    let chunk = bytes.get(pos..pos + 8)?;
    Some(u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?))
}

/// The high bit of each byte of `word` (seven-bit bytes) that is within `low..=high`.
/// `byte + (0x80 - low)` reaches the high bit when `byte >= low`, and `byte + (0x7f - high)`
/// when `byte > high`; neither carries into the next byte.
#[inline]
fn within(word: u64, low: u8, high: u8) -> u64 {
    let at_least_low = word + ONES * u64::from(0x80 - low);
    let above_high = word + ONES * u64::from(0x7f - high);
    at_least_low & !above_high & HIGH_BITS
}

/// Which bytes of `word` are not name characters (`[a-zA-Z0-9_]`, and `:` when
/// `with_colon`), as the high bit of each.
#[inline]
fn non_name_bytes(word: u64, with_colon: bool) -> u64 {
    let seven_bits = word & !HIGH_BITS;
    let last_digit = if with_colon { b':' } else { b'9' };
    // Setting 0x20 maps `A-Z` onto `a-z` and nothing else onto it.
    let name = within(seven_bits, b'0', last_digit)
        | within(seven_bits | (ONES * 0x20), b'a', b'z')
        | within(seven_bits, b'_', b'_');
    // A byte with its high bit set (part of a multi-byte character) is never a name byte.
    !(name & !(word & HIGH_BITS)) & HIGH_BITS
}

/// Whether `byte` is a name character (`[a-zA-Z0-9_]`, and `:` when `with_colon`).
#[inline]
fn is_name_byte(byte: u8, with_colon: bool) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || (with_colon && byte == b':')
}

/// The first position from `pos` whose byte is not a name character (`[a-zA-Z0-9_]`, and `:`
/// when `with_colon`: metric names), or the end.
#[inline]
pub(super) fn name_end(bytes: &[u8], mut pos: usize, with_colon: bool) -> usize {
    while let Some(word) = word_at(bytes, pos) {
        let stops = non_name_bytes(word, with_colon);
        if stops != 0 {
            return pos + (stops.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while bytes
        .get(pos)
        .is_some_and(|&byte| is_name_byte(byte, with_colon))
    {
        pos += 1;
    }
    pos
}

/// The offset of the first of `targets` (ASCII) in `bytes`.
#[inline]
pub(super) fn find_first_of<const N: usize>(bytes: &[u8], targets: [u8; N]) -> Option<usize> {
    // A byte of `word ^ (ONES * target)` is zero where `word` holds `target`; the lowest high
    // bit of `(x - ONES) & !x & HIGH_BITS` marks the first zero byte exactly (a borrow only
    // makes false marks above a true one).
    let marks = |word: u64, target: u8| {
        let difference = word ^ (ONES * u64::from(target));
        difference.wrapping_sub(ONES) & !difference & HIGH_BITS
    };
    let mut pos = 0;
    while let Some(word) = word_at(bytes, pos) {
        let found = targets
            .iter()
            .fold(0, |found, &target| found | marks(word, target));
        if found != 0 {
            return Some(pos + (found.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    bytes
        .get(pos..)?
        .iter()
        .position(|byte| targets.contains(byte))
        .map(|offset| pos + offset)
}

/// The length of the common prefix of `a` and `b`.
#[inline]
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut pos = 0;
    while let (Some(a_word), Some(b_word)) = (word_at(a, pos), word_at(b, pos)) {
        let difference = a_word ^ b_word;
        if difference != 0 {
            return pos + (difference.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    let a_rest = a.get(pos..).unwrap_or_default();
    let b_rest = b.get(pos..).unwrap_or_default();
    pos + a_rest
        .iter()
        .zip(b_rest)
        .take_while(|(a_byte, b_byte)| a_byte == b_byte)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_end_agrees_with_a_byte_at_a_time_scan() {
        // Every byte value at every position of a 20-byte name, with and without colons.
        for with_colon in [false, true] {
            for stop_at in 0..20 {
                for byte in 0..=255_u8 {
                    let mut bytes = b"abcXYZ_019:defghijkl".to_vec();
                    bytes[stop_at] = byte;
                    let expected = bytes
                        .iter()
                        .position(|&byte| !is_name_byte(byte, with_colon))
                        .unwrap_or(bytes.len());
                    assert_eq!(
                        name_end(&bytes, 0, with_colon),
                        expected,
                        "{bytes:?} {with_colon}"
                    );
                }
            }
        }
    }

    #[test]
    fn find_first_of_and_common_prefix() {
        let text = b"0123456789abcdef\"ghij\\k";
        assert_eq!(find_first_of(text, [b'"', b'\\']), Some(16));
        assert_eq!(find_first_of(text, [b'\\']), Some(21));
        assert_eq!(find_first_of(text, [b'#']), None);
        assert_eq!(common_prefix(b"abcdefghijk", b"abcdefghijx"), 10);
        assert_eq!(common_prefix(b"abcdefghijk", b"abcdefghijk"), 11);
        assert_eq!(common_prefix(b"abc", b"abd"), 2);
        assert_eq!(common_prefix(b"", b"abd"), 0);
    }
}
