//! Differential tests against `prometheus-parse` 0.2.5: on what it reads correctly we must
//! agree sample for sample; on what it drops or garbles we must not.

use prometheus_parse::{Scrape, Value};

use super::*;

/// `prometheus-parse`'s reading of `input`. Samples without a timestamp get the given sample
/// time, the Unix epoch here, so no input below uses a timestamp of 0.
fn oracle(input: &str) -> Scrape {
    let lines = input.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse_at(lines, Default::default()).unwrap()
}

/// A sample as both parsers can state it: name, labels, value bits, timestamp and type.
#[derive(Debug, PartialEq)]
struct Common {
    name: String,
    labels: Vec<(String, String)>,
    /// `to_bits`, so that NaN equals NaN.
    value_bits: u64,
    timestamp_ms: Option<i64>,
    metric_type: &'static str,
}

fn from_oracle(sample: &prometheus_parse::Sample) -> Common {
    let (value, metric_type) = match sample.value {
        Value::Counter(value) => (value, "counter"),
        Value::Gauge(value) => (value, "gauge"),
        Value::Untyped(value) => (value, "unknown"),
        Value::Histogram(_) | Value::Summary(_) => panic!("not a scalar: {sample:?}"),
    };
    let mut labels: Vec<(String, String)> = sample
        .labels
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    labels.sort();
    let timestamp_ms = sample.timestamp.timestamp_millis();
    Common {
        name: sample.metric.clone(),
        labels,
        value_bits: if value.is_nan() {
            f64::NAN.to_bits()
        } else {
            value.to_bits()
        },
        timestamp_ms: (timestamp_ms != 0).then_some(timestamp_ms),
        metric_type,
    }
}

fn from_ours(sample: &ParsedSample<'_>) -> Common {
    let mut labels: Vec<(String, String)> = sample
        .labels
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    labels.sort();
    Common {
        name: sample.name.to_string(),
        labels,
        value_bits: if sample.value.is_nan() {
            f64::NAN.to_bits()
        } else {
            sample.value.to_bits()
        },
        timestamp_ms: sample.timestamp_ms,
        metric_type: sample.metric_type.as_str(),
    }
}

/// A small deterministic generator (xorshift64*).
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'t>(&mut self, items: &[&'t str]) -> &'t str {
        items[self.below(items.len())]
    }

    fn name(&mut self, prefix: &str) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz_0123456789";
        let len = 1 + self.below(12);
        let mut name = prefix.to_owned();
        for _ in 0..len {
            name.push(char::from(CHARS[self.below(CHARS.len())]));
        }
        name
    }
}

/// Expositions that `prometheus-parse` reads correctly: plain names, counters, gauges and
/// untyped samples declared by their exact names, label values without `,` `=` `}` `"` `\`,
/// no `{}`, integer-millisecond timestamps.
fn simple_exposition(generator: &mut Generator) -> String {
    let mut out = String::new();
    for family_idx in 0..1 + generator.below(8) {
        let name = generator.name(&format!("f{family_idx}_"));
        if generator.below(2) == 0 {
            out.push_str(&format!("# HELP {name} Some help, with = and {{ signs.\n"));
        }
        match generator.below(4) {
            0 => out.push_str(&format!("# TYPE {name} counter\n")),
            1 => out.push_str(&format!("# TYPE {name} gauge\n")),
            2 => out.push_str(&format!("# TYPE {name} untyped\n")),
            _ => {}
        }
        for _ in 0..1 + generator.below(5) {
            let mut labels = Vec::new();
            for label_idx in 0..generator.below(5) {
                let label_name = generator.name(&format!("l{label_idx}"));
                let label_value = generator.pick(&[
                    "",
                    "None",
                    "gpt-4o",
                    "/chat/completions",
                    "curl/7.88.1",
                    "a b c",
                    "héllo ✓",
                    "127.0.0.1:4000",
                    "# not a comment",
                    "{open",
                ]);
                labels.push(format!("{label_name}=\"{label_value}\""));
            }
            let label_set = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let value = generator.pick(&[
                "0",
                "1",
                "120.0",
                "-3.5",
                "1.7954356178848538e+09",
                "1e-3",
                "NaN",
                "+Inf",
                "-Inf",
                "15.290000000000001",
            ]);
            let timestamp = match generator.below(3) {
                0 => format!(" {}", 1_600_000_000_000 + generator.below(100_000_000_000)),
                1 => format!(" -{}", 1 + generator.below(1_000_000)),
                _ => String::new(),
            };
            out.push_str(&format!("{name}{label_set} {value}{timestamp}\n"));
        }
    }
    out
}

#[test]
fn agrees_with_prometheus_parse_where_it_is_right() {
    let mut generator = Generator(0x9E37_79B9_7F4A_7C15);
    let mut n_samples = 0;
    for _ in 0..500 {
        let input = simple_exposition(&mut generator);
        let exposition = parse_text(&input);
        assert!(
            exposition.errors.is_empty(),
            "{input}\n{:?}",
            exposition.errors
        );
        let theirs: Vec<Common> = oracle(&input).samples.iter().map(from_oracle).collect();
        let ours: Vec<Common> = exposition.samples.iter().map(from_ours).collect();
        assert_eq!(ours, theirs, "{input}");
        n_samples += ours.len();
    }
    assert!(n_samples > 3_000, "only {n_samples} samples compared");
}

/// `prometheus-parse`'s samples of `input` by name, for the cases below.
fn oracle_samples(input: &str) -> Vec<Common> {
    oracle(input).samples.iter().map(from_oracle).collect()
}

fn our_samples(input: &str, format: Format) -> Vec<Common> {
    let exposition = parse(input, format);
    assert!(exposition.errors.is_empty(), "{:?}", exposition.errors);
    exposition.samples.iter().map(from_ours).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    labels.sort();
    labels
}

#[test]
fn prometheus_parse_drops_names_with_a_colon() {
    let input = "vllm:num_requests_running{model_name=\"llama\"} 3\n";
    assert!(oracle_samples(input).is_empty());
    let ours = our_samples(input, Format::Text);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].name, "vllm:num_requests_running");
}

#[test]
fn prometheus_parse_drops_or_garbles_label_values_with_separators() {
    // A comma splits the value; an `=` loses the label; a `}` loses the line.
    let comma = "m{path=\"/a,b\",x=\"1\"} 1\n";
    let equals = "m{query=\"a=b\",x=\"1\"} 1\n";
    let brace = "m{path=\"/a}\",x=\"1\"} 1\n";
    for (input, expected) in [
        (comma, labels(&[("path", "/a,b"), ("x", "1")])),
        (equals, labels(&[("query", "a=b"), ("x", "1")])),
        (brace, labels(&[("path", "/a}"), ("x", "1")])),
    ] {
        let theirs = oracle_samples(input);
        assert!(
            theirs.iter().all(|sample| sample.labels != expected),
            "prometheus-parse got {input:?} right: {theirs:?}"
        );
        assert_eq!(
            our_samples(input, Format::Text)[0].labels,
            expected,
            "{input:?}"
        );
    }
    assert!(oracle_samples(brace).is_empty());
}

#[test]
fn prometheus_parse_garbles_escaped_quotes() {
    let input = "m{msg=\"say \\\"hi\\\"\"} 1\n";
    let expected = labels(&[("msg", "say \"hi\"")]);
    let theirs = oracle_samples(input);
    assert_eq!(theirs.len(), 1);
    assert_ne!(theirs[0].labels, expected);
    assert_eq!(our_samples(input, Format::Text)[0].labels, expected);
}

#[test]
fn prometheus_parse_drops_an_empty_label_set() {
    let input = "m{} 4\n";
    assert!(oracle_samples(input).is_empty());
    assert_eq!(our_samples(input, Format::Text).len(), 1);
}

#[test]
fn prometheus_parse_types_openmetrics_counters_as_untyped_and_loses_float_timestamps() {
    let input = "# TYPE requests counter\nrequests_total 17 1700000000.5\n# EOF\n";
    let theirs = oracle_samples(input);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].metric_type, "unknown");
    assert_eq!(theirs[0].timestamp_ms, None);
    let ours = our_samples(input, detect_format(input));
    assert_eq!(ours[0].metric_type, "counter");
    assert_eq!(ours[0].timestamp_ms, Some(1_700_000_000_500));
}
