//! The Prometheus query client against canned answers on loopback: every result type, native
//! histograms, warnings, each kind of error, and the exact form of the requests it sends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vigil_connectors::ConnectorError;
use vigil_connectors::prometheus::{QueryClient, QueryResult, QuerySeries, ResultKind};
use vigil_connectors::secret::Secret;

const TOKEN: &str = "prom-token-5be1c0ffee";

/// One request as the canned server saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Seen {
    /// The form body's pairs, decoded.
    fn form(&self) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(&format!("http://x/?{}", self.body)).unwrap();
        url.query_pairs()
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }
}

/// A server answering every request with `status` and `body`; returns its base URL and the
/// requests it saw. It stops after 16 connections or when the test's runtime ends.
async fn canned(status: u16, body: &'static str) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sender, seen) = mpsc::channel(16);
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((mut stream, _)) = listener.accept().await else {
                break;
            };
            let request = read_request(&mut stream).await;
            let answer = format!(
                "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _written = stream.write_all(answer.as_bytes()).await;
            let _sent = sender.send(request).await;
        }
    });
    (url, seen)
}

/// Reads one HTTP/1.1 request with a `Content-Length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Seen {
    let mut raw = Vec::new();
    let mut buffer = [0_u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the client closed before the end of the headers");
        raw.extend_from_slice(&buffer[..n]);
        if let Some(at) = raw.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        assert!(raw.len() < 1 << 20, "headers too long");
    };
    let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .map_or(0, |value| value.parse().unwrap());
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the client closed before the end of the body");
        body.extend_from_slice(&buffer[..n]);
    }
    Seen {
        request_line,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn client_for(base_url: &str, bearer: Option<&str>) -> QueryClient {
    let http = vigil_connectors::http::client(Duration::from_secs(10)).unwrap();
    QueryClient::new(base_url, bearer.map(Secret::new), http)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn pairs(form: &[(&str, &str)]) -> Vec<(String, String)> {
    form.iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_vector_keeps_labels_exact_timestamps_and_special_values() {
    let (url, mut seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"litellm_total_tokens_metric_total","hashed_api_key":"a\"b\\c\nd","model":"gpt-4o"},"value":[1079337347.472,"1027"]},
            {"metric":{"case":"nan"},"value":[1079337347.472,"NaN"]},
            {"metric":{"case":"inf"},"value":[1079337347.472,"+Inf"]},
            {"metric":{"case":"-inf"},"value":[1079337347.472,"-Inf"]},
            {"metric":{"case":"small"},"value":[1079337347.472,"0.000001"]}
        ]},"warnings":["PromQL warning: something odd"]}"#,
    )
    .await;
    let client = client_for(&url, Some(TOKEN));

    let result = client
        .instant("sum by (model) (rate(x[5m]))", Some(1_079_337_347_472))
        .await
        .unwrap();

    assert_eq!(result.kind, ResultKind::Vector);
    assert_eq!(result.warnings, ["PromQL warning: something odd"]);
    assert!(result.infos.is_empty() && result.string.is_none());
    // 1079337347.472 read as an f64 and scaled is 1079337347471.9999: the digits are exact.
    let at = 1_079_337_347_472;
    assert_eq!(
        result.series[0],
        QuerySeries {
            labels: labels(&[
                ("__name__", "litellm_total_tokens_metric_total"),
                ("hashed_api_key", "a\"b\\c\nd"),
                ("model", "gpt-4o"),
            ]),
            points: vec![(at, 1027.0)],
        }
    );
    let values: Vec<(i64, f64)> = result.series[1..]
        .iter()
        .map(|series| series.points[0])
        .collect();
    assert_eq!(values.len(), 4);
    assert!(values[0].1.is_nan());
    assert_eq!(
        values[1..],
        [
            (at, f64::INFINITY),
            (at, f64::NEG_INFINITY),
            (at, 0.000_001)
        ]
    );

    let request = seen.recv().await.unwrap();
    assert_eq!(request.request_line, "POST /api/v1/query HTTP/1.1");
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        pairs(&[
            ("query", "sum by (model) (rate(x[5m]))"),
            ("time", "1079337347.472"),
        ])
    );
}

#[tokio::test]
async fn an_instant_query_without_a_time_lets_the_server_choose() {
    let (url, mut seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    )
    .await;
    let result = client_for(&url, None).instant("up", None).await.unwrap();
    assert_eq!(
        result,
        QueryResult {
            kind: ResultKind::Vector,
            series: Vec::new(),
            string: None,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    );
    let request = seen.recv().await.unwrap();
    assert_eq!(request.form(), pairs(&[("query", "up")]));
    assert!(!request.headers.contains_key("authorization"));
}

#[tokio::test]
async fn a_matrix_keeps_every_point_and_skips_native_histograms_with_a_warning() {
    let (url, mut seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"litellm"},"values":[[1700000000,"1"],[1700000015.5,"2.5"],[1700000031.005,"NaN"]]},
            {"metric":{"__name__":"latency","job":"litellm"},"histograms":[[1700000000,{"count":"3","sum":"1.5","buckets":[[0,"0.5","1","3"]]}]]},
            {"metric":{"job":"mixed"},"values":[[1700000000,"4"]],"histograms":[[1700000015,{"count":"1","sum":"1"}],[1700000030,{"count":"2","sum":"2"}]]}
        ]},"infos":["PromQL info: metric might not be a counter"]}"#,
    )
    .await;

    let result = client_for(&url, None)
        .range("rate(x[1m])", 1_700_000_000_000, 1_700_000_031_005, 15_500)
        .await
        .unwrap();

    assert_eq!(result.kind, ResultKind::Matrix);
    assert_eq!(result.series.len(), 2, "{result:?}");
    assert_eq!(result.series[0].labels, labels(&[("job", "litellm")]));
    let points = &result.series[0].points;
    assert_eq!(
        points[..2],
        [(1_700_000_000_000, 1.0), (1_700_000_015_500, 2.5)]
    );
    assert_eq!(points[2].0, 1_700_000_031_005);
    assert!(points[2].1.is_nan());
    assert_eq!(
        result.series[1],
        QuerySeries {
            labels: labels(&[("job", "mixed")]),
            points: vec![(1_700_000_000_000, 4.0)],
        }
    );
    assert_eq!(
        result.warnings,
        [
            r#"skipped 1 native histogram sample(s) of {__name__="latency", job="litellm"}: not supported"#,
            r#"skipped 2 native histogram sample(s) of {job="mixed"}: not supported"#,
        ]
    );
    assert_eq!(result.infos, ["PromQL info: metric might not be a counter"]);

    let request = seen.recv().await.unwrap();
    assert_eq!(request.request_line, "POST /api/v1/query_range HTTP/1.1");
    assert_eq!(
        request.form(),
        pairs(&[
            ("query", "rate(x[1m])"),
            ("start", "1700000000.000"),
            ("end", "1700000031.005"),
            ("step", "15500ms"),
        ])
    );
}

#[tokio::test]
async fn a_vector_sample_with_only_a_native_histogram_is_skipped_with_a_warning() {
    let (url, _seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"le":"x"},"histogram":[1700000000,{"count":"1","sum":"0.5"}]},
            {"metric":{"le":"y"},"value":[1700000000,"3"]}
        ]}}"#,
    )
    .await;
    let result = client_for(&url, None).instant("h", None).await.unwrap();
    assert_eq!(
        result.series,
        [QuerySeries {
            labels: labels(&[("le", "y")]),
            points: vec![(1_700_000_000_000, 3.0)],
        }]
    );
    assert_eq!(
        result.warnings,
        [r#"skipped 1 native histogram sample(s) of {le="x"}: not supported"#]
    );
}

#[tokio::test]
async fn a_scalar_is_one_unlabeled_series_and_a_string_is_kept_as_text() {
    let (url, _seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"-1.5e-7"]}}"#,
    )
    .await;
    let scalar = client_for(&url, None)
        .instant("-1.5e-7", None)
        .await
        .unwrap();
    assert_eq!(scalar.kind, ResultKind::Scalar);
    assert_eq!(
        scalar.series,
        [QuerySeries {
            labels: BTreeMap::new(),
            points: vec![(1_700_000_000_123, -1.5e-7)],
        }]
    );

    let (url, _seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"string","result":[1700000000.5,"a \"quoted\" string"]}}"#,
    )
    .await;
    let string = client_for(&url, None).instant("\"x\"", None).await.unwrap();
    assert_eq!(string.kind, ResultKind::String);
    assert!(string.series.is_empty());
    assert_eq!(
        string.string,
        Some((1_700_000_000_500, "a \"quoted\" string".to_owned()))
    );
}

#[tokio::test]
async fn prometheus_errors_carry_the_status_error_type_and_message() {
    let cases: [(u16, &'static str, &str); 3] = [
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#,
            r#"bad_data: invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#,
        ),
        (
            422,
            r#"{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}"#,
            "execution: vector cannot contain metrics with the same labelset",
        ),
        (
            503,
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
            "timeout: query timed out in expression evaluation",
        ),
    ];
    for (status, body, expected) in cases {
        let (url, _seen) = canned(status, body).await;
        let error = client_for(&url, None)
            .instant("sum(", None)
            .await
            .unwrap_err();
        match &error {
            ConnectorError::Status {
                target,
                url: shown,
                status: answered,
                excerpt,
            } => {
                assert_eq!(target, "prometheus");
                assert_eq!(shown, &format!("{url}/api/v1/query"));
                assert_eq!(*answered, status);
                assert_eq!(excerpt, expected);
            }
            other => panic!("expected a status error, got {other:?}"),
        }
        assert_eq!(error.status(), Some(status));
        assert_eq!(
            error.to_string(),
            format!("`prometheus` answered http {status} (`{url}/api/v1/query`): {expected}")
        );
    }
}

#[tokio::test]
async fn a_proxy_error_page_is_quoted_and_the_token_is_scrubbed() {
    let (url, _seen) = canned(502, "<html>bad gateway for prom-token-5be1c0ffee</html>").await;
    let error = client_for(&url, Some(TOKEN))
        .instant("up", None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(502));
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("<html>bad gateway for <redacted></html>"),
        "{shown}"
    );
    assert!(!shown.contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn answers_that_are_not_the_documented_json_are_decode_errors() {
    let cases: [(&'static str, &str); 6] = [
        ("not json", "not the query api's json"),
        (r#"{"status":"success"}"#, "a success without `data`"),
        (
            r#"{"status":"success","data":{"resultType":"table","result":[]}}"#,
            "an unknown result type `table`",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.0001,"1"]}]}}"#,
            "the timestamp `1700000000.0001` has a fraction of a millisecond",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"many"]}]}}"#,
            "the sample value `many` is not a number",
        ),
        (
            r#"{"status":"success","data":{"resultType":"matrix","result":{"metric":{}}}}"#,
            "a malformed `matrix` result",
        ),
    ];
    for (body, expected) in cases {
        let (url, _seen) = canned(200, body).await;
        let error = client_for(&url, None)
            .instant("up", None)
            .await
            .unwrap_err();
        match &error {
            ConnectorError::Decode { target, detail, .. } => {
                assert_eq!(target, "prometheus");
                assert!(detail.starts_with(expected), "{body}: {detail}");
            }
            other => panic!("{body}: expected a decode error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let (url, mut seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}"#,
    )
    .await;
    let result = client_for(&format!("{url}/prometheus/"), None)
        .instant("1", Some(-1_500))
        .await
        .unwrap();
    assert_eq!(result.series[0].points, [(0, 1.0)]);
    let request = seen.recv().await.unwrap();
    assert_eq!(
        request.request_line,
        "POST /prometheus/api/v1/query HTTP/1.1"
    );
    assert_eq!(request.form(), pairs(&[("query", "1"), ("time", "-1.500")]));
}

#[tokio::test]
async fn an_answer_over_the_limit_fails_the_query() {
    let (url, _seen) = canned(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}"#,
    )
    .await;
    let error = client_for(&url, None)
        .with_max_body_bytes(16)
        .instant("1", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectorError::BodyTooLarge {
                limit_bytes: 16,
                ..
            }
        ),
        "{error:?}"
    );
}
