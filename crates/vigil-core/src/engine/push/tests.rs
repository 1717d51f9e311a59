//! Pushes past the series limit: every series accounted for in the push's report, refusals
//! counted and recorded once per episode, bounded state, and room again once old series go
//! stale.

use super::*;
use crate::authz::Mode;
use crate::detector::DetectorConfig;
use crate::detector::increments::CounterPair;
use crate::detector::proportion::ProportionDropConfig;
use crate::diagnosis::DiagnosisConfig;
use crate::engine::{EngineConfig, Event, FlapLimits, GlobalLimits, Record, StoreLimits};
use crate::intake::{EvalBatch, EvalResult};
use crate::store::Selector;
use crate::store::parse_selector;

const HOUR_MS: i64 = 3_600_000;
const START: Timestamp = Timestamp(1_772_366_400_000);
const EVALS: &str = "push:evals";

/// An engine with `max_pushed_series` and an hour's retention, and a proportion-drop
/// detector reading the eval pass rate per prompt (so the detectors run on every push).
fn engine(max_pushed_series: usize) -> Engine {
    Engine::new(EngineConfig {
        mode: Mode::Autonomous,
        environment: "production".to_owned(),
        sources: Vec::new(),
        detectors: vec![DetectorConfig::ProportionDrop(ProportionDropConfig {
            name: "eval-pass-rate".to_owned(),
            source: EVALS.to_owned(),
            good: Selector::parse(r#"vigil_eval_cases_total{outcome="passed"}"#).unwrap(),
            total: Selector::parse("vigil_eval_cases_total").unwrap(),
            total_is_bad: false,
            describe: "eval pass rate".to_owned(),
            group_by: Some("prompt".to_owned()),
            window_secs: 3600,
            baseline_half_life_secs: 86_400,
            min_cases: 20,
            min_baseline_cases: 50,
            min_drop: 0.1,
            alert_probability: 0.001,
            clear_drop: 0.05,
            severity: crate::detector::Severity::Ticket,
            max_groups: 100,
            drift: None,
        })],
        diagnosis: DiagnosisConfig {
            runaway_min_share: 0.7,
            change_window_ms: crate::diagnosis::DEFAULT_CHANGE_WINDOW_MS,
            demand: None,
            excess: crate::diagnosis::ExcessRule::Net,
        },
        runbooks: Vec::new(),
        api_keys: Vec::new(),
        store: StoreLimits {
            retention_ms: HOUR_MS,
            max_points_per_series: 720,
            max_pushed_series,
        },
        flapping: FlapLimits::default(),
        resources: Vec::new(),
        limits: GlobalLimits::default(),
        trust: Vec::new(),
        people: None,
        topology: None,
        numbers: crate::human::NumberStyle::Readable,
        assistant: None,
    })
}

/// One passed eval result of each prompt in `prompts`: one series per prompt.
fn evals(prompts: impl IntoIterator<Item = String>) -> Event {
    let results = prompts
        .into_iter()
        .map(|prompt| EvalResult {
            suite: "nightly".to_owned(),
            case: "case-1".to_owned(),
            passed: true,
            score: None,
            model: "gpt-4o".to_owned(),
            prompt_name: prompt,
            prompt_version: "v1".to_owned(),
            input_tokens: None,
            run_id: None,
            ran_at: None,
        })
        .collect();
    Event::Pushed {
        payload: Pushed::Evals(EvalBatch { results }),
    }
}

/// Prompts `p-{first}` to `p-{first + n - 1}`.
fn prompts(first: usize, n: usize) -> impl Iterator<Item = String> {
    (first..first + n).map(|idx| format!("p-{idx}"))
}

/// The `SeriesRefused` records among `commands`.
fn refusal_records(commands: &[Command]) -> Vec<&Record> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Record(record @ Record::SeriesRefused { .. }) => Some(record),
            _ => None,
        })
        .collect()
}

/// The value the store holds for the passed eval cases of `prompt`.
fn stored_total(engine: &Engine, prompt: &str) -> Option<f64> {
    let selector = format!(r#"vigil_eval_cases_total{{prompt="{prompt}"}}"#);
    let series = engine.store.select(&parse_selector(&selector).unwrap());
    assert!(series.len() <= 1, "{series:?}");
    Some(engine.store.latest(*series.first()?)?.value)
}

/// Pushes `event` at `now`; checks that its report accounts for every series and that the
/// state stays bounded; returns the report and the commands.
fn push(engine: &mut Engine, event: &Event, now: Timestamp) -> (PushReport, Vec<Command>) {
    let commands = engine.handle(event, now);
    let report = engine.push_report().cloned().expect("a push has a report");
    assert_eq!(report.n_accepted() + report.n_refused, report.n_series);
    assert_eq!(
        report.refused.len(),
        report.n_refused.min(MAX_REFUSED_LISTED)
    );
    let limit = engine.config().store.max_pushed_series;
    assert!(engine.store.n_series_of(EVALS) <= limit);
    assert!(engine.stats().n_push_totals <= limit);
    (report, commands)
}

// Regression: past the limit, pushed counter series were dropped before the store saw them,
// uncounted and unrecorded, and the running totals never forgot a series, so no new prompt
// was tracked again until a restart.
#[test]
fn two_hundred_thousand_distinct_series_are_accounted_for_and_room_comes_back() {
    const LIMIT: usize = 10_000;
    const BATCH: usize = 10_000;
    let mut engine = engine(LIMIT);
    let mut records = Vec::new();
    for round in 0..20 {
        let now = START.plus_millis(round as i64 * 1000);
        let (report, commands) = push(&mut engine, &evals(prompts(round * BATCH, BATCH)), now);
        assert_eq!((report.source.as_str(), report.n_series), (EVALS, BATCH));
        if round == 0 {
            assert_eq!((report.n_refused, report.n_items_refused), (0, 0));
        } else {
            // The source is full: every new series is refused, and said so.
            assert_eq!(
                (
                    report.n_refused,
                    report.n_items_refused,
                    report.n_refused_unlisted()
                ),
                (BATCH, BATCH, BATCH - MAX_REFUSED_LISTED)
            );
            let first = format!("p-{}", round * BATCH);
            assert_eq!(
                report.refused[0],
                RefusedSeries {
                    series: format!(
                        "vigil_eval_cases_total{{model=\"gpt-4o\",outcome=\"passed\",prompt=\"{first}\",prompt_version=\"v1\",suite=\"nightly\"}}"
                    ),
                    reason: "push:evals already tracks 10000 series (store.max_pushed_series); \
                             new series are refused until old ones go stale (not pushed for \
                             the retention, 3600 s)"
                        .to_owned(),
                }
            );
        }
        records.extend(refusal_records(&commands).into_iter().cloned());
    }
    // One episode, one record, with an example; every refused series counted.
    assert_eq!(records.len(), 1, "{records:?}");
    let Some(Record::SeriesRefused {
        source,
        n_refused,
        n_series,
        example,
    }) = records.first()
    else {
        panic!("no record");
    };
    assert_eq!(
        (source.as_str(), *n_refused, *n_series),
        (EVALS, 10_000, 10_000)
    );
    assert!(example.contains("prompt=\"p-10000\""), "{example}");
    assert_eq!(engine.stats().n_series_refused, 190_000);
    assert_eq!(engine.series_refused_by_source().get(EVALS), Some(&190_000));
    assert_eq!(engine.stats().n_push_totals, LIMIT);
    assert_eq!(stored_total(&engine, "p-0"), Some(1.0));
    assert_eq!(stored_total(&engine, "p-10000"), None);

    // The first prompts are not pushed for an hour: they go stale with their totals, and
    // the source has room for new prompts again.
    let later = START.plus_millis(HOUR_MS + 60_000);
    let (report, commands) = push(&mut engine, &evals(prompts(200_000, BATCH)), later);
    assert_eq!((report.n_accepted(), report.n_refused), (BATCH, 0));
    assert!(refusal_records(&commands).is_empty());
    assert_eq!(stored_total(&engine, "p-200000"), Some(1.0));
    assert_eq!(stored_total(&engine, "p-0"), None);
    assert_eq!(engine.stats().n_push_totals, LIMIT);
    // A new flood is a new episode: recorded again.
    let (report, commands) = push(
        &mut engine,
        &evals(prompts(210_000, BATCH)),
        later.plus_millis(1000),
    );
    assert_eq!(report.n_refused, BATCH);
    assert_eq!(refusal_records(&commands).len(), 1);
    assert_eq!(engine.stats().n_series_refused, 200_000);
}

#[test]
fn pushes_of_known_series_between_floods_do_not_start_new_episodes() {
    let mut engine = engine(3);
    let mut now = START;
    let mut push_at = |engine: &mut Engine, first: usize, n: usize| {
        now = now.plus_millis(1000);
        push(engine, &evals(prompts(first, n)), now)
    };
    // (first prompt, prompts, series refused, records)
    let steps: [(usize, usize, usize, usize); 5] = [
        (0, 3, 0, 0),  // fills the source
        (0, 5, 2, 1),  // the known three update; two new ones are refused: an episode
        (0, 3, 0, 0),  // known series only: the source is still full
        (10, 2, 2, 0), // still the same episode
        (1, 2, 0, 0),  // known series only
    ];
    for (first, n, n_refused, n_records) in steps {
        let (report, commands) = push_at(&mut engine, first, n);
        assert_eq!(report.n_refused, n_refused, "{first}+{n}");
        assert_eq!(refusal_records(&commands).len(), n_records, "{first}+{n}");
    }
    // The known series kept counting while others were refused.
    assert_eq!(stored_total(&engine, "p-0"), Some(3.0));
    assert_eq!(stored_total(&engine, "p-1"), Some(4.0));
    assert_eq!(engine.series_refused_by_source().get(EVALS), Some(&4));
    assert_eq!(
        engine.series_refused_by_source().get("push:spans"),
        Some(&0)
    );
}

#[test]
fn a_pushed_counter_that_returns_after_going_stale_starts_again_from_zero() {
    let mut engine = engine(10);
    let mut increments = CounterPair::new(
        EVALS,
        &Selector::parse(r#"vigil_eval_cases_total{outcome="passed"}"#).unwrap(),
        &Selector::parse("vigil_eval_cases_total").unwrap(),
        2 * HOUR_MS,
    );
    let mut counted = |engine: &Engine, now: Timestamp| -> f64 {
        increments
            .collect(&engine.store, now, None)
            .iter()
            .filter(|increment| increment.counter == 0)
            .map(|increment| increment.amount)
            .sum()
    };
    for idx in 0..5 {
        let now = START.plus_millis(idx * 60_000);
        push(&mut engine, &evals(prompts(0, 1)), now);
        assert_eq!(counted(&engine, now), 1.0, "push {idx}");
    }
    assert_eq!(stored_total(&engine, "p-0"), Some(5.0));
    // Two hours of silence: the series and its total are forgotten. Its return counts one
    // case, not the five before it again.
    let back = START.plus_millis(2 * HOUR_MS + 300_000);
    push(&mut engine, &evals(prompts(0, 1)), back);
    assert_eq!(stored_total(&engine, "p-0"), Some(1.0));
    assert_eq!(counted(&engine, back), 1.0);
    assert_eq!(engine.stats().n_push_totals, 1);
}

#[test]
fn only_a_push_has_a_report() {
    let mut engine = engine(10);
    engine.handle(&evals(prompts(0, 2)), START);
    assert_eq!(engine.push_report().map(PushReport::n_accepted), Some(2));
    engine.handle(&Event::Tick, START.plus_millis(1000));
    assert_eq!(engine.push_report(), None);
}
