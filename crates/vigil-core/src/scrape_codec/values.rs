//! One series' values and exposition timestamps, each coded against the same series' previous
//! one in the batch.
//!
//! A value is written in the cheapest of three ways, each announced by its control bits:
//!
//! - `0`: the same bits as the previous value (a gauge that did not move).
//! - `10`: an integer, as the change of its step from the previous step (delta of delta):
//!   a counter growing at a steady rate costs 3 bits. Only when both values are integers
//!   that an `f64` holds exactly (magnitude at most 2^53, not `-0.0`).
//! - `11`: the XOR of its bits with the previous value's bits, as Gorilla does: `0` and the
//!   bits inside the previous window of meaningful bits, or `1`, 6 bits of leading zeros, 6
//!   bits of length minus one and the meaningful bits.
//!
//! Every bit pattern survives, NaN payloads, `-0.0` and infinities included: the XOR way
//! handles any value. The first value of a series is coded against `0.0`.

use super::CodecError;
use super::bits::{BitReader, BitWriter, signed_cost};

/// The largest integer magnitude the integer way codes: every integer up to it is an `f64`.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// What coding a series' next value depends on.
#[derive(Debug, Default, Clone)]
pub(super) struct ValueState {
    /// The previous value's bits (`0.0` before the first).
    bits: u64,
    /// The previous step between two integer values, 0 when either was not one.
    integer_step: i64,
    /// The window of meaningful bits (leading and trailing zeros) of the last XOR written
    /// with a window of its own.
    window: Option<(u32, u32)>,
    /// The previous exposition timestamp, and the step before it.
    timestamp: Option<i64>,
    timestamp_step: i64,
}

/// The integer `value` holds exactly, if it is one the integer way may code.
fn exact_integer(value: f64) -> Option<i64> {
    if !value.is_finite() || value.trunc() != value || value.abs() > MAX_EXACT_INTEGER {
        return None;
    }
    let integer = value as i64;
    // -0.0 is an integer that `as` would turn into +0.0: its bits must survive.
    ((integer as f64).to_bits() == value.to_bits()).then_some(integer)
}

impl ValueState {
    /// Writes `value`.
    pub(super) fn encode(&mut self, writer: &mut BitWriter, value: f64) {
        let bits = value.to_bits();
        if bits == self.bits {
            writer.bit(false);
            self.advance(bits);
            return;
        }
        let integer_dod = exact_integer(f64::from_bits(self.bits))
            .zip(exact_integer(value))
            .map(|(previous, current)| {
                current
                    .wrapping_sub(previous)
                    .wrapping_sub(self.integer_step)
            });
        let xor = bits ^ self.bits;
        let (leading, trailing) = (xor.leading_zeros(), xor.trailing_zeros());
        let in_window = self.window.filter(|(window_leading, window_trailing)| {
            leading >= *window_leading && trailing >= *window_trailing
        });
        let xor_cost = match in_window {
            Some((window_leading, window_trailing)) => 3 + 64 - window_leading - window_trailing,
            None => 3 + 12 + 64 - leading - trailing,
        };
        // A new window can be cheaper than an old wide one.
        let new_window_cost = 3 + 12 + 64 - leading - trailing;
        match integer_dod {
            Some(dod) if 2 + signed_cost(dod) <= xor_cost.min(new_window_cost) => {
                writer.write(0b10, 2);
                writer.signed(dod);
            }
            _ => {
                writer.write(0b11, 2);
                match in_window {
                    Some((window_leading, window_trailing)) if xor_cost <= new_window_cost => {
                        writer.bit(false);
                        writer.write(
                            xor >> window_trailing,
                            64 - window_leading - window_trailing,
                        );
                    }
                    _ => {
                        let length = 64 - leading - trailing;
                        writer.bit(true);
                        writer.write(u64::from(leading), 6);
                        writer.write(u64::from(length - 1), 6);
                        writer.write(xor >> trailing, length);
                        self.window = Some((leading, trailing));
                    }
                }
            }
        }
        self.advance(bits);
    }

    /// Reads the next value.
    pub(super) fn decode(&mut self, reader: &mut BitReader<'_>) -> Result<f64, CodecError> {
        let bits = if !reader.bit()? {
            self.bits
        } else if !reader.bit()? {
            let previous =
                exact_integer(f64::from_bits(self.bits)).ok_or(CodecError::IntegerAfterFraction)?;
            let dod = reader.signed()?;
            let current = previous.wrapping_add(self.integer_step).wrapping_add(dod);
            let value = current as f64;
            if exact_integer(value) != Some(current) {
                return Err(CodecError::IntegerOutOfRange);
            }
            value.to_bits()
        } else if !reader.bit()? {
            let (leading, trailing) = self.window.ok_or(CodecError::WindowBeforeAny)?;
            let meaningful = reader.read(64 - leading - trailing)?;
            self.bits ^ (meaningful << trailing)
        } else {
            let leading = reader.read(6)? as u32;
            let length = reader.read(6)? as u32 + 1;
            let trailing = 64_u32
                .checked_sub(leading + length)
                .ok_or(CodecError::WindowTooWide)?;
            let meaningful = reader.read(length)?;
            self.window = Some((leading, trailing));
            // A length of at least 1 leaves at most 63 trailing zeros: the shift fits.
            self.bits ^ meaningful.checked_shl(trailing).unwrap_or(0)
        };
        self.advance(bits);
        Ok(f64::from_bits(bits))
    }

    /// Moves the state past a value of `bits`, the same way on both sides.
    fn advance(&mut self, bits: u64) {
        self.integer_step = exact_integer(f64::from_bits(self.bits))
            .zip(exact_integer(f64::from_bits(bits)))
            .map_or(0, |(previous, current)| current.wrapping_sub(previous));
        self.bits = bits;
    }

    /// Writes an exposition timestamp (present or not), as the change of its step.
    pub(super) fn encode_timestamp(
        &mut self,
        writer: &mut BitWriter,
        timestamp: Option<i64>,
        reference: i64,
    ) {
        let Some(timestamp) = timestamp else {
            writer.bit(false);
            return;
        };
        writer.bit(true);
        let previous = self.timestamp.unwrap_or(reference);
        let step = timestamp.wrapping_sub(previous);
        writer.signed(step.wrapping_sub(self.timestamp_step));
        self.timestamp_step = step;
        self.timestamp = Some(timestamp);
    }

    /// Reads an exposition timestamp written by [`encode_timestamp`](Self::encode_timestamp).
    pub(super) fn decode_timestamp(
        &mut self,
        reader: &mut BitReader<'_>,
        reference: i64,
    ) -> Result<Option<i64>, CodecError> {
        if !reader.bit()? {
            return Ok(None);
        }
        let previous = self.timestamp.unwrap_or(reference);
        let step = self.timestamp_step.wrapping_add(reader.signed()?);
        let timestamp = previous.wrapping_add(step);
        self.timestamp_step = step;
        self.timestamp = Some(timestamp);
        Ok(Some(timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[f64]) -> u64 {
        let mut writer = BitWriter::default();
        let mut state = ValueState::default();
        for value in values {
            state.encode(&mut writer, *value);
        }
        let n_bits = writer.n_bits();
        let bytes = writer.finish();
        let mut reader = BitReader::new(&bytes);
        let mut state = ValueState::default();
        for value in values {
            let back = state.decode(&mut reader).unwrap();
            assert_eq!(
                back.to_bits(),
                value.to_bits(),
                "{value:?} came back as {back:?}"
            );
        }
        reader.finish().unwrap();
        n_bits
    }

    #[test]
    fn every_bit_pattern_survives() {
        let values = [
            0.0,
            -0.0,
            0.0,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_dead_beef_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            MAX_EXACT_INTEGER,
            -MAX_EXACT_INTEGER,
            MAX_EXACT_INTEGER + 2.0,
            1.0,
            -1.0,
            0.1,
            -0.0,
            -0.0,
            3.0,
            6.0,
            9.0,
            0.0,
            1e300,
            -1e-300,
        ];
        round_trip(&values);
    }

    #[test]
    fn a_steady_counter_costs_three_bits_a_value_and_a_flat_gauge_one() {
        let counter: Vec<f64> = (0..1000).map(|idx| f64::from(idx) * 3000.0).collect();
        let bits = round_trip(&counter);
        assert!(bits <= 3 * 1000 + 40, "{bits} bits");
        let gauge = vec![0.75; 1000];
        let bits = round_trip(&gauge);
        assert!(bits <= 1000 + 80, "{bits} bits");
        // A counter reset is one larger step, then steady again.
        let mut reset: Vec<f64> = (0..500).map(|idx| f64::from(idx) * 7.0).collect();
        reset.extend((0..500).map(|idx| f64::from(idx) * 7.0));
        let bits = round_trip(&reset);
        assert!(bits <= 3 * 1000 + 120, "{bits} bits");
    }

    #[test]
    fn timestamps_round_trip_present_or_not() {
        let stamps = [
            Some(1_700_000_000_000),
            None,
            Some(1_700_000_015_000),
            Some(1_700_000_030_000),
            Some(i64::MIN),
            Some(i64::MAX),
            None,
            Some(0),
        ];
        let mut writer = BitWriter::default();
        let mut state = ValueState::default();
        for stamp in stamps {
            state.encode_timestamp(&mut writer, stamp, 1_699_999_999_000);
        }
        let bytes = writer.finish();
        let mut reader = BitReader::new(&bytes);
        let mut state = ValueState::default();
        for stamp in stamps {
            assert_eq!(
                state
                    .decode_timestamp(&mut reader, 1_699_999_999_000)
                    .unwrap(),
                stamp
            );
        }
    }
}
