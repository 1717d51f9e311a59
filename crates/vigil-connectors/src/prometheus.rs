//! Prometheus's HTTP query API (`/api/v1/query`, `/api/v1/query_range`): instant and range
//! queries whose answers keep every timestamp exact to the millisecond.
//!
//! Prometheus writes timestamps as JSON numbers in seconds (`1700000000.123`). Read as `f64`
//! such a number is off by a fraction of a millisecond, so each timestamp is converted from the
//! number's own digits ([`serde_json::value::RawValue`]) and never goes through a float.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_url, request_error};
use crate::secret::Secret;

/// The name errors give the query API.
const TARGET: &str = "prometheus";
/// How long a query may take unless [`QueryClient::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read unless [`QueryClient::with_max_body_bytes`] says otherwise.
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Decimal digits of a timestamp's significand accepted; Prometheus writes at most 20.
const MAX_TIMESTAMP_DIGITS: usize = 40;

/// What kind of value a query returned: Prometheus's `resultType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    /// One sample per series at the evaluation time (instant queries).
    Vector,
    /// Several samples per series (range queries, and instant queries of a range selector).
    Matrix,
    /// One number without labels, as a single series with no labels and one point.
    Scalar,
    /// One string, in [`QueryResult::string`]; `series` is empty.
    String,
}

/// One series of a query result.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySeries {
    /// The series' labels, `__name__` included when Prometheus kept it.
    pub labels: BTreeMap<String, String>,
    /// `(timestamp in milliseconds, value)` in the order Prometheus sent them. Values may be
    /// NaN or infinite.
    pub points: Vec<(i64, f64)>,
}

/// The answer to one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// What kind of value Prometheus returned.
    pub kind: ResultKind,
    /// The series; one unlabeled series for a scalar, none for a string.
    pub series: Vec<QuerySeries>,
    /// For a string result, its timestamp in milliseconds and the string.
    pub string: Option<(i64, String)>,
    /// Prometheus's warnings, then one line per native histogram that was skipped.
    pub warnings: Vec<String>,
    /// Prometheus's informational notes (Prometheus 3 and later).
    pub infos: Vec<String>,
}

/// A client for one Prometheus server's query API. `Debug` shows the URL without credentials.
///
/// # Errors
///
/// Both queries fail with:
/// - [`ConnectorError::Status`] when Prometheus reports an error (`{"status":"error"}`, with
///   HTTP 400 `bad_data`, 422 `execution`, 503 `timeout` or `canceled`): the status is the
///   HTTP status and the excerpt is Prometheus's `errorType: error`, for example
///   ``bad_data: invalid parameter "query": 1:5: parse error: unclosed left parenthesis``.
///   Any other non-2xx answer (a proxy's error page) is quoted the same way.
/// - [`ConnectorError::Decode`] when a successful answer is not the documented JSON, or holds
///   a timestamp that is not whole milliseconds.
/// - [`ConnectorError::Timeout`], [`ConnectorError::Transport`] and
///   [`ConnectorError::BodyTooLarge`] as for any call.
#[derive(Clone)]
pub struct QueryClient {
    base_url: String,
    bearer: Option<Secret>,
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: usize,
}

impl std::fmt::Debug for QueryClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("QueryClient")
            .field("base_url", &redact_url(&self.base_url))
            .field("bearer", &self.bearer)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl QueryClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:9090`, or a path prefix
    /// such as `https://host/prometheus`), sending `bearer` if given, over `client` (see
    /// [`crate::http::client`]). Queries time out after 30 s and read at most 32 MiB.
    pub fn new(
        base_url: impl Into<String>,
        bearer: Option<Secret>,
        client: reqwest::Client,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            bearer,
            client,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// How long one query may take, the answer's body included.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer accepted; a larger one fails the query.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Evaluates `query` at `at_ms` (milliseconds since the epoch), or at the server's current
    /// time when `None`: `POST /api/v1/query`.
    pub async fn instant(
        &self,
        query: &str,
        at_ms: Option<i64>,
    ) -> Result<QueryResult, ConnectorError> {
        let mut form = vec![("query", query.to_owned())];
        if let Some(at_ms) = at_ms {
            form.push(("time", seconds_text(at_ms)));
        }
        self.post("/api/v1/query", &form).await
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` (milliseconds, both
    /// ends included): `POST /api/v1/query_range`. Prometheus itself rejects a step that is
    /// not positive or that would give more than 11,000 points per series.
    pub async fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, ConnectorError> {
        let form = [
            ("query", query.to_owned()),
            ("start", seconds_text(start_ms)),
            ("end", seconds_text(end_ms)),
            // A duration with a unit is parsed exactly; float seconds would be rounded.
            ("step", format!("{step_ms}ms")),
        ];
        self.post("/api/v1/query_range", &form).await
    }

    /// Posts a form to `path` under the base URL and decodes the answer.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<QueryResult, ConnectorError> {
        let url = format!("{}{path}", self.base_url.trim_end_matches('/'));
        let shown_url = redact_url(&url);
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: self.timeout,
        };
        // A form body keeps long queries out of URL length limits and out of access logs.
        let mut request = self
            .client
            .post(&url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(form)?)
            .timeout(self.timeout);
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| request_error(TARGET, &shown_url, self.timeout, error))?;
        let status = response.status().as_u16();
        let body = read_limited(&origin, response, self.max_body_bytes).await?;
        let secret = self.bearer.as_ref().map(Secret::expose);
        decode_answer(status, &body, secret).map_err(|failure| match failure {
            Failure::Status(excerpt) => ConnectorError::Status {
                target: TARGET.to_owned(),
                url: shown_url.clone(),
                status,
                excerpt,
            },
            Failure::Decode(detail) => ConnectorError::Decode {
                target: TARGET.to_owned(),
                url: shown_url.clone(),
                detail,
            },
        })
    }
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form_body(pairs: &[(&str, String)]) -> Result<String, ConnectorError> {
    // reqwest's `form` needs a feature the workspace does not enable; `Url` has the encoder.
    let mut scratch =
        Url::parse("http://form.invalid/").map_err(|_| ConnectorError::InvalidUrl {
            target: TARGET.to_owned(),
        })?;
    scratch
        .query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())));
    Ok(scratch.query().unwrap_or_default().to_owned())
}

/// Milliseconds as decimal seconds with exactly three decimals: `1700000000.123`, `-0.500`.
fn seconds_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let magnitude = ms.unsigned_abs();
    format!("{sign}{}.{:03}", magnitude / 1000, magnitude % 1000)
}

/// Why an answer is not a result, before the URL is attached.
#[derive(Debug, PartialEq)]
enum Failure {
    /// Prometheus reported an error, or the status is not a success: the excerpt to show.
    Status(String),
    /// A successful answer that is not the documented JSON.
    Decode(String),
}

/// The envelope of every answer.
#[derive(Deserialize)]
struct Envelope<'a> {
    status: String,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: &'a RawValue,
}

/// `[timestamp, "value"]`, the timestamp kept as the number's text.
#[derive(Deserialize)]
struct RawPoint<'a>(#[serde(borrow)] &'a RawValue, String);

#[derive(Deserialize)]
struct VectorItem<'a> {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(borrow, default)]
    value: Option<RawPoint<'a>>,
    #[serde(default)]
    histogram: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct MatrixItem<'a> {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(borrow, default)]
    values: Vec<RawPoint<'a>>,
    #[serde(default)]
    histograms: Vec<IgnoredAny>,
}

/// Turns an answer (HTTP status and body) into a result or a failure. `secret` is scrubbed
/// from anything quoted.
fn decode_answer(status: u16, body: &[u8], secret: Option<&str>) -> Result<QueryResult, Failure> {
    let envelope = match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(envelope) => envelope,
        // A proxy in front of Prometheus may answer an error in HTML or plain text.
        Err(_) if !(200..300).contains(&status) => {
            return Err(Failure::Status(excerpt(body, secret)));
        }
        Err(error) => {
            return Err(Failure::Decode(format!(
                "not the query api's json: {error}"
            )));
        }
    };
    if envelope.status != "success" || !(200..300).contains(&status) {
        let error_type = envelope.error_type.as_deref().unwrap_or("unknown");
        let message = envelope.error.as_deref().unwrap_or("no error message");
        return Err(Failure::Status(excerpt(
            format!("{error_type}: {message}").as_bytes(),
            secret,
        )));
    }
    let data = envelope
        .data
        .ok_or_else(|| Failure::Decode("a success without `data`".to_owned()))?;
    let mut warnings = envelope.warnings;
    let (kind, series, string) = decode_data(&data, &mut warnings).map_err(Failure::Decode)?;
    Ok(QueryResult {
        kind,
        series,
        string,
        warnings,
        infos: envelope.infos,
    })
}

type Decoded = (ResultKind, Vec<QuerySeries>, Option<(i64, String)>);

fn decode_data(data: &Data<'_>, warnings: &mut Vec<String>) -> Result<Decoded, String> {
    let result = data.result.get();
    let malformed =
        |error: serde_json::Error| format!("a malformed `{}` result: {error}", data.result_type);
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem<'_>> = serde_json::from_str(result).map_err(malformed)?;
            let mut series = Vec::with_capacity(items.len());
            for item in items {
                if item.histogram.is_some() {
                    warnings.push(skipped_histograms(&item.metric, 1));
                }
                // A series with only a native histogram has no float sample to keep.
                if let Some(point) = item.value {
                    series.push(QuerySeries {
                        labels: item.metric,
                        points: vec![decode_point(&point)?],
                    });
                }
            }
            Ok((ResultKind::Vector, series, None))
        }
        "matrix" => {
            let items: Vec<MatrixItem<'_>> = serde_json::from_str(result).map_err(malformed)?;
            let mut series = Vec::with_capacity(items.len());
            for item in items {
                if !item.histograms.is_empty() {
                    warnings.push(skipped_histograms(&item.metric, item.histograms.len()));
                }
                if !item.values.is_empty() {
                    let points = item
                        .values
                        .iter()
                        .map(decode_point)
                        .collect::<Result<Vec<_>, _>>()?;
                    series.push(QuerySeries {
                        labels: item.metric,
                        points,
                    });
                }
            }
            Ok((ResultKind::Matrix, series, None))
        }
        "scalar" => {
            let point: RawPoint<'_> = serde_json::from_str(result).map_err(malformed)?;
            let series = QuerySeries {
                labels: BTreeMap::new(),
                points: vec![decode_point(&point)?],
            };
            Ok((ResultKind::Scalar, vec![series], None))
        }
        "string" => {
            let RawPoint(timestamp, text) = serde_json::from_str(result).map_err(malformed)?;
            let at_ms = timestamp_ms(timestamp.get())?;
            Ok((ResultKind::String, Vec::new(), Some((at_ms, text))))
        }
        other => Err(format!("an unknown result type `{other}`")),
    }
}

/// The warning for a series whose native histogram samples were skipped.
fn skipped_histograms(labels: &BTreeMap<String, String>, n_samples: usize) -> String {
    let shown: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!(
        "skipped {n_samples} native histogram sample(s) of {{{}}}: not supported",
        shown.join(", ")
    )
}

fn decode_point(point: &RawPoint<'_>) -> Result<(i64, f64), String> {
    Ok((timestamp_ms(point.0.get())?, sample_value(&point.1)?))
}

/// A sample value as Prometheus writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn sample_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("the sample value `{text}` is not a number")),
    }
}

/// A timestamp written as a JSON number of seconds, as exact milliseconds, from its digits.
///
/// `1700000000.123` is `1700000000123`; exponents are honoured (`1.7e9`). A number with a
/// non-zero digit below the millisecond, or outside `i64` milliseconds, is an error:
/// Prometheus keeps milliseconds, so such a number did not come from it.
fn timestamp_ms(text: &str) -> Result<i64, String> {
    let invalid = |why: &str| format!("the timestamp `{text}` {why}");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (significand, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let (significand, exponent) = unsigned.split_at(at);
            let exponent = exponent
                .get(1..)
                .and_then(|digits| digits.parse::<i32>().ok())
                .ok_or_else(|| invalid("has a bad exponent"))?;
            (significand, exponent)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = significand.split_once('.').unwrap_or((significand, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(invalid("is not a number"));
    }
    // The number is `digits × 10^(scale)` milliseconds.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > MAX_TIMESTAMP_DIGITS {
        return Err(invalid("has too many digits"));
    }
    let fraction_len = i32::try_from(fraction.len()).map_err(|_| invalid("is too long"))?;
    let mut scale = exponent
        .checked_sub(fraction_len)
        .and_then(|scale| scale.checked_add(3))
        .ok_or_else(|| invalid("is out of range"))?;
    let mut kept = digits;
    // Dropping digits below the millisecond is exact only when they are zeros.
    while scale < 0 && !kept.is_empty() {
        let (rest, last) = kept.split_at(kept.len() - 1);
        if last != "0" {
            return Err(invalid("has a fraction of a millisecond"));
        }
        kept = rest;
        scale += 1;
    }
    let mut magnitude: i128 = 0;
    for byte in kept.bytes() {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|value| value.checked_add(i128::from(byte - b'0')))
            .ok_or_else(|| invalid("is out of range"))?;
    }
    if magnitude != 0 {
        for _ in 0..scale {
            magnitude = magnitude
                .checked_mul(10)
                .filter(|value| *value <= i128::from(i64::MAX) + 1)
                .ok_or_else(|| invalid("is out of range"))?;
        }
    }
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| invalid("is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_exact_milliseconds_from_the_digits() {
        let cases = [
            ("1700000000.123", Ok(1_700_000_000_123)),
            ("1700000000", Ok(1_700_000_000_000)),
            ("1700000000.1", Ok(1_700_000_000_100)),
            ("1700000000.120000", Ok(1_700_000_000_120)),
            // As an f64 times 1000 these are 1079337347471.9999 and 2183226373410.9998.
            ("1079337347.472", Ok(1_079_337_347_472)),
            ("2183226373.411", Ok(2_183_226_373_411)),
            ("0", Ok(0)),
            ("0.001", Ok(1)),
            ("-0.5", Ok(-500)),
            ("-1.25", Ok(-1250)),
            ("1.7e9", Ok(1_700_000_000_000)),
            ("17000000001.23E-1", Ok(1_700_000_000_123)),
            ("0e999", Ok(0)),
            ("9223372036854775.807", Ok(i64::MAX)),
            ("-9223372036854775.808", Ok(i64::MIN)),
        ];
        for (text, expected) in cases {
            assert_eq!(timestamp_ms(text), expected, "{text}");
        }
        for bad in [
            "1700000000.1234",
            "9223372036854775.808",
            "1e30",
            "",
            "-",
            ".5",
            "1.2.3",
            "1e",
            "\"1\"",
            "null",
            "1x",
        ] {
            let decoded = timestamp_ms(bad);
            assert!(decoded.is_err(), "`{bad}` gave {decoded:?}");
        }
    }

    #[test]
    fn times_are_sent_as_seconds_with_three_decimals() {
        assert_eq!(seconds_text(1_700_000_000_123), "1700000000.123");
        assert_eq!(seconds_text(5), "0.005");
        assert_eq!(seconds_text(-1_500), "-1.500");
        assert_eq!(seconds_text(i64::MIN), "-9223372036854775.808");
        for ms in [0, 1, 999, 1_000, 1_700_000_000_123, -42, i64::MAX] {
            assert_eq!(timestamp_ms(&seconds_text(ms)), Ok(ms));
        }
    }

    #[test]
    fn sample_values_cover_the_special_spellings() {
        assert!(sample_value("NaN").is_ok_and(f64::is_nan));
        assert_eq!(sample_value("+Inf"), Ok(f64::INFINITY));
        assert_eq!(sample_value("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(sample_value("0.1"), Ok(0.1));
        assert_eq!(sample_value("-2.5e-7"), Ok(-2.5e-7));
        assert_eq!(sample_value("1e+308"), Ok(1e308));
        assert!(sample_value("").is_err());
        assert!(sample_value("one").is_err());
    }

    #[test]
    fn the_form_body_is_url_encoded() {
        let body = form_body(&[
            (
                "query",
                "sum by (a) (rate(x{y=~\"a|b&c\"}[5m])) + 1".to_owned(),
            ),
            ("time", "1.000".to_owned()),
        ]);
        assert_eq!(
            body.ok().as_deref(),
            Some(
                "query=sum+by+%28a%29+%28rate%28x%7By%3D%7E%22a%7Cb%26c%22%7D%5B5m%5D%29%29+%2B+1&time=1.000"
            )
        );
    }
}
