//! The Prometheus text format 0.0.4.

use expect_test::expect;

use super::*;

#[test]
fn litellm_counter_with_created_gauge() {
    check(
        r#"# HELP litellm_total_tokens_metric_total Total number of input + output tokens from LLM requests
# TYPE litellm_total_tokens_metric_total counter
litellm_total_tokens_metric_total{api_key_alias="None",hashed_api_key="litellm_proxy_master_key",model="gpt-4o"} 120.0
# HELP litellm_total_tokens_metric_created Total number of input + output tokens from LLM requests
# TYPE litellm_total_tokens_metric_created gauge
litellm_total_tokens_metric_created{api_key_alias="None",hashed_api_key="litellm_proxy_master_key",model="gpt-4o"} 1.7954356178848538e+09
litellm_remaining_api_key_budget_metric{api_key_alias="",hashed_api_key="litellm_proxy_master_key"} +Inf
"#,
        expect![[r#"
            3: litellm_total_tokens_metric_total{api_key_alias="None",hashed_api_key="litellm_proxy_master_key",model="gpt-4o"} 120.0 (counter litellm_total_tokens_metric_total)
            6: litellm_total_tokens_metric_created{api_key_alias="None",hashed_api_key="litellm_proxy_master_key",model="gpt-4o"} 1795435617.8848538 (gauge litellm_total_tokens_metric_created)
            7: litellm_remaining_api_key_budget_metric{api_key_alias="",hashed_api_key="litellm_proxy_master_key"} inf (unknown litellm_remaining_api_key_budget_metric)
        "#]],
    );
}

// Regression guard: prometheus-parse 0.2.5 drops or garbles every one of these lines.
#[test]
fn lines_other_parsers_drop() {
    check(
        r##"vllm:num_requests_running{model_name="llama",engine="0"} 3
m{path="/a,b=c}"} 1
m{msg="say \"hi\"\nbye\\"} 2
m{} 4
m{a="1",} 5
m{a="{#}",b="# not a comment"} 6
:leading_colon 7
"##,
        expect![[r##"
            1: vllm:num_requests_running{model_name="llama",engine="0"} 3.0 (unknown vllm:num_requests_running)
            2: m{path="/a,b=c}"} 1.0 (unknown m)
            3: m{msg="say \"hi\"\nbye\\"} 2.0 (unknown m)
            4: m{} 4.0 (unknown m)
            5: m{a="1"} 5.0 (unknown m)
            6: m{a="{#}",b="# not a comment"} 6.0 (unknown m)
            7: :leading_colon{} 7.0 (unknown :leading_colon)
        "##]],
    );
}

#[test]
fn special_values() {
    check(
        "a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf -infinity\ng INF\nh 1e-400\ni .5\nj 5.\nk -0\nl 0042\n\
         bad +NaN\nbad -nan\nbad 1_000\nbad 0x1p3\nbad 1e400\nbad .\nbad 1e\nbad infinit\n",
        expect![[r#"
            1: a{} NaN (unknown a)
            2: b{} inf (unknown b)
            3: c{} -inf (unknown c)
            4: d{} inf (unknown d)
            5: e{} NaN (unknown e)
            6: f{} -inf (unknown f)
            7: g{} inf (unknown g)
            8: h{} 0.0 (unknown h)
            9: i{} 0.5 (unknown i)
            10: j{} 5.0 (unknown j)
            11: k{} -0.0 (unknown k)
            12: l{} 42.0 (unknown l)
            error line 13: invalid value `+NaN`
            error line 14: invalid value `-nan`
            error line 15: invalid value `1_000`
            error line 16: invalid value `0x1p3`
            error line 17: value `1e400` is out of float64 range
            error line 18: invalid value `.`
            error line 19: invalid value `1e`
            error line 20: invalid value `infinit`
        "#]],
    );
}

#[test]
fn integer_millisecond_timestamps() {
    check(
        "a 1 1700000000123\nb 1 -12\nc 1 +5\nd 1 9223372036854775807\n\
         bad 1 1.5\nbad 1 1700000000.123\nbad 1 9223372036854775808\nbad 1 1e3\n",
        expect![[r#"
            1: a{} 1.0 @1700000000123 (unknown a)
            2: b{} 1.0 @-12 (unknown b)
            3: c{} 1.0 @5 (unknown c)
            4: d{} 1.0 @9223372036854775807 (unknown d)
            error line 5: invalid timestamp `1.5`: the text format wants integer milliseconds
            error line 6: invalid timestamp `1700000000.123`: the text format wants integer milliseconds
            error line 7: timestamp `9223372036854775808` is out of range
            error line 8: invalid timestamp `1e3`: the text format wants integer milliseconds
        "#]],
    );
}

#[test]
fn malformed_lines_are_reported_and_good_lines_kept() {
    check(
        "good 1\n2bad 1\nm{a=\"x} 1\nnext_line_survives 2\nm{a=\"x\" b=\"y\"} 1\nm{a=\"1\",a=\"2\"} 1\n\
         m 1 2 3\nm abc\nm\nm-1\nm{a} 1\nm{a=x} 1\nm{,} 1\nm{a=\"1\",,} 1\n{a=\"1\"} 1\n\
         m{a=\"1\"\nm 1 # {trace_id=\"abc\"} 1\nm{\"\"=\"x\"} 1\n\"quoted\" 1\nalso_good{x=\"y\"} 2\n",
        expect![[r#"
            1: good{} 1.0 (unknown good)
            4: next_line_survives{} 2.0 (unknown next_line_survives)
            20: also_good{x="y"} 2.0 (unknown also_good)
            error line 2: expected a metric name or `{`, found `2bad 1`
            error line 3: label `a`: unterminated quoted string `"x} 1`
            error line 5: expected `,` or `}` after the value of label `a`, found `b="y"} 1`
            error line 6: duplicate label `a`
            error line 7: unexpected text after the timestamp: `3`
            error line 8: invalid value `abc`
            error line 9: `m` has no value
            error line 10: expected a blank after the metric name `m`, found `-1`
            error line 11: expected `=` after label name `a`, found `} 1`
            error line 12: expected a quoted value for label `a`, found `x} 1`
            error line 13: expected a label name or `}`, found `,} 1`
            error line 14: expected a label name or `}`, found `,} 1`
            error line 15: no metric name: a sample needs a name before `{` or a quoted name inside it
            error line 16: expected `,` or `}` after the value of label `a`, found the end of the line
            error line 17: exemplars are only allowed in OpenMetrics, found `# {trace_id="abc"} 1`
            error line 18: empty quoted label name
            error line 19: expected a metric name or `{`, found `"quoted" 1`
        "#]],
    );
}

#[test]
fn blanks_crlf_comments_and_a_trailing_eof() {
    check(
        "# a comment\r\n\r\n  \t\r\n#no space is a comment too\r\n# HELPFUL is a comment\r\n\
         # HELP\r\n  # TYPE x gauge\r\nx 1\r\n m { a = \"1\" , b=\"2\" , } \t 2 \t 123 \r\n\
         m{a=\"1\"}3\r\n# EOF\r\nafter_eof 4\r\n",
        expect![[r#"
            8: x{} 1.0 (gauge x)
            9: m{a="1",b="2"} 2.0 @123 (unknown m)
            10: m{a="1"} 3.0 (unknown m)
            12: after_eof{} 4.0 (unknown after_eof)
        "#]],
    );
}

#[test]
fn escapes_in_label_values_and_help() {
    check(
        r#"# HELP h a \\ backslash, a \n newline, a \" kept quote and \q kept verbatim
m{a="back\\slash",b="quote\"",c="new\nline",d="\q kept",e="trailing\\"} 1
m{a="unterminated\"} 2
m{a="ok"} 3
"#,
        expect![[r#"
            2: m{a="back\\slash",b="quote\"",c="new\nline",d="\\q kept",e="trailing\\"} 1.0 (unknown m)
            4: m{a="ok"} 3.0 (unknown m)
            error line 3: label `a`: unterminated quoted string `"unterminated\"} 2`
        "#]],
    );
    let exposition = parse_text("# HELP h a \\\\ b \\n c \\\" d \\q e \\\n");
    expect![[r#"
        Some(
            "a \\ b \n c \\\" d \\q e \\",
        )
    "#]]
    .assert_debug_eq(&exposition.families["h"].help);
}

#[test]
fn counter_conventions() {
    // prometheus_client declares text-format counters with their `_total`; the Go client
    // too; some exporters declare the bare name and expose `_total`.
    check(
        "# TYPE a_total counter\na_total 1\n# TYPE a_created gauge\na_created 1.7e9\n\
         # TYPE b counter\nb_total 2\nb_created 3\nb 4\nb_other 5\n",
        expect![[r#"
            2: a_total{} 1.0 (counter a_total)
            4: a_created{} 1700000000.0 (gauge a_created)
            6: b_total{} 2.0 (counter b)
            7: b_created{} 3.0 (counter b)
            8: b{} 4.0 (counter b)
            9: b_other{} 5.0 (unknown b_other)
        "#]],
    );
}

#[test]
fn histogram_and_summary_suffixes_resolve_to_their_family() {
    check(
        r#"# TYPE lat histogram
lat_bucket{le="0.5"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.7
lat_count 2
lat_created 1.7e9
lat 9
lat_bucket{path="/"} 1
lat_bucket{le="fast"} 1
# TYPE q summary
q{quantile="0.5"} 1
q_sum 3
q_count 4
q_bucket 1
q 5
q{quantile="median"} 1
"#,
        expect![[r#"
            2: lat_bucket{le="0.5"} 1.0 (histogram lat)
            3: lat_bucket{le="+Inf"} 2.0 (histogram lat)
            4: lat_sum{} 0.7 (histogram lat)
            5: lat_count{} 2.0 (histogram lat)
            6: lat_created{} 1700000000.0 (histogram lat)
            7: lat{} 9.0 (unknown lat)
            11: q{quantile="0.5"} 1.0 (summary q)
            12: q_sum{} 3.0 (summary q)
            13: q_count{} 4.0 (summary q)
            14: q_bucket{} 1.0 (unknown q_bucket)
            error line 8: histogram bucket `lat_bucket` has no `le` label
            error line 9: histogram bucket `lat_bucket` has a non-numeric `le` label `fast`
            error line 15: summary quantile `q` has no `quantile` label
            error line 16: summary quantile `q` has a non-numeric `quantile` label `median`
        "#]],
    );
}

#[test]
fn quoted_utf8_names() {
    check(
        r#"# HELP "my.metric" a dotted name
# TYPE "my.metric" counter
{"my.metric", "label.name"="v"} 1
{"label.name"="v", "my.metric"} 2
{"my.metric"} 3
{"esc\"aped\\name","a"="1"} 4
name{"name.two"} 5
{"a"="1"} 6
{""} 7
"#,
        expect![[r#"
            3: my.metric{label.name="v"} 1.0 (counter my.metric)
            4: my.metric{label.name="v"} 2.0 (counter my.metric)
            5: my.metric{} 3.0 (counter my.metric)
            6: esc"aped\name{a="1"} 4.0 (unknown esc"aped\name)
            error line 7: two metric names: `name` and `name.two`
            error line 8: no metric name: a sample needs a name before `{` or a quoted name inside it
            error line 9: empty quoted metric name
        "#]],
    );
}

#[test]
fn metadata_errors() {
    check(
        "# TYPE m nonsense\n# TYPE i info\n# TYPE s stateset\n# TYPE m gauge\n# TYPE m counter\n\
         # HELP m one\n# HELP m two\n# TYPE\n# TYPE 1x gauge\n# TYPE x{ gauge\n# HELP \"open\n\
         # UNIT m seconds\nm 1\n",
        expect![[r#"
            13: m{} 1.0 (gauge m)
            error line 1: unknown metric type `nonsense` for `m` (the text format has counter, gauge, histogram, summary and untyped)
            error line 2: unknown metric type `info` for `i` (the text format has counter, gauge, histogram, summary and untyped)
            error line 3: unknown metric type `stateset` for `s` (the text format has counter, gauge, histogram, summary and untyped)
            error line 5: second `# TYPE` for `m` (the first said gauge)
            error line 7: second `# HELP` for `m`
            error line 9: `# TYPE`: expected a metric name, found `1x gauge`
            error line 10: `# TYPE x`: expected a blank after the name, found `{ gauge`
            error line 11: `# HELP`: unterminated quoted string `"open`
        "#]],
    );
}

#[test]
fn unicode_in_label_values_is_kept() {
    check(
        "m{a=\"héllo ✓\",b=\"\\\\✓\",c=\"\\é\"} 1\n",
        expect![[r#"
            1: m{a="héllo ✓",b="\\✓",c="\\é"} 1.0 (unknown m)
        "#]],
    );
}

#[test]
fn names_and_values_borrow_from_the_input_unless_escaped() {
    let exposition = parse_text("m{a=\"plain\",b=\"esc\\\"aped\"} 1\n{\"q.name\"} 2\n");
    let first = &exposition.samples[0];
    assert!(matches!(first.name, Cow::Borrowed(_)));
    assert!(matches!(first.labels[0].1, Cow::Borrowed(_)));
    assert!(matches!(first.labels[1].1, Cow::Owned(_)));
    assert!(matches!(
        exposition.samples[1].name,
        Cow::Borrowed("q.name")
    ));
}

#[test]
fn a_final_line_without_a_line_feed_is_a_line() {
    check(
        "a 1\nb 2",
        expect![[r#"
        1: a{} 1.0 (unknown a)
        2: b{} 2.0 (unknown b)
    "#]],
    );
    check("", expect![[""]]);
}

#[test]
fn one_blank_separates_help_from_its_name() {
    let exposition = parse_text("# HELP a  two spaces\n# HELP b \ttab kept\n# HELP c\tx\n");
    let help = |name: &str| exposition.families[name].help.clone();
    assert_eq!(help("a").as_deref(), Some(" two spaces"));
    assert_eq!(help("b").as_deref(), Some("\ttab kept"));
    assert_eq!(help("c").as_deref(), Some("x"));
}

// The fast path reuses what a line repeats of the previous one; each of these lines repeats
// a different part (or a misleading part) of the line before it.
#[test]
fn lines_that_repeat_part_of_the_previous_line() {
    check(
        r#"m{a="1",b="2"} 1
m{a="1",b="2"} 2
m{a="1",b="23"} 3
m{a="1"} 4
m{a="12"} 5
mm{a="12"} 6
m{a="12",a="3"} 7
m{a="12",} 8
m{a="12",,} 9
m{a="12"}10
m{a="12"} 11 1700000000000
m{a="12"} 12	
m{a="12"} 13
m 14
m{} 15
m{a="1\"2"} 16
m{a="1\\"} 17
m{a="12",b="x"} 18
m{b="x",a="12"} 19
"#,
        expect![[r#"
            1: m{a="1",b="2"} 1.0 (unknown m)
            2: m{a="1",b="2"} 2.0 (unknown m)
            3: m{a="1",b="23"} 3.0 (unknown m)
            4: m{a="1"} 4.0 (unknown m)
            5: m{a="12"} 5.0 (unknown m)
            6: mm{a="12"} 6.0 (unknown mm)
            8: m{a="12"} 8.0 (unknown m)
            10: m{a="12"} 10.0 (unknown m)
            11: m{a="12"} 11.0 @1700000000000 (unknown m)
            12: m{a="12"} 12.0 (unknown m)
            13: m{a="12"} 13.0 (unknown m)
            14: m{} 14.0 (unknown m)
            15: m{} 15.0 (unknown m)
            16: m{a="1\"2"} 16.0 (unknown m)
            17: m{a="1\\"} 17.0 (unknown m)
            18: m{a="12",b="x"} 18.0 (unknown m)
            19: m{b="x",a="12"} 19.0 (unknown m)
            error line 7: duplicate label `a`
            error line 9: expected a label name or `}`, found `,} 9`
        "#]],
    );
}

#[test]
fn labels_survive_the_chunks_they_are_stored_in() {
    // Far more labels than one chunk holds, in label sets small and large (one larger than a
    // chunk by itself), each sample's labels checked against what was written.
    let mut text = String::new();
    for idx in 0..3_000 {
        text.push_str(&format!(
            "m{{a=\"{idx}\",b=\"{}\",c=\"x\"}} {idx}\n",
            idx * 7
        ));
    }
    let wide: Vec<String> = (0..2_500).map(|idx| format!("l{idx}=\"{idx}\"")).collect();
    text.push_str(&format!("wide{{{}}} 1\n", wide.join(",")));
    text.push_str("after{z=\"1\"} 2\n");
    let exposition = parse_text(&text);
    assert!(exposition.errors.is_empty(), "{:?}", exposition.errors);
    assert_eq!(exposition.samples.len(), 3_002);
    for (idx, sample) in exposition.samples.iter().take(3_000).enumerate() {
        let b = (idx * 7).to_string();
        let expected = [("a", idx.to_string()), ("b", b), ("c", "x".to_owned())];
        let actual: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
            .collect();
        let expected: Vec<(&str, &str)> = expected
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        assert_eq!(actual, expected, "sample {idx}");
    }
    let wide = &exposition.samples[3_000];
    assert_eq!(wide.labels.len(), 2_500);
    assert_eq!(wide.label("l2499"), Some("2499"));
    assert_eq!(exposition.samples[3_001].label("z"), Some("1"));
    // Cloned samples share their labels' storage and still read them.
    let cloned = exposition.samples[1_234].clone();
    drop(exposition);
    assert_eq!(cloned.label("a"), Some("1234"));
}
