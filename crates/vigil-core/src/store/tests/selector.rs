//! Label matchers and the selector parser, good inputs and bad.

use expect_test::{Expect, expect};

use super::*;

/// Parses `input` and renders the matchers (or the error) for a golden comparison.
fn check(input: &str, expected: Expect) {
    let rendered = match parse_selector(input) {
        Ok(matchers) => matchers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        Err(error) => format!("error: {error}"),
    };
    expected.assert_eq(&rendered);
}

#[test]
fn parses_good_selectors() {
    check(
        r#"litellm_total_tokens_metric_total{hashed_api_key!="",team=~"search|ml"}"#,
        expect![[
            r#"__name__="litellm_total_tokens_metric_total" hashed_api_key!="" team=~"search|ml""#
        ]],
    );
    check(r#"{__name__="x"}"#, expect![[r#"__name__="x""#]]);
    check("up", expect![[r#"__name__="up""#]]);
    check("job:rate5m { }", expect![[r#"__name__="job:rate5m""#]]);
    check(
        r#"  m { a = "1" , b!~'x.*', c=`raw\n`, } "#,
        expect![[r#"__name__="m" a="1" b!~"x.*" c="raw\\n""#]],
    );
    check(
        r#"m{a="tab\there \"q\" \u00e9\x41\101"}"#,
        expect![[r#"__name__="m" a="tab	here \"q\" éAA""#]],
    );
    check(
        r#"{"my.metric", "label.name"="v"}"#,
        expect![[r#"__name__="my.metric" label.name="v""#]],
    );
    check(
        r#"{__name__=~"litellm_.*", __name__!="litellm_x"}"#,
        expect![[r#"__name__=~"litellm_.*" __name__!="litellm_x""#]],
    );
    check(r#"{team!=""}"#, expect![[r#"team!="""#]]);
}

#[test]
fn reports_bad_selectors_with_their_position() {
    check("", expect!["error: empty selector"]);
    check("   ", expect!["error: empty selector"]);
    check(
        r#"m{team:"a"}"#,
        expect!["error: at offset 6: expected `=`, `!=`, `=~` or `!~`, found `:`"],
    );
    check(
        r#"m{team="a" model="b"}"#,
        expect!["error: at offset 11: expected `,` or `}`, found `m`"],
    );
    check(
        r#"m{team="a""#,
        expect!["error: at offset 10: expected `,` or `}`, found end of input"],
    );
    check(
        r#"m{team="a}"#,
        expect!["error: at offset 7: unterminated string"],
    );
    check(
        r#"m{team=a}"#,
        expect!["error: at offset 7: expected a quoted label value, found `a`"],
    );
    check(
        r#"m{1a="b"}"#,
        expect!["error: at offset 2: expected a label name or `}`, found `1`"],
    );
    check(
        r#"m{a="\q"}"#,
        expect![[r#"error: at offset 5: invalid escape `\q`"#]],
    );
    check(
        r#"m{a="\xZZ"}"#,
        expect![[r#"error: at offset 5: invalid escape `\xZ`"#]],
    );
    check(
        r#"m{a="\xff"}"#,
        expect![[r#"error: at offset 5: invalid escape `\xff`"#]],
    );
    check(
        r#"m{team=~"a)|(b"}"#,
        expect!["error: at offset 8: invalid regular expression for label `team`: unopened group"],
    );
    check(
        r#"m{team=~"(ab"}"#,
        expect!["error: at offset 8: invalid regular expression for label `team`: unclosed group"],
    );
    check(
        r#"m{__name__="n"}"#,
        expect!["error: at offset 2: the metric name is set twice"],
    );
    check(
        r#"m{"n"}"#,
        expect!["error: at offset 2: the metric name is set twice"],
    );
    check(
        r#"{team=~".*"}"#,
        expect![[
            r#"error: selector `{team=~".*"}` must name a metric or have a matcher that does not match the empty string"#
        ]],
    );
    check(
        r#"{team=""}"#,
        expect![[
            r#"error: selector `{team=""}` must name a metric or have a matcher that does not match the empty string"#
        ]],
    );
    check(
        "m{} x",
        expect!["error: at offset 4: expected the end of the selector, found `x`"],
    );
    check(
        "=m",
        expect!["error: at offset 0: expected a metric name or `{`, found `=`"],
    );
    check(
        "m{a=\"x\ny\"}",
        expect!["error: at offset 4: unterminated string"],
    );
}

#[test]
fn regex_matchers_are_fully_anchored() {
    let matcher = Matcher::new("team", MatchOp::RegexMatch, "search|ml").unwrap();
    assert!(matcher.matches("search"));
    assert!(matcher.matches("ml"));
    assert!(!matcher.matches("mlops"));
    assert!(!matcher.matches("research"));
    let dot_all = Matcher::new("v", MatchOp::RegexMatch, "a.b").unwrap();
    assert!(dot_all.matches("a\nb"));
    let negated = Matcher::new("team", MatchOp::RegexNoMatch, "search|ml").unwrap();
    assert!(negated.matches("mlops"));
    assert!(!negated.matches("ml"));
    // A missing label is the empty string.
    assert!(
        Matcher::new("team", MatchOp::RegexMatch, "|x")
            .unwrap()
            .matches("")
    );
    assert!(Matcher::equal("team", "").matches(""));
    assert!(!Matcher::not_equal("team", "").matches(""));
    let error = Matcher::new("team", MatchOp::RegexMatch, "a)|(b").unwrap_err();
    assert!(
        matches!(error, SelectorError::InvalidRegex { position: 0, .. }),
        "{error}"
    );
}

fn keyed(store: &SeriesStore, selector: &str) -> Vec<String> {
    let matchers = parse_selector(selector).unwrap();
    store
        .select(&matchers)
        .into_iter()
        .map(|series| {
            let identity = store.identity(series).unwrap();
            format!("{}{}", identity.name, identity.labels)
        })
        .collect()
}

#[test]
fn select_applies_every_operator() {
    let mut store = store();
    store.ingest(
        "gw",
        secs(0),
        &[
            sample("tokens_total", &[("team", "search"), ("key", "k1")], 1.0),
            sample("tokens_total", &[("team", "ml"), ("key", "k2")], 1.0),
            sample("tokens_total", &[("team", "ops"), ("key", "")], 1.0),
            sample("tokens_total", &[("key", "k4")], 1.0),
            sample("requests_total", &[("team", "ml")], 1.0),
        ],
    );
    expect![[r#"
        [
            "tokens_total{key=\"k1\",team=\"search\"}",
            "tokens_total{key=\"k2\",team=\"ml\"}",
        ]
    "#]]
    .assert_debug_eq(&keyed(&store, r#"tokens_total{key!="",team=~"search|ml"}"#));
    expect![[r#"
        [
            "tokens_total{key=\"k4\"}",
            "tokens_total{team=\"ops\"}",
        ]
    "#]]
    .assert_debug_eq(&keyed(&store, r#"tokens_total{team!~"search|ml"}"#));
    expect![[r#"
        [
            "tokens_total{key=\"k4\"}",
        ]
    "#]]
    .assert_debug_eq(&keyed(&store, r#"tokens_total{team=""}"#));
    expect![[r#"
        [
            "requests_total{team=\"ml\"}",
            "tokens_total{key=\"k2\",team=\"ml\"}",
        ]
    "#]]
    .assert_debug_eq(&keyed(&store, r#"{team="ml"}"#));
    expect![[r#"
        [
            "requests_total{team=\"ml\"}",
        ]
    "#]]
    .assert_debug_eq(&keyed(&store, r#"{__name__=~"req.*", __source__="gw"}"#));
    assert!(keyed(&store, r#"tokens_total{__source__="elsewhere"}"#).is_empty());
    assert!(keyed(&store, r#"never_seen{team="ml"}"#).is_empty());
    assert!(keyed(&store, r#"tokens_total{never_seen="x"}"#).is_empty());
}

#[test]
fn the_metric_name_of_a_selector_is_found_in_either_spelling() {
    use crate::store::selector_metric_name;
    for (selector, expected) in [
        ("requests_total", Some("requests_total")),
        (
            r#"vllm:num_requests_running{model="m"}"#,
            Some("vllm:num_requests_running"),
        ),
        (r#"{"my.metric", code="200"}"#, Some("my.metric")),
        (r#"{__name__="a_total", code="5.."}"#, Some("a_total")),
        (r#"{__name__=~"a_.*"}"#, None),
        (r#"{code="200"}"#, None),
        ("requests_total{", None),
    ] {
        assert_eq!(
            selector_metric_name(selector).as_deref(),
            expected,
            "{selector}"
        );
    }
}

/// A `Selector` is parsed when it is made or read back, so detector configs (and the engine)
/// only ever hold selectors that parse and name their metric.
#[test]
fn a_selector_holds_only_text_that_parses_and_names_a_metric() {
    use crate::store::Selector;
    let parsed = Selector::parse(r#"{"my.metric", code="200"}"#).unwrap();
    assert_eq!(parsed.metric_name(), "my.metric");
    assert_eq!(parsed.matchers().len(), 2);
    let json = serde_json::to_string(&parsed).unwrap();
    assert_eq!(json, r#""{\"my.metric\", code=\"200\"}""#);
    assert_eq!(serde_json::from_str::<Selector>(&json).unwrap(), parsed);
    assert!(matches!(
        Selector::parse(r#"{code="200"}"#),
        Err(SelectorError::NoMetricName { .. })
    ));
    assert!(matches!(
        Selector::parse(r#"{__name__=~"a_.*"}"#),
        Err(SelectorError::NoMetricName { .. })
    ));
    for (bad, expected) in [
        (r#""requests_total{""#, "expected a label name"),
        (r#""{code=\"200\"}""#, "must start with a metric name"),
        (r#""""#, "empty selector"),
    ] {
        let error = serde_json::from_str::<Selector>(bad).unwrap_err();
        assert!(error.to_string().contains(expected), "{bad}: {error}");
    }
}

// A detector grouped by a label reads only series that carry it.
#[test]
fn requiring_a_label_adds_a_not_empty_matcher_unless_one_matches_it_already() {
    let cases = [
        ("metric_total", "model_id", r#"metric_total{model_id!=""}"#),
        (
            "metric_total{}",
            "model_id",
            r#"metric_total{model_id!=""}"#,
        ),
        (
            r#"metric_total{exception_status=~"408|429|5.."}"#,
            "model_id",
            r#"metric_total{exception_status=~"408|429|5..",model_id!=""}"#,
        ),
        (
            r#"metric_total{model_id="a"}"#,
            "model_id",
            r#"metric_total{model_id="a"}"#,
        ),
        ("metric_total", "not a label", "metric_total"),
    ];
    for (text, label, expected) in cases {
        let selector = Selector::parse(text).expect("the case parses");
        assert_eq!(
            selector.requiring_label(label).as_str(),
            expected,
            "{text} by {label}"
        );
    }
}
