//! The JSON lines and the summary of `vigil metrics parse`, on tricky inputs.

use expect_test::{Expect, expect};

use super::*;

fn check(input: &str, expect: Expect) {
    let (format, how) = choose_format(None, None, input);
    let parsed = exposition::parse(input, format);
    let mut out: String = parsed
        .samples
        .iter()
        .map(|sample| sample_json(sample) + "\n")
        .collect();
    out.push_str(&summary("input", &parsed, how));
    expect.assert_eq(&out);
}

#[test]
fn text_format_samples_with_special_values_and_lints() {
    check(
        concat!(
            "# HELP m A gauge.\n# TYPE m gauge\n",
            "m{path=\"/a,b=c}\",q=\"say \\\"hi\\\"\"} NaN 1700000000123\n",
            "m{path=\"x\"} +Inf\n",
            "m{path=\"x\"} -Inf\n",
            "vllm:num_requests_running{model_name=\"llama\"} 3\n",
            "# TYPE lat histogram\n",
            "lat_bucket{le=\"0.5\"} 3\nlat_bucket{le=\"1\"} 2\nlat_sum 1\nlat_count 3\n",
            "bad line here\n",
        ),
        expect![[r#"
            {"name":"m","labels":{"path":"/a,b=c}","q":"say \"hi\""},"value":"NaN","timestamp_ms":1700000000123,"type":"gauge"}
            {"name":"m","labels":{"path":"x"},"value":"+Inf","timestamp_ms":null,"type":"gauge"}
            {"name":"m","labels":{"path":"x"},"value":"-Inf","timestamp_ms":null,"type":"gauge"}
            {"name":"vllm:num_requests_running","labels":{"model_name":"llama"},"value":3.0,"timestamp_ms":null,"type":"unknown"}
            {"name":"lat_bucket","labels":{"le":"0.5"},"value":3.0,"timestamp_ms":null,"type":"histogram"}
            {"name":"lat_bucket","labels":{"le":"1"},"value":2.0,"timestamp_ms":null,"type":"histogram"}
            {"name":"lat_sum","labels":{},"value":1.0,"timestamp_ms":null,"type":"histogram"}
            {"name":"lat_count","labels":{},"value":3.0,"timestamp_ms":null,"type":"histogram"}
            input: format text 0.0.4 (detected: the input does not end with `# EOF`)
            2 families, 8 samples, 1 malformed lines
              line 12: invalid value `line`
            5 lint warnings (they do not change the exit status):
              line 5: duplicate series m{path="x"} (first on line 4)
              lat_bucket{}: no `le="+Inf"` bucket
              line 9: lat_bucket{}: bucket le=1 holds 2 but the smaller bucket le=0.5 holds 3: buckets must be cumulative
              lat: no HELP text
              vllm:num_requests_running: no HELP text
        "#]],
    );
}

#[test]
fn openmetrics_is_detected_and_timestamps_are_exact_milliseconds() {
    check(
        concat!(
            "# TYPE requests counter\n# HELP requests Requests.\n",
            "requests_total{code=\"200\"} 7 1700000000.123 # {trace_id=\"abc\"} 1 1700000000.5\n",
            "requests_created{code=\"200\"} 1700000000.0\n",
            "# EOF\n",
        ),
        expect![[r#"
            {"name":"requests_total","labels":{"code":"200"},"value":7.0,"timestamp_ms":1700000000123,"type":"counter","exemplar":{"labels":{"trace_id":"abc"},"value":1.0,"timestamp_ms":1700000000500}}
            {"name":"requests_created","labels":{"code":"200"},"value":1700000000.0,"timestamp_ms":null,"type":"counter"}
            input: format OpenMetrics 1.0 (detected: the input ends with `# EOF`)
            1 families, 2 samples, 0 malformed lines
        "#]],
    );
}

#[test]
fn the_content_type_wins_over_detection_and_force_wins_over_both() {
    let text = "m 1\n# EOF\n";
    assert_eq!(
        choose_format(None, Some("text/plain; version=0.0.4"), text).0,
        Format::Text
    );
    assert_eq!(
        choose_format(
            None,
            Some("application/openmetrics-text; version=1.0.0"),
            "m 1\n"
        )
        .0,
        Format::OpenMetrics
    );
    assert_eq!(choose_format(None, None, text).0, Format::OpenMetrics);
    assert_eq!(
        choose_format(
            Some(FormatArg::Text),
            Some("application/openmetrics-text"),
            text
        )
        .0,
        Format::Text
    );
}
