//! A bit stream written and read most significant bit first, and the variable-length integer
//! codes the scrape codec builds on.
//!
//! An integer is written with a short prefix that says how many bits follow (see
//! `BUCKETS`): zero takes one bit, a small number a few, any `u64` at most 69. Signed
//! integers are zigzag-mapped first, so that small magnitudes of either sign stay short.

use super::CodecError;

/// The integer code: a value below `1 << width` is written as `prefix` ones, a zero (absent
/// for the last bucket), then `width` bits. The first bucket is the value zero alone.
const BUCKETS: [u32; 6] = [0, 6, 13, 20, 32, 64];

/// Bits written, packed into bytes.
#[derive(Debug, Default, Clone)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits not yet packed into a byte, in the low `n_pending` bits (fewer than 8).
    pending: u128,
    n_pending: u32,
}

impl BitWriter {
    /// Appends the low `n_bits` bits of `value` (at most 64), most significant first.
    pub fn write(&mut self, value: u64, n_bits: u32) {
        debug_assert!(n_bits <= 64, "{n_bits} bits");
        if n_bits == 0 {
            return;
        }
        let value = if n_bits >= 64 {
            value
        } else {
            value & ((1_u64 << n_bits) - 1)
        };
        self.pending = (self.pending << n_bits) | u128::from(value);
        self.n_pending += n_bits;
        while self.n_pending >= 8 {
            self.n_pending -= 8;
            self.bytes.push((self.pending >> self.n_pending) as u8);
        }
        self.pending &= (1_u128 << self.n_pending) - 1;
    }

    /// Appends one bit.
    pub fn bit(&mut self, set: bool) {
        self.write(u64::from(set), 1);
    }

    /// Appends `value` in the integer code.
    pub fn unsigned(&mut self, value: u64) {
        let mut n_ones = 0_u64;
        for (idx, width) in BUCKETS.iter().enumerate() {
            if idx + 1 == BUCKETS.len() {
                // The last bucket: its ones say it all, no zero follows.
                self.write(n_ones, idx as u32);
                self.write(value, *width);
                return;
            }
            if value < (1_u64 << width) {
                // `idx` ones, then a zero.
                self.write(n_ones << 1, idx as u32 + 1);
                self.write(value, *width);
                return;
            }
            n_ones = (n_ones << 1) | 1;
        }
    }

    /// Appends `value` zigzag-mapped, in the integer code.
    pub fn signed(&mut self, value: i64) {
        self.unsigned(zigzag(value));
    }

    /// The number of bits written so far.
    #[must_use]
    pub fn n_bits(&self) -> u64 {
        self.bytes.len() as u64 * 8 + u64::from(self.n_pending)
    }

    /// The bytes, the last one padded with zero bits.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        if self.n_pending > 0 {
            self.bytes
                .push((self.pending << (8 - self.n_pending)) as u8);
        }
        self.bytes
    }
}

/// The bits of `value` in the integer code.
#[must_use]
pub fn unsigned_cost(value: u64) -> u32 {
    for (idx, width) in BUCKETS.iter().enumerate() {
        let is_last = idx + 1 == BUCKETS.len();
        if is_last || value < (1_u64 << width) {
            let prefix_bits = if is_last { idx as u32 } else { idx as u32 + 1 };
            return prefix_bits + width;
        }
    }
    69
}

/// The bits of `value` in the signed integer code.
#[must_use]
pub fn signed_cost(value: i64) -> u32 {
    unsigned_cost(zigzag(value))
}

/// Reads what a [`BitWriter`] wrote.
#[derive(Debug, Clone)]
pub struct BitReader<'data> {
    bytes: &'data [u8],
    /// The next bit's position.
    position: u64,
}

impl<'data> BitReader<'data> {
    /// A reader at the first bit of `bytes`.
    #[must_use]
    pub fn new(bytes: &'data [u8]) -> BitReader<'data> {
        BitReader { bytes, position: 0 }
    }

    /// A reader at bit `position` of `bytes`.
    #[must_use]
    pub fn at(bytes: &'data [u8], position: u64) -> BitReader<'data> {
        BitReader { bytes, position }
    }

    /// The next bit's position.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The bits left to read.
    #[must_use]
    pub fn bits_left(&self) -> u64 {
        (self.bytes.len() as u64 * 8).saturating_sub(self.position)
    }

    /// The next `n_bits` bits (at most 64) as the low bits of a number.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`] past the end.
    pub fn read(&mut self, n_bits: u32) -> Result<u64, CodecError> {
        debug_assert!(n_bits <= 64, "{n_bits} bits");
        let mut value = 0_u64;
        let mut remaining = n_bits.min(64);
        while remaining > 0 {
            let byte_idx = usize::try_from(self.position / 8).map_err(|_| CodecError::Truncated)?;
            let byte = *self.bytes.get(byte_idx).ok_or(CodecError::Truncated)?;
            let offset = (self.position % 8) as u32;
            let available = 8 - offset;
            let take = available.min(remaining);
            let bits = (u32::from(byte) >> (available - take)) & ((1_u32 << take) - 1);
            value = (value << take) | u64::from(bits);
            remaining -= take;
            self.position += u64::from(take);
        }
        Ok(value)
    }

    /// The next bit.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`] past the end.
    pub fn bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.read(1)? == 1)
    }

    /// The next integer in the integer code.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`] past the end.
    pub fn unsigned(&mut self) -> Result<u64, CodecError> {
        let mut bucket = 0;
        while bucket + 1 < BUCKETS.len() && self.bit()? {
            bucket += 1;
        }
        let width = BUCKETS.get(bucket).copied().unwrap_or(64);
        self.read(width)
    }

    /// The next zigzag-mapped integer in the integer code.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`] past the end.
    pub fn signed(&mut self) -> Result<i64, CodecError> {
        Ok(unzigzag(self.unsigned()?))
    }

    /// Checks that only the zero bits padding the last byte are left.
    ///
    /// # Errors
    ///
    /// [`CodecError::TrailingData`] when more is left.
    pub fn finish(mut self) -> Result<(), CodecError> {
        let total = self.bytes.len() as u64 * 8;
        let left = total.saturating_sub(self.position);
        if left >= 8 {
            return Err(CodecError::TrailingData);
        }
        match self.read(left as u32) {
            Ok(0) => Ok(()),
            _ => Err(CodecError::TrailingData),
        }
    }
}

/// Maps signed to unsigned so that small magnitudes stay small: 0, -1, 1, -2, 2 ...
#[must_use]
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[must_use]
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_the_cost_their_code_announces() {
        let values: Vec<i64> = vec![
            0,
            1,
            -1,
            31,
            -32,
            32,
            4095,
            -4096,
            4096,
            1 << 19,
            -(1 << 19),
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            1 << 40,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut writer = BitWriter::default();
        let mut expected_bits = 0;
        for value in &values {
            writer.signed(*value);
            writer.unsigned(*value as u64);
            expected_bits += u64::from(signed_cost(*value) + unsigned_cost(*value as u64));
            assert_eq!(writer.n_bits(), expected_bits, "after {value}");
        }
        writer.write(0b101, 3);
        let bytes = writer.finish();
        let mut reader = BitReader::new(&bytes);
        for value in &values {
            assert_eq!(reader.signed().unwrap(), *value);
            assert_eq!(reader.unsigned().unwrap(), *value as u64);
        }
        assert_eq!(reader.read(3).unwrap(), 0b101);
        reader.finish().unwrap();
    }

    #[test]
    fn zero_costs_one_bit_and_small_numbers_a_few() {
        assert_eq!(signed_cost(0), 1);
        assert_eq!(signed_cost(-1), 8);
        assert_eq!(signed_cost(31), 8);
        assert_eq!(unsigned_cost(u64::MAX), 69);
    }

    #[test]
    fn reading_past_the_end_or_leaving_data_is_an_error() {
        let mut writer = BitWriter::default();
        writer.write(u64::MAX, 64);
        writer.write(1, 1);
        let bytes = writer.finish();
        assert_eq!(bytes.len(), 9);
        let mut reader = BitReader::new(&bytes);
        assert_eq!(reader.read(64).unwrap(), u64::MAX);
        assert!(reader.clone().finish().is_err(), "one set bit is left");
        assert!(reader.bit().unwrap());
        assert!(reader.read(8).is_err());
        let mut reader = BitReader::new(&bytes);
        reader.read(60).unwrap();
        assert_eq!(reader.finish(), Err(CodecError::TrailingData));
        assert_eq!(BitReader::new(&[]).unsigned(), Err(CodecError::Truncated));
    }
}
