//! The Prometheus query client against a real Prometheus server on loopback, scraping a
//! target that this test serves: known gauges (tricky labels, NaN and infinities), a counter
//! whose every sample the test chose, and the server's own errors.
//!
//! The binary comes from `VIGIL_TEST_PROMETHEUS`, else `PATH`, else `/usr/bin/prometheus`
//! (Debian's package `prometheus`; `.ci/run` installs it). Without one the test prints why
//! and passes, unless `CI` is set: then it fails.
//!
//! No assertion depends on timing. The counter carries explicit timestamps, so the samples
//! Prometheus stores are exactly the ones served whatever the scrape times are; the test reads
//! them back and evaluates `rate()` over a window it places around them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

#[path = "prometheus_real/server.rs"]
mod server;
#[path = "prometheus_real/target.rs"]
mod target;

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_connectors::ConnectorError;
use vigil_connectors::prometheus::{QueryClient, QueryResult, QuerySeries, ResultKind};

use server::PrometheusServer;
use target::{COUNTER_STEP, ExpositionTarget, TRICKY_VALUE};

/// The scrape job's name.
const JOB: &str = "vigil-test";
/// Hang guard for the waits below: rounds of [`POLL_PAUSE`].
const POLL_ROUNDS: u32 = 600;
const POLL_PAUSE: Duration = Duration::from_millis(200);
/// Counter samples, exactly one second apart, that the rate checks need.
const RUN_LENGTH: usize = 4;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The only series of `result`, with a message naming the query when there is not exactly one.
fn only_series<'a>(result: &'a QueryResult, query: &str) -> &'a QuerySeries {
    assert_eq!(result.series.len(), 1, "{query}: {result:#?}");
    &result.series[0]
}

/// Polls `query` until `done` accepts the result; panics after the bounded rounds.
async fn wait_for(
    client: &QueryClient,
    query: &str,
    what: &str,
    done: impl Fn(&QueryResult) -> bool,
) -> QueryResult {
    let mut last = String::from("no answer yet");
    for _ in 0..POLL_ROUNDS {
        match client.instant(query, None).await {
            Ok(result) if done(&result) => return result,
            Ok(result) => last = format!("{result:?}"),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    panic!("gave up waiting for {what} (`{query}`); last answer: {last}");
}

/// The last `RUN_LENGTH` counter samples that are exactly one step apart, once there are.
fn consecutive_run(points: &[(i64, f64)]) -> Option<Vec<(i64, f64)>> {
    let mut run: Vec<(i64, f64)> = Vec::new();
    for point in points {
        if run.last().is_some_and(|last| point.0 - last.0 != 1000) {
            run.clear();
        }
        run.push(*point);
    }
    let start = run.len().checked_sub(RUN_LENGTH)?;
    Some(run[start..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_against_a_real_prometheus() {
    let Some(binary) = server::find_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed, and CI is set: install Debian's `prometheus` \
             package (.ci/run does) or point VIGIL_TEST_PROMETHEUS at the binary"
        );
        println!("skipping: prometheus not installed");
        return;
    };
    let target = ExpositionTarget::start().await;
    let prometheus = PrometheusServer::start(&binary, JOB, &target.address()).await;
    let http = vigil_connectors::http::client(Duration::from_secs(30)).unwrap();
    let client = QueryClient::new(prometheus.base_url(), None, http);
    let instance = target.address();

    // The target is up once Prometheus has scraped it successfully.
    let up = format!("up{{job=\"{JOB}\"}}");
    wait_for(&client, &up, "the target to be up", |result| {
        result.series.len() == 1 && result.series[0].points[0].1 == 1.0
    })
    .await;
    prometheus.assert_target_healthy().await;

    check_gauges(&client, &instance).await;
    check_counter_and_rate(&client, &instance, &prometheus).await;
    check_scalar_and_string(&client).await;
    check_errors(&client).await;
}

/// Every gauge comes back with its labels and value, through an instant query at a time of
/// the test's choosing (to the millisecond).
async fn check_gauges(client: &QueryClient, instance: &str) {
    // A raw sample's timestamp is a real scrape time; query a little after it.
    let raw = wait_for(
        client,
        "vigil_test_gauge{case=\"plain\"}[1m]",
        "a gauge sample",
        |result| result.kind == ResultKind::Matrix && result.series.len() == 1,
    )
    .await;
    let scraped_at = raw.series[0].points.last().unwrap().0;
    let at = scraped_at + 123;

    let result = client.instant("vigil_test_gauge", Some(at)).await.unwrap();
    assert_eq!(result.kind, ResultKind::Vector);
    assert!(result.warnings.is_empty(), "{result:?}");
    let by_case: BTreeMap<&str, &QuerySeries> = result
        .series
        .iter()
        .map(|series| (series.labels["case"].as_str(), series))
        .collect();
    let expected_cases = [
        "empty-label",
        "huge",
        "inf",
        "nan",
        "negative",
        "neginf",
        "plain",
        "tiny",
        "tricky",
    ];
    assert_eq!(
        by_case.keys().copied().collect::<Vec<_>>(),
        expected_cases,
        "{result:#?}"
    );
    let base = |case: &str| {
        let mut labels = labels(&[
            ("__name__", "vigil_test_gauge"),
            ("job", JOB),
            ("case", case),
        ]);
        labels.insert("instance".to_owned(), instance.to_owned());
        labels
    };
    let expected_values = [
        ("plain", 42.5),
        ("negative", -0.125),
        ("huge", 1e300),
        ("tiny", 5e-324),
        ("inf", f64::INFINITY),
        ("neginf", f64::NEG_INFINITY),
        ("empty-label", 3.0),
        ("tricky", 7.0),
    ];
    for (case, value) in expected_values {
        let series = by_case[case];
        assert_eq!(series.points, [(at, value)], "{case}");
    }
    assert_eq!(by_case["nan"].points.len(), 1);
    assert_eq!(by_case["nan"].points[0].0, at);
    assert!(by_case["nan"].points[0].1.is_nan(), "{:?}", by_case["nan"]);

    assert_eq!(by_case["plain"].labels, base("plain"));
    // Prometheus drops a label whose value is empty.
    assert_eq!(by_case["empty-label"].labels, base("empty-label"));
    let mut tricky = base("tricky");
    tricky.insert("value".to_owned(), TRICKY_VALUE.to_owned());
    assert_eq!(by_case["tricky"].labels, tricky);

    // The label survives a round trip through a label matcher, too.
    let matched = client
        .instant(
            &format!(
                "vigil_test_gauge{{value={}}}",
                serde_json::to_string(TRICKY_VALUE).unwrap()
            ),
            Some(at),
        )
        .await
        .unwrap();
    assert_eq!(only_series(&matched, "the tricky matcher").labels, tricky);
}

/// The counter's raw samples are exactly the served ones; `rate()` and `increase()` over a
/// window placed around four of them give the served slope; a range query steps through them.
async fn check_counter_and_rate(
    client: &QueryClient,
    instance: &str,
    prometheus: &PrometheusServer,
) {
    let counter = "vigil_test_requests_total{route=\"/v1/chat/completions\"}";
    let raw_query = format!("{counter}[1h]");
    let raw = wait_for(
        client,
        &raw_query,
        "four counter samples one second apart",
        |result| result.series.len() == 1 && consecutive_run(&result.series[0].points).is_some(),
    )
    .await;
    let series = only_series(&raw, &raw_query);
    let mut expected_labels = labels(&[
        ("__name__", "vigil_test_requests_total"),
        ("job", JOB),
        ("route", "/v1/chat/completions"),
    ]);
    expected_labels.insert("instance".to_owned(), instance.to_owned());
    assert_eq!(series.labels, expected_labels);
    // Every stored sample is one the target served: value = step × (seconds since its base).
    let base_ms = target::counter_base_ms(series.points[0]);
    for (at, value) in &series.points {
        assert_eq!(
            *value,
            COUNTER_STEP * ((at - base_ms) / 1000) as f64,
            "{:?}\n{}",
            series.points,
            prometheus.log()
        );
    }

    let run = consecutive_run(&series.points).unwrap();
    let (first_at, last_at) = (run[0].0, run[RUN_LENGTH - 1].0);
    // The window (T - 4s, T] holds exactly the run, half a second from each edge, so
    // Prometheus extrapolates to both edges and a linear counter's rate is its slope.
    let at = last_at + 500;
    let window = format!("{}s", RUN_LENGTH);
    let rate_query = format!("rate({counter}[{window}])");
    let rate = client.instant(&rate_query, Some(at)).await.unwrap();
    let rate_series = only_series(&rate, &rate_query);
    expected_labels.remove("__name__");
    assert_eq!(rate_series.labels, expected_labels);
    assert_eq!(rate_series.points.len(), 1);
    assert_eq!(rate_series.points[0].0, at);
    assert_close(rate_series.points[0].1, COUNTER_STEP, &rate_query);

    let increase_query = format!("increase({counter}[{window}])");
    let increase = client.instant(&increase_query, Some(at)).await.unwrap();
    assert_close(
        only_series(&increase, &increase_query).points[0].1,
        COUNTER_STEP * RUN_LENGTH as f64,
        &increase_query,
    );

    // A range query over the run steps exactly onto each sample.
    let stepped = client
        .range(counter, first_at, last_at, 1000)
        .await
        .unwrap();
    assert_eq!(stepped.kind, ResultKind::Matrix);
    assert_eq!(only_series(&stepped, counter).points, run);
    // And `rate` as a range query, one step at the window's end.
    let rate_range = client.range(&rate_query, at, at, 1000).await.unwrap();
    let points = &only_series(&rate_range, &rate_query).points;
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].0, at);
    assert_close(points[0].1, COUNTER_STEP, &rate_query);
}

/// Equal up to the last bits of the extrapolation's float arithmetic.
fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= expected.abs() * 1e-12,
        "{what}: {actual} is not {expected}"
    );
}

/// A scalar and a string at a time whose seconds, read as an f64 and scaled by 1000, would
/// come out a millisecond short (2183226373410.9998): the answer's timestamp must be exact.
async fn check_scalar_and_string(client: &QueryClient) {
    let at = 2_183_226_373_411;
    let scalar = client.instant("1.5 * 2", Some(at)).await.unwrap();
    assert_eq!(scalar.kind, ResultKind::Scalar);
    assert_eq!(
        scalar.series,
        [QuerySeries {
            labels: BTreeMap::new(),
            points: vec![(at, 3.0)],
        }]
    );
    let string = client
        .instant("\"hello \\\"world\\\"\"", Some(at))
        .await
        .unwrap();
    assert_eq!(string.kind, ResultKind::String);
    assert_eq!(string.string, Some((at, "hello \"world\"".to_owned())));
    assert!(string.series.is_empty());
}

/// The server's own errors: a parse error (400), an execution error (422), and a range query
/// with too many points (400), each with Prometheus's error type and message.
async fn check_errors(client: &QueryClient) {
    let parse = client.instant("sum(", None).await.unwrap_err();
    assert_status(
        &parse,
        400,
        "bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis",
    );

    let duplicate = "{__name__=~\"up|scrape_samples_scraped\", job=\"vigil-test\"} * 1";
    let execution = client.instant(duplicate, None).await.unwrap_err();
    assert_status(
        &execution,
        422,
        "execution: vector cannot contain metrics with the same labelset",
    );

    let too_many = client.range("up", 0, 100_000, 1).await.unwrap_err();
    assert_status(
        &too_many,
        400,
        "bad_data: exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    );
}

fn assert_status(error: &ConnectorError, status: u16, message: &str) {
    match error {
        ConnectorError::Status {
            status: answered,
            excerpt,
            ..
        } => {
            assert_eq!((*answered, excerpt.as_str()), (status, message));
        }
        other => panic!("expected http {status} `{message}`, got {other:?}"),
    }
}
