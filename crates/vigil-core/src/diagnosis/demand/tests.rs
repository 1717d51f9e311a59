//! Tests of the demand reading: a spike decomposed into requests × tokens per request, with
//! the cache beside it, each case a small set of keys and the expected ranking.

use super::*;
use crate::detector::spike::{GroupView, SpikeThresholds};
use crate::detector::{Point, Severity, SpikeEvidence};
use crate::diagnosis::{DEFAULT_CHANGE_WINDOW_MS, DiagnosisConfig, diagnose};
use crate::signal::{Labels, Sample};
use crate::store::StoreConfig;

fn config() -> DemandConfig {
    DemandConfig {
        requests: Selector::parse("requests_total").unwrap(),
        cache_hits: Selector::parse("cache_hits_total").unwrap(),
        cache_misses: Selector::parse("cache_misses_total").unwrap(),
        flat_ratio: 1.5,
        before_window_ms: 600_000,
        rhythm_min_days: 1,
        rhythm_tolerance_ms: 1_800_000,
        rhythm_lookback_days: 7,
        planned_work_alertnames: vec!["loadtest".to_owned()],
    }
}

const DIAGNOSIS: DiagnosisConfig = DiagnosisConfig {
    runaway_min_share: 0.5,
    change_window_ms: DEFAULT_CHANGE_WINDOW_MS,
    demand: None,
    excess: crate::diagnosis::ExcessRule::Net,
};

fn subject(key: &str) -> Subject {
    Subject {
        label: "hashed_api_key".to_owned(),
        value: key.to_owned(),
        alias: None,
        team: None,
    }
}

const AT: Timestamp = Timestamp(3_600_000);

fn spike(key: &str, rate: f64, baseline: f64) -> Finding {
    Finding {
        fingerprint: format!("spike/hashed_api_key={key}"),
        detector: "spike".to_owned(),
        source: "gw".to_owned(),
        subject: subject(key),
        severity: Severity::Page,
        raised_at: AT,
        evidence: Evidence::Spike(SpikeEvidence {
            metric: "tokens_total".to_owned(),
            unit: Default::default(),
            rate_per_sec: rate,
            baseline_per_sec: baseline,
            spread_per_sec: baseline * 0.1,
            z_score: 50.0,
            ratio: rate / baseline,
            thresholds: SpikeThresholds {
                warmup_samples: 1,
                baseline_half_life_secs: 600.0,
                fire_z: 6.0,
                fire_ratio: 3.0,
                min_rate_per_sec: 50.0,
                fire_after_samples: 2,
                clear_ratio: 1.5,
                clear_after_samples: 3,
                noise_floor_ratio: 0.1,
                page_ratio: 10.0,
                season_secs: 0,
                run_evidence: false,
                season_memory: crate::detector::spike::SeasonMemory::Average,
            },
            recent: vec![
                Point {
                    at: Timestamp(AT.0 - 30_000),
                    value: baseline,
                },
                Point {
                    at: Timestamp(AT.0 - 15_000),
                    value: rate,
                },
                Point {
                    at: AT,
                    value: rate,
                },
            ],
        }),
    }
}

fn view(key: &str, rate: f64, baseline: f64) -> GroupView {
    GroupView {
        subject: subject(key),
        observed_at: AT,
        rate_per_sec: rate,
        baseline_per_sec: baseline,
        firing: rate > 3.0 * baseline,
        spread_per_sec: 0.1 * baseline,
    }
}

fn requests(key: &str, now: f64, before: f64) -> RequestView {
    RequestView {
        group: key.to_owned(),
        now_per_sec: now,
        before_per_sec: before,
    }
}

/// The diagnosis of `finding` with `views` and the demand `evidence`: best kind, its subject.
fn read(
    finding: &Finding,
    views: &[GroupView],
    evidence: &DemandEvidence,
) -> (Diagnosis, HypothesisKind, String) {
    let plain = diagnose(&DIAGNOSIS, NumberStyle::Readable, finding, views, &[]);
    let diagnosis = decompose(
        &config(),
        &DIAGNOSIS,
        NumberStyle::Readable,
        plain,
        finding,
        evidence,
        views,
    );
    let best = diagnosis.best().unwrap().clone();
    let subject = best
        .subject
        .map(|subject| format!("{}={}", subject.label, subject.value))
        .unwrap_or_default();
    (diagnosis, best.kind, subject)
}

#[test]
fn more_requests_from_one_key_is_a_runaway_even_when_other_keys_hold_tokens() {
    // Two other keys' tokens rose a little (their prompts), so k1 holds under half of the
    // excess tokens; but it alone sends the extra requests.
    let views = [
        view("k1", 4000.0, 200.0),
        view("k2", 2600.0, 300.0),
        view("k3", 2600.0, 300.0),
    ];
    let evidence = DemandEvidence {
        requests: vec![
            requests("k1", 40.0, 2.0),
            requests("k2", 1.0, 1.0),
            requests("k3", 1.0, 1.0),
        ],
        cache: None,
    };
    let (diagnosis, kind, subject) = read(&spike("k1", 4000.0, 200.0), &views, &evidence);
    assert_eq!(
        (kind, subject.as_str()),
        (HypothesisKind::RunawayKey, "hashed_api_key=k1")
    );
    let best = diagnosis.best().unwrap();
    assert!((best.confidence - 1.0).abs() < 1e-9, "{}", best.confidence);
    assert!(
        best.support[0]
            .text
            .contains("40 requests/s against 2 requests/s"),
        "{:?}",
        best.support
    );
    let surge = &diagnosis.hypotheses[1];
    assert_eq!(surge.kind, HypothesisKind::BroadSurge);
    assert!(
        surge.against[0]
            .text
            .contains("other keys' requests stayed flat")
    );
}

#[test]
fn a_request_spike_is_read_in_requests_and_not_decomposed_into_tokens_per_request() {
    // The same numbers as a token spike with flat requests: read as tokens, that is a
    // rise of tokens per request; read as a spike of the requests themselves, it is one
    // key sending more calls, and the demand evidence (another metric) must not overrule it.
    let views = [view("k1", 8.0, 0.8), view("k2", 3.0, 3.0)];
    let mut finding = spike("k1", 8.0, 0.8);
    if let Evidence::Spike(evidence) = &mut finding.evidence {
        evidence.unit = crate::detector::spike::RateUnit::Requests;
    }
    let evidence = DemandEvidence {
        requests: vec![requests("k1", 2.1, 2.0), requests("k2", 1.0, 1.0)],
        cache: None,
    };
    let (diagnosis, kind, subject) = read(&finding, &views, &evidence);
    assert_eq!(
        (kind, subject.as_str()),
        (HypothesisKind::RunawayKey, "hashed_api_key=k1")
    );
    let best = diagnosis.best().unwrap();
    assert!(best.support.is_empty(), "{:?}", best.support);
    assert!(best.against.is_empty(), "{:?}", best.against);
    assert!(
        best.evidence[0].contains("of the excess request rate across 2 keys"),
        "{:?}",
        best.evidence
    );
    assert!(
        best.evidence[1].contains("8 requests/s against a baseline of 0.8 requests/s"),
        "{:?}",
        best.evidence
    );
    assert!(
        diagnosis
            .why
            .starts_with("Request traffic on key k1 jumped to 8 requests/s"),
        "{}",
        diagnosis.why
    );
    // Read as tokens, the same numbers are longer requests.
    let (_, as_tokens, _) = read(&spike("k1", 8.0, 0.8), &views, &evidence);
    assert_eq!(as_tokens, HypothesisKind::TokensPerRequestRise);
}

#[test]
fn flat_requests_with_longer_ones_is_a_tokens_per_request_rise_and_not_a_runaway() {
    let views = [view("k1", 8000.0, 800.0), view("k2", 300.0, 300.0)];
    let evidence = DemandEvidence {
        requests: vec![requests("k1", 2.1, 2.0), requests("k2", 1.0, 1.0)],
        cache: Some(CacheView {
            name: "gw".to_owned(),
            now_ratio: 0.4,
            before_ratio: 0.42,
        }),
    };
    let (diagnosis, kind, subject) = read(&spike("k1", 8000.0, 800.0), &views, &evidence);
    assert_eq!(
        (kind, subject.as_str()),
        (HypothesisKind::TokensPerRequestRise, "hashed_api_key=k1")
    );
    // The runaway keeps a confidence no runbook acts on, with the counter-evidence.
    let runaway = diagnosis
        .hypotheses
        .iter()
        .find(|hypothesis| hypothesis.kind == HypothesisKind::RunawayKey)
        .unwrap();
    assert!(runaway.confidence <= FLAT_DEMAND_CONFIDENCE);
    assert!(
        runaway.against[0]
            .text
            .contains("same requests, not more of them")
    );
    // Flat requests across all keys rule out a surge.
    let surge = diagnosis
        .hypotheses
        .iter()
        .find(|hypothesis| hypothesis.kind == HypothesisKind::BroadSurge)
        .unwrap();
    assert!(surge.against[0].text.contains("not a demand surge"));
    assert!(diagnosis.why.contains("not a runaway"), "{}", diagnosis.why);
    assert!(
        diagnosis.why.contains("blocking the key would cut"),
        "{}",
        diagnosis.why
    );
}

#[test]
fn flat_requests_and_a_collapsed_cache_blame_the_cache() {
    let views = [
        view("k1", 1960.0, 300.0),
        view("k2", 1960.0, 300.0),
        view("k3", 1960.0, 300.0),
    ];
    let evidence = DemandEvidence {
        requests: vec![
            requests("k1", 2.0, 2.0),
            requests("k2", 2.0, 2.0),
            requests("k3", 2.0, 2.0),
        ],
        cache: Some(CacheView {
            name: "gw".to_owned(),
            now_ratio: 0.02,
            before_ratio: 0.85,
        }),
    };
    let (diagnosis, kind, subject) = read(&spike("k2", 1960.0, 300.0), &views, &evidence);
    assert_eq!(
        (kind, subject.as_str()),
        (HypothesisKind::CacheRegression, "cache=gw")
    );
    let best = diagnosis.best().unwrap();
    assert!(
        best.evidence[0].contains("fell to 2 % from 85 %"),
        "{:?}",
        best.evidence
    );
    assert!(
        diagnosis.why.starts_with("The cache gw's hit rate fell"),
        "{}",
        diagnosis.why
    );
}

#[test]
fn a_cache_that_barely_answered_or_fell_a_little_is_not_blamed() {
    let views = [view("k1", 1960.0, 300.0)];
    for (now, before) in [(0.01, 0.05), (0.5, 0.85)] {
        let evidence = DemandEvidence {
            requests: vec![requests("k1", 2.0, 2.0)],
            cache: Some(CacheView {
                name: "gw".to_owned(),
                now_ratio: now,
                before_ratio: before,
            }),
        };
        let (_, kind, _) = read(&spike("k1", 1960.0, 300.0), &views, &evidence);
        assert_eq!(
            kind,
            HypothesisKind::TokensPerRequestRise,
            "{now} from {before}"
        );
    }
}

#[test]
fn without_request_counts_the_spike_reads_as_before() {
    let views = [view("k1", 8000.0, 200.0), view("k2", 300.0, 300.0)];
    let finding = spike("k1", 8000.0, 200.0);
    let plain = diagnose(&DIAGNOSIS, NumberStyle::Readable, &finding, &views, &[]);
    let (diagnosis, _, _) = read(&finding, &views, &DemandEvidence::default());
    assert_eq!(diagnosis, plain);
}

#[test]
fn causes_that_exclude_one_another_do_not_share_an_incident() {
    use HypothesisKind::*;
    assert!(!may_join(Some(RunawayKey), Some(CacheRegression)));
    assert!(!may_join(Some(TokensPerRequestRise), Some(RunawayKey)));
    assert!(!may_join(Some(RunawayKey), Some(ExpectedActivity)));
    assert!(!may_join(Some(ExpectedActivity), Some(ProviderDegradation)));
    assert!(may_join(Some(CacheRegression), Some(CacheRegression)));
    assert!(may_join(Some(ExpectedActivity), Some(ExpectedActivity)));
    assert!(may_join(Some(RunawayKey), Some(ProviderDegradation)));
}

fn counter(name: &str, key: &str, value: f64) -> Sample {
    let mut labels = Labels::default();
    labels.insert("hashed_api_key", key);
    Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms: None,
    }
}

#[test]
fn the_engine_measures_requests_and_the_cache_before_the_spike_and_at_it() {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 100,
        retention_ms: 3_600_000,
        max_points_per_series: 1000,
    });
    // 2 requests/s per key all along; the cache answers 80 % until the spike, then 10 %.
    let mut totals = (0.0, 0.0, 0.0);
    let mut at = AT.0 - 1_200_000;
    while at <= AT.0 {
        let hit_share = if at > AT.0 - 15_000 { 0.1 } else { 0.8 };
        totals.0 += 2.0 * 15.0;
        totals.1 += 2.0 * 15.0 * hit_share;
        totals.2 += 2.0 * 15.0 * (1.0 - hit_share);
        store.ingest(
            "gw",
            Timestamp(at),
            &[
                counter("requests_total", "k1", totals.0),
                counter("cache_hits_total", "k1", totals.1),
                counter("cache_misses_total", "k1", totals.2),
            ],
        );
        at += 15_000;
    }
    let evidence = measure(
        &config(),
        &store,
        "gw",
        "hashed_api_key",
        &spike("k1", 1960.0, 300.0),
    );
    let [requests] = evidence.requests.as_slice() else {
        panic!("{evidence:?}")
    };
    assert_eq!(requests.group, "k1");
    assert!((requests.now_per_sec - 2.0).abs() < 1e-9, "{requests:?}");
    assert!((requests.before_per_sec - 2.0).abs() < 1e-6, "{requests:?}");
    let cache = evidence.cache.unwrap();
    assert!((cache.now_ratio - 0.1).abs() < 1e-9, "{cache:?}");
    assert!((cache.before_ratio - 0.8).abs() < 1e-6, "{cache:?}");
}

#[test]
fn the_extra_requests_of_one_key_are_its_own_among_a_thousand_noisy_keys() {
    // A thousand other keys whose requests wander ±30 % from one scrape to the next: summed
    // as rises only, their noise would hold nine tenths of the extra requests.
    let mut views = vec![view("k1", 4000.0, 200.0)];
    let mut evidence = DemandEvidence {
        requests: vec![requests("k1", 10.0, 2.0)],
        cache: None,
    };
    for idx in 0..1000_usize {
        let key = format!("q{idx}");
        let wander = ((idx * 7919 % 1000) as f64 / 1000.0 - 0.5) * 0.6;
        views.push(view(&key, 100.0 * (1.0 + wander / 3.0), 100.0));
        evidence.requests.push(requests(&key, 1.0 + wander, 1.0));
    }
    let (diagnosis, kind, _) = read(&spike("k1", 4000.0, 200.0), &views, &evidence);
    assert_eq!(kind, HypothesisKind::RunawayKey);
    let best = diagnosis.best().unwrap();
    assert!(
        best.support.iter().any(|fact| fact
            .text
            .contains("sends 100 % of the extra requests across 1001 keys")),
        "{:?}",
        best.support
    );
}
