//! OpenMetrics 1.0 text.

use expect_test::expect;

use super::*;

#[test]
fn counter_family_with_unit_help_created_and_float_timestamps() {
    let input = r#"# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
# HELP process_cpu_seconds Total CPU time with \"quotes\", a \\ and a\nnewline.
process_cpu_seconds_total 4.20072246e+06 1520879607.789
process_cpu_seconds_created 1520430000.123
# TYPE foo_seconds counter
foo_seconds_total{a="bb"} 17.0 # {trace_id="KOO5S4vxi0o"} 0.67
foo_seconds_total{a="cc"} 18.0 1520879607.789 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.7895
# EOF
"#;
    check_openmetrics(
        input,
        expect![[r#"
        4: process_cpu_seconds_total{} 4200722.46 @1520879607789 (counter process_cpu_seconds)
        5: process_cpu_seconds_created{} 1520430000.123 (counter process_cpu_seconds)
        7: foo_seconds_total{a="bb"} 17.0 # {trace_id="KOO5S4vxi0o"} 0.67 (counter foo_seconds)
        8: foo_seconds_total{a="cc"} 18.0 @1520879607789 # {trace_id="oHg5SJYRHA0"} 9.8 @1520879607790 (counter foo_seconds)
    "#]],
    );
    expect![[r#"
        family foo_seconds: counter unit=None help=None
        family process_cpu_seconds: counter unit=Some("seconds") help=Some("Total CPU time with \"quotes\", a \\ and a\nnewline.")
    "#]].assert_eq(&render_families(&parse(input, Format::OpenMetrics)));
}

#[test]
fn every_type_and_its_suffixes() {
    check_openmetrics(
        r#"# TYPE h histogram
h_bucket{le="0.01"} 0
h_bucket{le="0.1"} 8 # {} 0.054
h_bucket{le="1"} 11 # {trace_id="KOO5S4vxi0o"} 0.67
h_bucket{le="+Inf"} 17
h_count 17
h_sum 324789.3
h_created 1520430000.123
# TYPE g gaugehistogram
g_bucket{le="0.01"} 20.0
g_bucket{le="+Inf"} 42.0
g_gcount 42.0
g_gsum 3289.3
g_sum 1
# TYPE s summary
s{quantile="0.95"} 123.7
s_sum 9036.32
s_count 807283.0
s_created 1605281325.0
# TYPE i info
i_info{name="pretty name",version="8.2.7"} 1
i 1
# TYPE st stateset
st{entity="controller",st="a"} 1.0
st{entity="controller",st="bb"} 0.0
st{entity="controller"} 1.0
# TYPE gg gauge
gg 17.0
# TYPE u unknown
u 42.23
u_total 1
no_type 1
# EOF
"#,
        expect![[r#"
            2: h_bucket{le="0.01"} 0.0 (histogram h)
            3: h_bucket{le="0.1"} 8.0 # {} 0.054 (histogram h)
            4: h_bucket{le="1"} 11.0 # {trace_id="KOO5S4vxi0o"} 0.67 (histogram h)
            5: h_bucket{le="+Inf"} 17.0 (histogram h)
            6: h_count{} 17.0 (histogram h)
            7: h_sum{} 324789.3 (histogram h)
            8: h_created{} 1520430000.123 (histogram h)
            10: g_bucket{le="0.01"} 20.0 (gaugehistogram g)
            11: g_bucket{le="+Inf"} 42.0 (gaugehistogram g)
            12: g_gcount{} 42.0 (gaugehistogram g)
            13: g_gsum{} 3289.3 (gaugehistogram g)
            14: g_sum{} 1.0 (unknown g_sum)
            16: s{quantile="0.95"} 123.7 (summary s)
            17: s_sum{} 9036.32 (summary s)
            18: s_count{} 807283.0 (summary s)
            19: s_created{} 1605281325.0 (summary s)
            21: i_info{name="pretty name",version="8.2.7"} 1.0 (info i)
            22: i{} 1.0 (unknown i)
            24: st{entity="controller",st="a"} 1.0 (stateset st)
            25: st{entity="controller",st="bb"} 0.0 (stateset st)
            28: gg{} 17.0 (gauge gg)
            30: u{} 42.23 (unknown u)
            31: u_total{} 1.0 (unknown u_total)
            32: no_type{} 1.0 (unknown no_type)
            error line 26: stateset sample `st` has no `st` label naming its state
        "#]],
    );
}

#[test]
fn timestamps_are_exact_milliseconds() {
    check_openmetrics(
        "a 1 1700000000.123\nb 1 1.7e9\nc 1 1700000000\nd 1 1604676851.123456789\n\
         e 1 0.0005\nf 1 0.0015\ng 1 0.00150001\nh 1 -0.0025\ni 1 -1.5\nj 1 17E-1\nk 1 .5\nl 1 5.\n\
         m 1 9223372036854775.807\nn 1 -9223372036854775.808\n\
         bad 1 9223372036854775.808\nbad 1 1e300\nbad 1 NaN\nbad 1 +Inf\nbad 1 1.2.3\nbad 1 1e\n\
         # EOF\n",
        expect![[r#"
            1: a{} 1.0 @1700000000123 (unknown a)
            2: b{} 1.0 @1700000000000 (unknown b)
            3: c{} 1.0 @1700000000000 (unknown c)
            4: d{} 1.0 @1604676851123 (unknown d)
            5: e{} 1.0 @0 (unknown e)
            6: f{} 1.0 @2 (unknown f)
            7: g{} 1.0 @2 (unknown g)
            8: h{} 1.0 @-2 (unknown h)
            9: i{} 1.0 @-1500 (unknown i)
            10: j{} 1.0 @1700 (unknown j)
            11: k{} 1.0 @500 (unknown k)
            12: l{} 1.0 @5000 (unknown l)
            13: m{} 1.0 @9223372036854775807 (unknown m)
            14: n{} 1.0 @-9223372036854775808 (unknown n)
            error line 15: timestamp `9223372036854775.808` is out of range for int64 milliseconds
            error line 16: timestamp `1e300` is out of range for int64 milliseconds
            error line 17: invalid timestamp `NaN`: OpenMetrics wants seconds such as `1700000000.123`
            error line 18: invalid timestamp `+Inf`: OpenMetrics wants seconds such as `1700000000.123`
            error line 19: invalid timestamp `1.2.3`: OpenMetrics wants seconds such as `1700000000.123`
            error line 20: invalid timestamp `1e`: OpenMetrics wants seconds such as `1700000000.123`
        "#]],
    );
}

#[test]
fn eof_rules() {
    // A line after `# EOF` is an error, and so is each one after it.
    check_openmetrics(
        "a 1\n# EOF\nb 2\n\n",
        expect![[r#"
        1: a{} 1.0 (unknown a)
        error line 3: unexpected line after `# EOF` (line 2): `b 2`
        error line 4: unexpected empty line after `# EOF` (line 2)
    "#]],
    );
    // Missing `# EOF`: reported one past the last line, where it was expected.
    check_openmetrics(
        "a 1\nb 2\n",
        expect![[r#"
        1: a{} 1.0 (unknown a)
        2: b{} 2.0 (unknown b)
        error line 3: missing `# EOF`: an OpenMetrics exposition must end with it
    "#]],
    );
    check_openmetrics(
        "",
        expect![[r#"
        error line 1: missing `# EOF`: an OpenMetrics exposition must end with it
    "#]],
    );
    // `# EOF` without a final line feed is fine; `# EOF ` is not `# EOF`.
    check_openmetrics(
        "a 1\n# EOF",
        expect![[r#"
        1: a{} 1.0 (unknown a)
    "#]],
    );
    check_openmetrics(
        "a 1\n# EOF \n",
        expect![[r#"
        1: a{} 1.0 (unknown a)
        error line 2: OpenMetrics allows no comments besides `# HELP`, `# TYPE`, `# UNIT` and `# EOF`: `# EOF `
        error line 3: missing `# EOF`: an OpenMetrics exposition must end with it
    "#]],
    );
}

#[test]
fn strict_whitespace_comments_and_blank_lines() {
    check_openmetrics(
        "a  1\na\t1\na 1 \n a 1\nm{a=\"1\", b=\"2\"} 1\nm {a=\"1\"} 1\nm{a=\"1\"}1\n\n# a comment\n#TYPE x gauge\n\
         # HELP x\n# TYPE x  gauge\n# TYPE x untyped\na 1  2\nm{a=\"1\",} 2\nok 3\n# EOF\n",
        expect![[r#"
            15: m{a="1"} 2.0 (unknown m)
            16: ok{} 3.0 (unknown ok)
            error line 1: expected a value, found a second space
            error line 2: expected one space and the value after `a`, found `\t1`
            error line 3: expected a timestamp, found a second space or a trailing space
            error line 4: expected a metric name or `{`, found ` a 1`
            error line 5: whitespace in a label set (OpenMetrics allows none): ` b="2"} 1`
            error line 6: a space between `m` and its label set (OpenMetrics allows none)
            error line 7: expected one space and the value after `m`, found `1`
            error line 8: empty line: OpenMetrics allows none
            error line 9: OpenMetrics allows no comments besides `# HELP`, `# TYPE`, `# UNIT` and `# EOF`: `# a comment`
            error line 10: OpenMetrics allows no comments besides `# HELP`, `# TYPE`, `# UNIT` and `# EOF`: `#TYPE x gauge`
            error line 11: `# HELP x`: expected one space and the help text, found the end of the line
            error line 12: unknown metric type ` gauge` for `x` (OpenMetrics has counter, gauge, histogram, gaugehistogram, summary, info, stateset and unknown)
            error line 13: unknown metric type `untyped` for `x` (OpenMetrics has counter, gauge, histogram, gaugehistogram, summary, info, stateset and unknown)
            error line 14: expected a timestamp, found a second space or a trailing space
        "#]],
    );
}

#[test]
fn units() {
    let input = "# TYPE foo counter\n# UNIT foo seconds\n# TYPE foo_seconds counter\n\
                 # UNIT foo_seconds seconds\n# UNIT foo_seconds seconds\n# TYPE bar_bytes gauge\n\
                 # UNIT bar_bytes \n# UNIT baz_ab b\n# UNIT baz_x x.y\n# UNIT seconds seconds\n# EOF\n";
    check_openmetrics(
        input,
        expect![[r#"
        error line 2: unit `seconds` is not a suffix of the family name `foo` (expected `foo` to end in `_seconds`)
        error line 5: second `# UNIT` for `foo_seconds`
        error line 8: unit `b` is not a suffix of the family name `baz_ab` (expected `baz_ab` to end in `_b`)
        error line 9: `# UNIT baz_x`: a unit has only the characters of a metric name, found `.y`
        error line 10: unit `seconds` is not a suffix of the family name `seconds` (expected `seconds` to end in `_seconds`)
    "#]],
    );
    expect![[r#"
        family bar_bytes: gauge unit=Some("") help=None
        family foo: counter unit=None help=None
        family foo_seconds: counter unit=Some("seconds") help=None
    "#]]
    .assert_eq(&render_families(&parse(input, Format::OpenMetrics)));
}

#[test]
fn exemplars() {
    let long_value = "x".repeat(128);
    check_openmetrics(
        &format!(
            "c_total 1 # {{a=\"1\"}} 2\nc_total 1 # {{a=\"1\"}} 2 1.5\nc_total 1 # {{}} NaN\n\
             c_total 1 # {{a=\"{long_value}\"}} 1\nc_total 1 # {{\"m\"}} 1\nc_total 1 # {{a=\"1\"}}\n\
             c_total 1 # {{a=\"1\"}} 2 3 4\nc_total 1 #{{a=\"1\"}} 2\nc_total 1 # {{a=\"1\"}} x\n\
             c_total 1 # {{\"dotted.name\"=\"1\"}} 2\n# EOF\n"
        ),
        expect![[r#"
            1: c_total{} 1.0 # {a="1"} 2.0 (unknown c_total)
            2: c_total{} 1.0 # {a="1"} 2.0 @1500 (unknown c_total)
            3: c_total{} 1.0 # {} NaN (unknown c_total)
            10: c_total{} 1.0 # {dotted.name="1"} 2.0 (unknown c_total)
            error line 4: exemplar labels have 129 characters, over OpenMetrics' 128
            error line 5: exemplar: a quoted name without `=`: `m`
            error line 6: expected one space and the exemplar's value, found the end of the line
            error line 7: unexpected text after the exemplar: ` 4`
            error line 8: expected an exemplar (` # {...} value`), found `#{a="1"} 2`
            error line 9: exemplar: invalid value `x`
        "#]],
    );
}

#[test]
fn quoted_names_and_escapes() {
    check_openmetrics(
        r#"# TYPE "my.metric" gauge
# HELP "my.metric" dotted
{"my.metric","label.name"="v"} 1
{"my.metric","a"="x\"y\\z\nw"} 2
m{a="\q"} 3
# EOF
"#,
        expect![[r#"
            3: my.metric{label.name="v"} 1.0 (gauge my.metric)
            4: my.metric{a="x\"y\\z\nw"} 2.0 (gauge my.metric)
            5: m{a="\\q"} 3.0 (unknown m)
        "#]],
    );
}

#[test]
fn crlf_line_ends_are_accepted() {
    check_openmetrics(
        "# TYPE a counter\r\na_total 1 1.5\r\n# EOF\r\n",
        expect![[r#"
            2: a_total{} 1.0 @1500 (counter a)
        "#]],
    );
}

#[test]
fn duplicate_labels_and_metadata() {
    check_openmetrics(
        "m{a=\"1\",b=\"2\",a=\"3\"} 1\n# TYPE t gauge\n# TYPE t gauge\n# HELP t x\n# HELP t y\n\
         # TYPE \"a.b\" gauge\n{\"a.b\",\"a.b\"} 1\n# EOF\n",
        expect![[r#"
            error line 1: duplicate label `a`
            error line 3: second `# TYPE` for `t` (the first said gauge)
            error line 5: second `# HELP` for `t`
            error line 7: two metric names: `a.b` and `a.b`
        "#]],
    );
}

#[test]
fn detect_format_looks_at_the_last_nonblank_line() {
    let cases = [
        ("a 1\n# EOF\n", Format::OpenMetrics),
        ("a 1\n# EOF", Format::OpenMetrics),
        ("a 1\n# EOF\r\n\r\n  \n", Format::OpenMetrics),
        ("# EOF\na 1\n", Format::Text),
        ("a 1\n", Format::Text),
        ("a 1\n#EOF\n", Format::Text),
        ("a 1\n# EOF trailing\n", Format::Text),
        ("", Format::Text),
    ];
    for (input, format) in cases {
        assert_eq!(detect_format(input), format, "{input:?}");
    }
}
