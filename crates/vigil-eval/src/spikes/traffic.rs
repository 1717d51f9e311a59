//! Clean multi-day per-key token traffic built from the Azure trace's hour: its requests
//! split over synthetic API keys with Zipf shares, the hour tiled into days, and a diurnal
//! level applied by thinning requests.

use std::fmt::Write as _;

use anyhow::Context as _;

use crate::azure;

/// The scrape interval of a LiteLLM gateway in the shipped config.
pub const SCRAPE_MS: i64 = 15_000;

/// Scrapes in an hour (one tile of the trace).
pub const SCRAPES_PER_HOUR: usize = 240;

/// Scrapes in a day.
pub const SCRAPES_PER_DAY: usize = 24 * SCRAPES_PER_HOUR;

/// Synthetic keys per service.
pub const KEYS_PER_SERVICE: usize = 12;

/// Midnight UTC of Monday 2023-11-20, the start of day 0 (a whole number of days since the
/// epoch, so the detectors' hour-of-day slots line up with the synthetic clock).
pub const DAY0_MS: i64 = 1_700_438_400_000;

/// The seed of every random choice.
pub const SEED: u64 = 0x5EED_0016_0004;

/// The diurnal level at the start of each hour UTC (linear in between), as the share of
/// the trace's requests kept: the trace's own level at the midday peak, under a third of it
/// at 04:00.
pub const DIURNAL: [f64; 24] = [
    0.45, 0.40, 0.36, 0.33, 0.31, 0.32, 0.38, 0.50, 0.68, 0.85, 0.95, 1.00, 1.00, 0.99, 0.98, 0.96,
    0.93, 0.88, 0.80, 0.71, 0.63, 0.56, 0.51, 0.48,
];

/// One service of the trace: each request's tokens (context plus generated) in the 15 s
/// bucket it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTrace {
    /// The service's name (`code`, `conversation`), which prefixes its keys.
    pub name: String,
    /// Per 15 s bucket from the first request's, the tokens of each request in it, in file
    /// order.
    pub buckets: Vec<Vec<f64>>,
}

/// Reads one trace file into requests per 15 s bucket, with [`azure::per_bucket`] doing
/// every parse: the whole file first (so a bad row is named by its line), then row by row
/// (which places each request in its bucket).
///
/// # Errors
/// A malformed file, as [`azure::per_bucket`] reports it.
pub fn load_service(name: &str, text: &str, file: &str) -> anyhow::Result<ServiceTrace> {
    let whole = azure::per_bucket(text, file, SCRAPE_MS)?;
    let mut buckets = vec![Vec::new(); whole.tokens.len()];
    let header = text.lines().next().unwrap_or_default();
    let mut row = String::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        row.clear();
        let _ = write!(row, "{header}\n{line}\n");
        let one = azure::per_bucket(&row, file, SCRAPE_MS)
            .with_context(|| format!("{file}:{}", index + 1))?;
        let slot = usize::try_from((one.first_minute_ms - whole.first_minute_ms) / SCRAPE_MS)
            .with_context(|| format!("{file}:{}: before the first row", index + 1))?;
        if let (Some(bucket), Some(tokens)) = (buckets.get_mut(slot), one.tokens.first()) {
            bucket.push(*tokens);
        }
    }
    Ok(ServiceTrace {
        name: name.to_owned(),
        buckets,
    })
}

/// splitmix64 (Steele, Lea and Flood 2014): a tiny deterministic generator, the same bits on
/// every machine.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// The cumulative Zipf (exponent 1) shares of `n` keys: key k (from 0) gets a share
/// proportional to 1 / (k + 1).
#[must_use]
pub fn zipf_cumulative(n: usize) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    weights
        .iter()
        .map(|weight| {
            running += weight / total;
            running
        })
        .collect()
}

/// The key a uniform draw `u` picks from cumulative shares (the last key past rounding).
#[must_use]
pub fn pick(cumulative: &[f64], u: f64) -> usize {
    cumulative
        .iter()
        .position(|edge| u < *edge)
        .unwrap_or(cumulative.len().saturating_sub(1))
}

/// The diurnal level of scrape bucket `scrape` (counted from the start of day 0).
#[must_use]
pub fn diurnal(scrape: usize) -> f64 {
    let in_day = scrape % SCRAPES_PER_DAY;
    let hour = in_day / SCRAPES_PER_HOUR;
    let fraction = (in_day % SCRAPES_PER_HOUR) as f64 / SCRAPES_PER_HOUR as f64;
    let here = DIURNAL.get(hour).copied().unwrap_or(1.0);
    let next = DIURNAL.get((hour + 1) % 24).copied().unwrap_or(1.0);
    here + (next - here) * fraction
}

/// Clean traffic: per key, the tokens and the requests of each 15 s scrape interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// The keys, sorted (`code-01` ... `conversation-12`).
    pub keys: Vec<String>,
    /// Per key (as `keys`), the tokens in each scrape interval.
    pub tokens: Vec<Vec<f64>>,
    /// Per key (as `keys`), the requests in each scrape interval.
    pub requests: Vec<Vec<f64>>,
    /// The number of scrapes.
    pub n_scrapes: usize,
}

/// What a detector watches per key: the gateway's counter of tokens, or of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `litellm_total_tokens_metric_total`.
    Tokens,
    /// `litellm_requests_metric_total`.
    Requests,
}

impl Signal {
    /// The counter's metric name, as LiteLLM exports it.
    #[must_use]
    pub const fn metric(self) -> &'static str {
        match self {
            Signal::Tokens => "litellm_total_tokens_metric_total",
            Signal::Requests => "litellm_requests_metric_total",
        }
    }

    /// Per key, its amount in each scrape interval.
    #[must_use]
    pub fn rows(self, traffic: &Traffic) -> &[Vec<f64>] {
        match self {
            Signal::Tokens => &traffic.tokens,
            Signal::Requests => &traffic.requests,
        }
    }
}

impl Traffic {
    /// The time of scrape `scrape`: the end of its interval.
    #[must_use]
    pub fn scrape_at(scrape: usize) -> i64 {
        DAY0_MS + (scrape as i64 + 1) * SCRAPE_MS
    }

    /// The mean tokens per scrape of `key` over the hour before `scrape` (or what there is
    /// of it), the "typical rate" an injection multiplies.
    #[must_use]
    pub fn typical(&self, key: usize, scrape: usize) -> f64 {
        self.typical_of(Signal::Tokens, key, scrape)
    }

    /// As [`Traffic::typical`], of `signal`: a loop re-sending the key's typical request
    /// multiplies its requests and its tokens alike.
    #[must_use]
    pub fn typical_of(&self, signal: Signal, key: usize, scrape: usize) -> f64 {
        let from = scrape.saturating_sub(SCRAPES_PER_HOUR);
        let Some(window) = signal
            .rows(self)
            .get(key)
            .and_then(|series| series.get(from..scrape))
        else {
            return 0.0;
        };
        window.iter().sum::<f64>() / window.len().max(1) as f64
    }
}

/// Builds `n_days` of clean traffic: hour tile `t` (24 a day) reads the service's buckets
/// cyclically from a rotation drawn for the tile, assigns each request to one of the
/// service's keys by its Zipf share with a fresh draw per tile, and keeps it with the
/// probability [`diurnal`] of its scrape.
#[must_use]
pub fn build(services: &[ServiceTrace], n_days: usize, seed: u64) -> Traffic {
    let n_scrapes = n_days * SCRAPES_PER_DAY;
    let cumulative = zipf_cumulative(KEYS_PER_SERVICE);
    let mut keys = Vec::new();
    let mut tokens = Vec::new();
    let mut requests = Vec::new();
    for (service_index, service) in services.iter().enumerate() {
        let mut per_key = vec![vec![0.0; n_scrapes]; KEYS_PER_SERVICE];
        let mut per_key_requests = vec![vec![0.0; n_scrapes]; KEYS_PER_SERVICE];
        let n_buckets = service.buckets.len().max(1);
        for tile in 0..n_days * 24 {
            let mut random = SplitMix64::new(
                seed ^ ((service_index as u64) << 48) ^ (tile as u64).wrapping_mul(0x1_0001),
            );
            let rotation = (random.next_u64() % n_buckets as u64) as usize;
            for position in 0..SCRAPES_PER_HOUR {
                let scrape = tile * SCRAPES_PER_HOUR + position;
                let level = diurnal(scrape);
                let bucket = service
                    .buckets
                    .get((rotation + position) % n_buckets)
                    .map_or(&[][..], Vec::as_slice);
                for request in bucket {
                    // Both draws are made for every request, so the stream does not depend on
                    // which requests were kept.
                    let keep = random.unit() < level;
                    let key = pick(&cumulative, random.unit());
                    if keep
                        && let Some(cell) = per_key.get_mut(key).and_then(|row| row.get_mut(scrape))
                    {
                        *cell += request;
                        if let Some(count) = per_key_requests
                            .get_mut(key)
                            .and_then(|row| row.get_mut(scrape))
                        {
                            *count += 1.0;
                        }
                    }
                }
            }
        }
        for (rank, (row, counts)) in per_key.into_iter().zip(per_key_requests).enumerate() {
            keys.push(format!("{}-{:02}", service.name, rank + 1));
            tokens.push(row);
            requests.push(counts);
        }
    }
    // Sorted keys, so a key's index is its place in the detectors' group order.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys.get(*a).cmp(&keys.get(*b)));
    let keys_sorted = order.iter().filter_map(|i| keys.get(*i).cloned()).collect();
    let sorted = |rows: &[Vec<f64>]| -> Vec<Vec<f64>> {
        order.iter().filter_map(|i| rows.get(*i).cloned()).collect()
    };
    Traffic {
        keys: keys_sorted,
        tokens: sorted(&tokens),
        requests: sorted(&requests),
        n_scrapes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                        2023-11-16 18:17:03.9799600,4808,10\n\
                        2023-11-16 18:17:14.0000001,100,1\n\
                        2023-11-16 18:17:16.5,7,3\n\
                        2023-11-16 18:17:46.5,1,1\n";

    #[test]
    fn requests_land_in_their_15_second_buckets() {
        let service = load_service("code", TEXT, "t.csv").unwrap();
        assert_eq!(
            service.buckets,
            vec![vec![4818.0, 101.0], vec![10.0], vec![], vec![2.0]]
        );
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let text = format!("{TEXT}2023-11-16 18:18:00,x,1\n");
        let error = format!("{:#}", load_service("code", &text, "t.csv").unwrap_err());
        assert!(error.starts_with("t.csv:6: ContextTokens `x`"), "{error}");
    }

    #[test]
    fn zipf_shares_fall_with_rank_and_sum_to_one() {
        let cumulative = zipf_cumulative(12);
        assert!((cumulative[11] - 1.0).abs() < 1e-12);
        let share_1 = cumulative[0];
        let share_2 = cumulative[1] - cumulative[0];
        assert!((share_1 / share_2 - 2.0).abs() < 1e-12);
        assert_eq!(pick(&cumulative, 0.0), 0);
        assert_eq!(pick(&cumulative, 0.999_999_999_999), 11);
    }

    #[test]
    fn the_diurnal_level_interpolates_between_hours_and_wraps_at_midnight() {
        assert_eq!(diurnal(0), DIURNAL[0]);
        assert_eq!(diurnal(12 * SCRAPES_PER_HOUR), DIURNAL[12]);
        let half_past_23 = 23 * SCRAPES_PER_HOUR + SCRAPES_PER_HOUR / 2;
        assert!((diurnal(half_past_23) - (DIURNAL[23] + DIURNAL[0]) / 2.0).abs() < 1e-12);
        assert_eq!(diurnal(SCRAPES_PER_DAY + 7), diurnal(7));
    }

    #[test]
    fn every_kept_request_goes_to_one_key_and_the_peak_keeps_them_all() {
        let service = load_service("code", TEXT, "t.csv").unwrap();
        let traffic = build(std::slice::from_ref(&service), 1, 7);
        assert_eq!(traffic.keys.len(), KEYS_PER_SERVICE);
        assert_eq!(traffic.keys[0], "code-01");
        // At 11:00 the level is 1, so the hour holds every bucket 60 times over (cyclic reads
        // of 4 buckets over 240 scrapes) and no request is thinned away.
        let hour = 11 * SCRAPES_PER_HOUR..12 * SCRAPES_PER_HOUR;
        let total: f64 = traffic
            .tokens
            .iter()
            .map(|row| row[hour.clone()].iter().sum::<f64>())
            .sum();
        assert_eq!(total, 60.0 * (4818.0 + 101.0 + 10.0 + 2.0));
        // At 04:00 about a third is kept.
        let night = 4 * SCRAPES_PER_HOUR..5 * SCRAPES_PER_HOUR;
        let kept: f64 = traffic
            .tokens
            .iter()
            .map(|row| row[night.clone()].iter().sum::<f64>())
            .sum();
        assert!(kept < 0.6 * total, "{kept} of {total}");
        // Every kept request is counted once, on the key that took its tokens.
        let n_requests: f64 = traffic
            .requests
            .iter()
            .map(|row| row[hour.clone()].iter().sum::<f64>())
            .sum();
        assert_eq!(n_requests, 60.0 * 4.0);
        for (tokens, requests) in traffic.tokens.iter().zip(&traffic.requests) {
            for (tokens, requests) in tokens.iter().zip(requests) {
                assert_eq!(*tokens > 0.0, *requests > 0.0);
            }
        }
        assert_eq!(build(std::slice::from_ref(&service), 1, 7), traffic);
    }
}
