//! The runaways injected into one key: retry loops, slow ramps, short bursts and a nightly
//! batch, each as the extra tokens it adds per scrape on top of the key's clean traffic.

use super::traffic::{SCRAPES_PER_DAY, SCRAPES_PER_HOUR};

/// Scrapes in a minute at 15 s.
const SCRAPES_PER_MINUTE: usize = 4;

/// One runaway shape. Rates are multiples of the key's typical rate (its mean over the hour
/// before the injection starts), held fixed for the whole injection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A retry loop re-sending the key's typical request: the rate is `factor` times the
    /// typical one for `scrapes` scrapes.
    Loop {
        /// The multiple of the typical rate.
        factor: f64,
        /// How many scrapes it lasts.
        scrapes: usize,
    },
    /// The rate climbs linearly to `peak` times the typical one over `ramp_scrapes`, then
    /// stays there for `hold_scrapes`.
    Ramp {
        /// The multiple reached at the top.
        peak: f64,
        /// Scrapes of the climb.
        ramp_scrapes: usize,
        /// Scrapes held at the top.
        hold_scrapes: usize,
    },
    /// A short burst that should not page: `factor` times the typical rate for `scrapes`.
    Burst {
        /// The multiple of the typical rate.
        factor: f64,
        /// How many scrapes it lasts (1 or 2).
        scrapes: usize,
    },
    /// A nightly batch: `extra` times the typical rate added for `scrapes`, at the same time
    /// on `nights` consecutive days.
    Nightly {
        /// The added volume, as a multiple of the typical rate.
        extra: f64,
        /// How many scrapes each night's batch lasts.
        scrapes: usize,
        /// On how many nights it runs.
        nights: usize,
    },
}

impl Shape {
    /// The shapes of the report, in its row order.
    #[must_use]
    pub fn all() -> Vec<Shape> {
        let minutes = |n: usize| n * SCRAPES_PER_MINUTE;
        vec![
            Shape::Loop {
                factor: 3.0,
                scrapes: minutes(15),
            },
            Shape::Loop {
                factor: 5.0,
                scrapes: minutes(15),
            },
            Shape::Loop {
                factor: 10.0,
                scrapes: minutes(15),
            },
            Shape::Loop {
                factor: 30.0,
                scrapes: minutes(15),
            },
            Shape::Ramp {
                peak: 10.0,
                ramp_scrapes: minutes(30),
                hold_scrapes: minutes(10),
            },
            Shape::Ramp {
                peak: 10.0,
                ramp_scrapes: minutes(120),
                hold_scrapes: minutes(10),
            },
            Shape::Burst {
                factor: 3.0,
                scrapes: 1,
            },
            Shape::Burst {
                factor: 3.0,
                scrapes: 2,
            },
            Shape::Burst {
                factor: 5.0,
                scrapes: 1,
            },
            Shape::Burst {
                factor: 5.0,
                scrapes: 2,
            },
            Shape::Nightly {
                extra: 20.0,
                scrapes: minutes(30),
                nights: 4,
            },
        ]
    }

    /// The shape's name in the report.
    #[must_use]
    pub fn label(&self) -> String {
        match *self {
            Shape::Loop { factor, scrapes } => {
                format!("loop {factor}x {}m", scrapes / SCRAPES_PER_MINUTE)
            }
            Shape::Ramp {
                peak,
                ramp_scrapes,
                hold_scrapes,
            } => format!(
                "ramp to {peak}x in {}m +{}m",
                ramp_scrapes / SCRAPES_PER_MINUTE,
                hold_scrapes / SCRAPES_PER_MINUTE
            ),
            Shape::Burst { factor, scrapes } => format!("burst {factor}x {}s", scrapes * 15),
            Shape::Nightly {
                extra,
                scrapes,
                nights,
            } => format!(
                "nightly +{extra}x {}m x{nights}",
                scrapes / SCRAPES_PER_MINUTE
            ),
        }
    }

    /// The injection's episodes as (first scrape, scrapes) relative to its start: one, or
    /// one a night.
    #[must_use]
    pub fn episodes(&self) -> Vec<(usize, usize)> {
        match *self {
            Shape::Loop { scrapes, .. } | Shape::Burst { scrapes, .. } => vec![(0, scrapes)],
            Shape::Ramp {
                ramp_scrapes,
                hold_scrapes,
                ..
            } => vec![(0, ramp_scrapes + hold_scrapes)],
            Shape::Nightly {
                scrapes, nights, ..
            } => (0..nights)
                .map(|night| (night * SCRAPES_PER_DAY, scrapes))
                .collect(),
        }
    }

    /// The key's rate at scrape `offset` from the start as a multiple of its typical rate
    /// (1 outside the injection).
    #[must_use]
    pub fn factor_at(&self, offset: usize) -> f64 {
        let inside = self
            .episodes()
            .iter()
            .any(|(first, length)| (*first..first + length).contains(&offset));
        if !inside {
            return 1.0;
        }
        match *self {
            Shape::Loop { factor, .. } | Shape::Burst { factor, .. } => factor,
            Shape::Ramp {
                peak, ramp_scrapes, ..
            } => {
                if offset < ramp_scrapes {
                    1.0 + (peak - 1.0) * (offset + 1) as f64 / ramp_scrapes as f64
                } else {
                    peak
                }
            }
            Shape::Nightly { extra, .. } => 1.0 + extra,
        }
    }

    /// The extra tokens of each scrape from the start to the end of the last episode, for a
    /// key whose typical rate is `typical` tokens per scrape.
    #[must_use]
    pub fn extra_tokens(&self, typical: f64) -> Vec<f64> {
        let length = self
            .episodes()
            .iter()
            .map(|(first, scrapes)| first + scrapes)
            .max()
            .unwrap_or(0);
        (0..length)
            .map(|offset| (self.factor_at(offset) - 1.0) * typical)
            .collect()
    }

    /// The first scrape (from the start) at which the rate is at least 5 times the typical
    /// one, the runaway the first target is about; `None` if it never is.
    #[must_use]
    pub fn reaches_5x_at(&self) -> Option<usize> {
        match self {
            Shape::Burst { .. } | Shape::Nightly { .. } => None,
            Shape::Loop { .. } | Shape::Ramp { .. } => {
                let (first, length) = self.episodes().first().copied()?;
                (first..first + length).find(|offset| self.factor_at(*offset) >= 5.0)
            }
        }
    }

    /// Whether the shape should page (a burst should not).
    #[must_use]
    pub fn is_burst(&self) -> bool {
        matches!(self, Shape::Burst { .. })
    }
}

/// When injections start: (day, hour, minute). Days from 1, so that a detector with daily
/// memory has seen one clean day first.
pub const STARTS: [(usize, usize, usize); 4] = [(1, 3, 10), (1, 10, 20), (1, 14, 35), (2, 20, 50)];

/// When nightly batches start on their first night (day 1): inside one hour of the day, across
/// the hour boundary, and across midnight.
pub const NIGHTLY_STARTS: [(usize, usize, usize); 3] = [(1, 1, 0), (1, 2, 45), (1, 23, 50)];

/// The keys that runaways are injected into: ranks 1, 3, 6 and 10 of each service.
pub const INJECTED_RANKS: [usize; 4] = [1, 3, 6, 10];

/// The scrape index of (day, hour, minute).
#[must_use]
pub fn scrape_of(day: usize, hour: usize, minute: usize) -> usize {
    day * SCRAPES_PER_DAY + hour * SCRAPES_PER_HOUR + minute * SCRAPES_PER_MINUTE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(shape: &Shape, typical: f64) -> f64 {
        shape.extra_tokens(typical).iter().sum()
    }

    #[test]
    fn a_loop_adds_factor_minus_one_times_the_typical_rate_every_scrape() {
        let shape = Shape::Loop {
            factor: 5.0,
            scrapes: 60,
        };
        assert_eq!(shape.extra_tokens(300.0).len(), 60);
        assert_eq!(volume(&shape, 300.0), 4.0 * 300.0 * 60.0);
        assert_eq!(shape.factor_at(59), 5.0);
        assert_eq!(shape.factor_at(60), 1.0);
        assert_eq!(shape.reaches_5x_at(), Some(0));
        assert_eq!(
            Shape::Loop {
                factor: 3.0,
                scrapes: 60
            }
            .reaches_5x_at(),
            None
        );
    }

    #[test]
    fn a_ramp_climbs_linearly_to_its_peak_then_holds() {
        let shape = Shape::Ramp {
            peak: 10.0,
            ramp_scrapes: 120,
            hold_scrapes: 40,
        };
        let extra = shape.extra_tokens(100.0);
        assert_eq!(extra.len(), 160);
        assert!((extra[0] - 9.0 * 100.0 / 120.0).abs() < 1e-9);
        assert!((extra[119] - 900.0).abs() < 1e-9);
        assert_eq!(extra[159], 900.0);
        // The climb adds (peak - 1) * typical * (n + 1) / 2 over n scrapes, the hold the top.
        let expected = 900.0 * 121.0 / 2.0 + 900.0 * 40.0;
        assert!((volume(&shape, 100.0) - expected).abs() < 1e-6);
        // 5x is 4/9 of the way up: 1 + 9 * (k + 1) / 120 >= 5 first at k = 53.
        assert_eq!(shape.reaches_5x_at(), Some(53));
        assert!(shape.factor_at(52) < 5.0);
    }

    #[test]
    fn a_nightly_batch_repeats_at_the_same_time_each_day() {
        let shape = Shape::Nightly {
            extra: 20.0,
            scrapes: 120,
            nights: 3,
        };
        let extra = shape.extra_tokens(10.0);
        assert_eq!(extra.len(), 2 * SCRAPES_PER_DAY + 120);
        assert_eq!(volume(&shape, 10.0), 3.0 * 120.0 * 200.0);
        assert_eq!(extra[SCRAPES_PER_DAY], 200.0);
        assert_eq!(extra[SCRAPES_PER_DAY + 120], 0.0);
        assert_eq!(shape.episodes()[2], (2 * SCRAPES_PER_DAY, 120));
        assert_eq!(shape.reaches_5x_at(), None);
    }

    #[test]
    fn a_burst_is_one_or_two_scrapes_and_not_a_5x_runaway() {
        let shape = Shape::Burst {
            factor: 5.0,
            scrapes: 2,
        };
        assert_eq!(shape.extra_tokens(50.0), vec![200.0, 200.0]);
        assert!(shape.is_burst());
        assert_eq!(shape.reaches_5x_at(), None);
        assert_eq!(shape.label(), "burst 5x 30s");
    }

    #[test]
    fn start_times_are_scrape_indices() {
        assert_eq!(scrape_of(1, 0, 0), SCRAPES_PER_DAY);
        assert_eq!(scrape_of(0, 2, 45), 2 * 240 + 45 * 4);
    }
}
