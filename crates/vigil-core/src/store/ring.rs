//! One series' points: a ring buffer of (timestamp, value) in two columns, 12 bytes a point.
//!
//! Timestamps are stored as `u32` millisecond offsets from a per-ring base (49 days of span),
//! values as `f64`. A staleness marker is a point whose value has the bits of
//! [`STALE_MARKER_BITS`], the same special NaN Prometheus writes.

use std::mem::size_of;

/// The bits of the value that marks a series stale at a point's time (Prometheus'
/// `value.StaleNaN`). Ingested NaNs are canonicalized, so no sample can carry these bits.
pub(crate) const STALE_MARKER_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `value` is a staleness marker.
pub(crate) fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_MARKER_BITS
}

/// The smallest capacity a ring grows to, so that short-lived series stay small.
const MIN_CAPACITY: usize = 4;

/// Points in time order; the oldest is dropped when a bound is reached.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    base_ms: i64,
    offsets: Box<[u32]>,
    values: Box<[f64]>,
    /// The physical index of the oldest point.
    head: usize,
    len: usize,
}

impl Ring {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn capacity(&self) -> usize {
        self.offsets.len()
    }

    fn physical(&self, logical: usize) -> usize {
        let idx = self.head + logical;
        if idx >= self.capacity() {
            idx - self.capacity()
        } else {
            idx
        }
    }

    /// The point at logical index `idx` (0 is the oldest).
    pub(crate) fn get(&self, idx: usize) -> Option<(i64, f64)> {
        if idx >= self.len {
            return None;
        }
        let physical = self.physical(idx);
        let offset = *self.offsets.get(physical)?;
        let value = *self.values.get(physical)?;
        Some((self.base_ms + i64::from(offset), value))
    }

    /// The newest point.
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        self.get(self.len.checked_sub(1)?)
    }

    /// The oldest point.
    pub(crate) fn first(&self) -> Option<(i64, f64)> {
        self.get(0)
    }

    /// The points with logical indices in `range`, oldest first.
    pub(crate) fn iter_range(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (i64, f64)> + Clone + '_ {
        range.filter_map(|idx| self.get(idx))
    }

    /// The number of leading points whose timestamp satisfies `before` (which must be true
    /// for a prefix of the points and false after it), by binary search.
    pub(crate) fn partition_point(&self, before: impl Fn(i64) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid) {
                Some((at, _)) if before(at) => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }

    /// Drops the oldest point.
    pub(crate) fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.head = self.physical(1);
        self.len -= 1;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// The time of the oldest point, reading only the timestamp column.
    fn first_at(&self) -> Option<i64> {
        if self.len == 0 {
            return None;
        }
        let offset = *self.offsets.get(self.head)?;
        Some(self.base_ms + i64::from(offset))
    }

    /// Drops the points at or before `cutoff_ms`.
    pub(crate) fn evict_through(&mut self, cutoff_ms: i64) {
        while self.first_at().is_some_and(|at| at <= cutoff_ms) {
            self.pop_front();
        }
    }

    /// Appends a point, dropping the oldest when `max_points` are held.
    ///
    /// The caller guarantees that `at_ms` is later than the newest point.
    pub(crate) fn push(&mut self, at_ms: i64, value: f64, max_points: usize) {
        // INVARIANT: points are strictly increasing in time.
        debug_assert!(self.last().is_none_or(|(last, _)| last < at_ms));
        let offset = self.offset_for(at_ms);
        if self.len >= max_points.max(1) {
            self.pop_front();
        }
        if self.len == self.capacity() {
            self.grow(max_points);
        }
        let physical = self.physical(self.len);
        if let (Some(slot_offset), Some(slot_value)) = (
            self.offsets.get_mut(physical),
            self.values.get_mut(physical),
        ) {
            *slot_offset = offset;
            *slot_value = value;
            self.len += 1;
        }
    }

    /// The offset of `at_ms` from the base, rebasing (and, past a 49-day span, dropping the
    /// oldest points) when it does not fit in a `u32`.
    fn offset_for(&mut self, at_ms: i64) -> u32 {
        loop {
            if self.len == 0 {
                self.base_ms = at_ms;
                self.head = 0;
                return 0;
            }
            // The common case reads nothing but the base.
            if let Ok(offset) = u32::try_from(at_ms.saturating_sub(self.base_ms)) {
                return offset;
            }
            let oldest = self.first_at().unwrap_or(self.base_ms);
            if oldest > self.base_ms {
                let shift = u32::try_from(oldest - self.base_ms).unwrap_or(0);
                for stored in &mut self.offsets {
                    *stored = stored.saturating_sub(shift);
                }
                self.base_ms = oldest;
            } else {
                self.pop_front();
            }
        }
    }

    fn grow(&mut self, max_points: usize) {
        let new_capacity = (self.capacity() * 2)
            .max(MIN_CAPACITY)
            .min(max_points.max(1))
            .max(self.len + 1);
        let mut offsets = Vec::with_capacity(new_capacity);
        let mut values = Vec::with_capacity(new_capacity);
        for idx in 0..self.len {
            let physical = self.physical(idx);
            offsets.push(self.offsets.get(physical).copied().unwrap_or(0));
            values.push(self.values.get(physical).copied().unwrap_or(f64::NAN));
        }
        offsets.resize(new_capacity, 0);
        values.resize(new_capacity, 0.0);
        self.offsets = offsets.into_boxed_slice();
        self.values = values.into_boxed_slice();
        self.head = 0;
    }

    /// Heap bytes held (the inline part is counted with the series).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.capacity() * (size_of::<u32>() + size_of::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(ring: &Ring) -> Vec<(i64, f64)> {
        ring.iter_range(0..ring.len()).collect()
    }

    #[test]
    fn keeps_the_newest_points_up_to_the_count_bound() {
        let mut ring = Ring::default();
        for idx in 0..10 {
            ring.push(idx * 1000, idx as f64, 4);
        }
        assert_eq!(
            points(&ring),
            vec![(6000, 6.0), (7000, 7.0), (8000, 8.0), (9000, 9.0)]
        );
        assert_eq!(ring.heap_bytes(), 4 * 12);
    }

    #[test]
    fn grows_by_doubling_up_to_the_bound() {
        let mut ring = Ring::default();
        for idx in 0..5 {
            ring.push(idx, 0.0, 240);
        }
        assert_eq!(ring.capacity(), 8);
        for idx in 5..300 {
            ring.push(idx, 0.0, 240);
        }
        assert_eq!(ring.capacity(), 240);
        assert_eq!(ring.len(), 240);
        assert_eq!(ring.first(), Some((60, 0.0)));
    }

    #[test]
    fn evicts_by_time_and_searches() {
        let mut ring = Ring::default();
        for idx in 0..6 {
            ring.push(idx * 15_000, idx as f64, 100);
        }
        assert_eq!(ring.partition_point(|at| at <= 30_000), 3);
        ring.evict_through(30_000);
        assert_eq!(
            points(&ring),
            vec![(45_000, 3.0), (60_000, 4.0), (75_000, 5.0)]
        );
        assert_eq!(ring.partition_point(|at| at <= 30_000), 0);
        assert_eq!(ring.partition_point(|at| at <= 1_000_000), 3);
    }

    #[test]
    fn rebases_when_offsets_overflow() {
        let mut ring = Ring::default();
        let day_ms = 86_400_000_i64;
        ring.push(0, 1.0, 100);
        ring.push(40 * day_ms, 2.0, 100);
        // 60 days after the first point does not fit a u32 offset from it: the ring rebases on
        // the oldest point, which is itself too far, so it is dropped.
        ring.push(60 * day_ms, 3.0, 100);
        assert_eq!(points(&ring), vec![(40 * day_ms, 2.0), (60 * day_ms, 3.0)]);
        ring.push(61 * day_ms, 4.0, 100);
        assert_eq!(ring.last(), Some((61 * day_ms, 4.0)));
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn negative_timestamps_work() {
        let mut ring = Ring::default();
        ring.push(-5000, 1.0, 10);
        ring.push(-1000, 2.0, 10);
        assert_eq!(points(&ring), vec![(-5000, 1.0), (-1000, 2.0)]);
    }
}
