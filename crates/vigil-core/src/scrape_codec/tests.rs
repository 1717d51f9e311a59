//! Round trips of whole batches: adversarial values and label sets, series that come and go,
//! interleaved sources, and a property test over random batches; damaged data is refused,
//! never a panic.

use std::sync::Arc;

use super::*;

/// A small deterministic generator (xorshift64*), so that every run tests the same batches.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: Option<i64>) -> Sample {
    Sample {
        name: name.to_owned(),
        labels: labels.iter().copied().collect(),
        value,
        timestamp_ms,
    }
}

/// Encodes `scrapes`, checks that they decode to the same, bit for bit; returns the batch.
fn round_trip(scrapes: &[DecodedScrape]) -> EncodedBatch {
    let mut encoder = BatchEncoder::default();
    for scrape in scrapes {
        encoder.push(
            scrape.at_ms,
            &scrape.source,
            scrape.scraped_at,
            &scrape.samples,
        );
    }
    assert_eq!(encoder.n_scrapes() as usize, scrapes.len());
    let batch = encoder.finish();
    // The dictionary goes through JSON, as the ledger stores it.
    let json = serde_json::to_string(&batch.dictionary).unwrap();
    let dictionary: SeriesDictionary = serde_json::from_str(&json).unwrap();
    assert_eq!(dictionary, batch.dictionary);
    let decoded: Vec<DecodedScrape> = BatchDecoder::new(
        Arc::new(dictionary),
        batch.data.clone(),
        batch.first_at_ms,
        batch.n_scrapes,
    )
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(decoded.len(), scrapes.len());
    for (idx, (back, original)) in decoded.iter().zip(scrapes).enumerate() {
        assert_eq!(
            (back.at_ms, &back.source, back.scraped_at),
            (original.at_ms, &original.source, original.scraped_at),
            "scrape {idx}"
        );
        assert_eq!(back.samples.len(), original.samples.len(), "scrape {idx}");
        for (back, original) in back.samples.iter().zip(&original.samples) {
            assert_eq!(
                back.value.to_bits(),
                original.value.to_bits(),
                "scrape {idx}"
            );
            assert_eq!(
                (&back.name, &back.labels, back.timestamp_ms),
                (&original.name, &original.labels, original.timestamp_ms),
                "scrape {idx}"
            );
        }
    }
    batch
}

fn scrape(at_ms: i64, source: &str, samples: Vec<Sample>) -> DecodedScrape {
    DecodedScrape {
        at_ms,
        source: source.to_owned(),
        scraped_at: Timestamp(at_ms - 3),
        samples,
    }
}

const ODD_VALUES: [f64; 14] = [
    f64::NAN,
    -f64::NAN,
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    1e-320,
    9_007_199_254_740_993.0,
    -9_007_199_254_740_992.0,
    0.1,
    42.0,
];

#[test]
fn odd_values_survive_in_every_order() {
    let mut scrapes = Vec::new();
    let payload_nan = f64::from_bits(0x7ff4_0000_dead_beef);
    for (round, rotate) in (0..ODD_VALUES.len()).enumerate() {
        let mut values = ODD_VALUES.to_vec();
        values.rotate_left(rotate);
        values.push(payload_nan);
        let samples = values
            .iter()
            .enumerate()
            .map(|(idx, value)| sample("m", &[("i", &idx.to_string())], *value, None))
            .collect();
        scrapes.push(scrape(1_000 + 15_000 * round as i64, "s", samples));
    }
    round_trip(&scrapes);
}

#[test]
fn series_come_and_go_repeat_and_reorder_and_counters_reset() {
    let a = |value| sample("requests_total", &[("key", "a")], value, None);
    let b = |value| sample("requests_total", &[("key", "b")], value, None);
    let c = |value| sample("latency", &[("key", "a")], value, Some(1_700_000_000_000));
    let scrapes = vec![
        scrape(0, "gw", vec![a(10.0), b(5.0)]),
        scrape(15_000, "gw", vec![a(20.0), b(5.5)]),
        // b disappears, c appears, a resets.
        scrape(30_000, "gw", vec![a(1.0), c(0.25)]),
        // Empty scrape.
        scrape(45_000, "gw", vec![]),
        // The same series twice, out of order, and b returns.
        scrape(60_000, "gw", vec![c(0.5), b(6.0), a(2.0), a(2.0)]),
        scrape(75_000, "gw", vec![c(0.5), b(6.0), a(2.0), a(2.0)]),
        // Another source with a series of the same name and labels is another series.
        scrape(75_001, "other", vec![a(-1.0)]),
        // Time going backwards and timestamps missing on some samples.
        scrape(
            10,
            "gw",
            vec![
                sample("latency", &[("key", "a")], 0.75, None),
                sample("latency", &[("key", "a")], 0.75, Some(i64::MIN)),
                sample("latency", &[("key", "a")], 0.75, Some(i64::MAX)),
            ],
        ),
    ];
    let batch = round_trip(&scrapes);
    assert_eq!(batch.dictionary.sources.len(), 2);
    assert_eq!(batch.dictionary.sources[0].series.len(), 3);
    assert_eq!(batch.n_samples, 18);
}

#[test]
fn huge_label_sets_and_odd_text_are_kept_exactly() {
    let long_value = "x".repeat(10_000);
    let many: Vec<(String, String)> = (0..500)
        .map(|idx| (format!("label_{idx:03}"), format!("v\"\\\n{idx}é")))
        .collect();
    let mut labels: Vec<(&str, &str)> = many
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    labels.push(("long", &long_value));
    labels.push(("", "empty name"));
    labels.push(("emoji", "🦀\u{0}\u{200b}"));
    let samples = vec![
        sample("m", &labels, 1.0, None),
        sample("", &[], 2.0, None),
        sample("ünïcödé_😀", &[("a", "")], 3.0, None),
    ];
    round_trip(&[
        scrape(0, "", samples.clone()),
        scrape(1, "", samples.clone()),
        scrape(2, "s p a c e", samples),
    ]);
}

#[test]
fn a_steady_scrape_costs_a_few_bits_per_sample() {
    // 100 counters rising at steady rates and 100 flat gauges, every 15 s for an hour.
    let mut scrapes = Vec::new();
    for round in 0..240_i64 {
        let mut samples = Vec::new();
        for key in 0..100 {
            let rate = f64::from(key + 1) * 15.0;
            let key = key.to_string();
            samples.push(sample(
                "tokens_total",
                &[("key", &key)],
                rate * round as f64,
                None,
            ));
            samples.push(sample("budget", &[("key", &key)], 100.5, None));
        }
        scrapes.push(scrape(1_700_000_000_000 + round * 15_000, "gw", samples));
    }
    let batch = round_trip(&scrapes);
    let bits_per_sample = batch.data.len() as f64 * 8.0 / batch.n_samples as f64;
    assert!(bits_per_sample < 3.0, "{bits_per_sample} bits per sample");
}

#[test]
fn random_batches_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let n_sources = 1 + rng.below(3);
        let n_series = 1 + rng.below(40);
        let n_scrapes = 1 + rng.below(30);
        let mut values: Vec<f64> = (0..n_series).map(|_| 0.0).collect();
        let mut at_ms = rng.next() as i64 >> rng.below(60);
        let mut scrapes = Vec::new();
        for _ in 0..n_scrapes {
            at_ms = at_ms.wrapping_add(rng.below(30_000) as i64 - 1_000);
            let source = format!("source-{}", rng.below(n_sources));
            let mut samples = Vec::new();
            for series in 0..n_series {
                if rng.chance(20) {
                    continue;
                }
                let value = &mut values[series as usize];
                *value = match rng.below(10) {
                    0 => f64::from_bits(rng.next()),
                    1 => ODD_VALUES[rng.below(ODD_VALUES.len() as u64) as usize],
                    2 => 0.0,
                    3 => *value,
                    4 => (rng.below(1 << 20) as f64) * 0.001,
                    _ => *value + rng.below(1_000) as f64,
                };
                let timestamp_ms = rng.chance(10).then(|| rng.next() as i64 >> rng.below(64));
                let name = if series % 3 == 0 { "a_total" } else { "b" };
                samples.push(sample(
                    name,
                    &[("series", &series.to_string())],
                    *value,
                    timestamp_ms,
                ));
            }
            if rng.chance(10) && !samples.is_empty() {
                let first = samples[0].clone();
                samples.push(first);
            }
            if rng.chance(10) {
                samples.reverse();
            }
            scrapes.push(DecodedScrape {
                at_ms,
                source,
                scraped_at: Timestamp(at_ms.wrapping_sub(rng.below(5_000) as i64)),
                samples,
            });
        }
        round_trip(&scrapes);
    }
}

#[test]
fn damaged_data_is_refused_without_a_panic() {
    let scrapes: Vec<DecodedScrape> = (0..20)
        .map(|round| {
            scrape(
                round * 15_000,
                "gw",
                vec![
                    sample("a", &[], round as f64 * 3.0, None),
                    sample("b", &[], 0.5 + round as f64, Some(round)),
                ],
            )
        })
        .collect();
    let batch = round_trip(&scrapes);
    let dictionary = Arc::new(batch.dictionary.clone());
    let decode = |data: Vec<u8>, n_scrapes: u32| {
        BatchDecoder::new(Arc::clone(&dictionary), data, 0, n_scrapes)
            .collect::<Result<Vec<_>, _>>()
    };
    // Cut short, one scrape too many, one too few (data left over).
    let mut short = batch.data.clone();
    short.truncate(short.len() / 2);
    assert!(decode(short, batch.n_scrapes).is_err());
    assert_eq!(
        decode(batch.data.clone(), batch.n_scrapes + 1).err(),
        Some(CodecError::Truncated)
    );
    assert_eq!(
        decode(batch.data.clone(), batch.n_scrapes - 1).err(),
        Some(CodecError::TrailingData)
    );
    // An empty dictionary knows no source.
    let empty = BatchDecoder::new(Arc::default(), batch.data.clone(), 0, 1).next();
    assert!(matches!(empty, Some(Err(CodecError::UnknownSource { .. }))));
    // Every single flipped bit, and random bytes: an error or some scrapes, never a panic.
    for bit in 0..batch.data.len() * 8 {
        let mut flipped = batch.data.clone();
        flipped[bit / 8] ^= 0x80 >> (bit % 8);
        let _ = decode(flipped, batch.n_scrapes);
    }
    let mut rng = Rng(7);
    for _ in 0..2_000 {
        let n = rng.below(64) as usize;
        let data: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let _ = decode(data, 1 + rng.below(1_000) as u32);
    }
}
