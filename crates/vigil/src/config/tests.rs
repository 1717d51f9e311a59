//! Config loading: the shipped example is valid, and bad files get every problem, located.

use std::path::Path;

use expect_test::{Expect, expect};

use super::*;

fn check(text: &str, expect: Expect) {
    let rendered = match parse(text, "vigil.yaml", Path::new(".")) {
        Ok(_) => "ok\n".to_owned(),
        Err(problems) => problems.to_string(),
    };
    expect.assert_eq(&rendered);
}

pub(super) const MINIMAL: &str = "mode: autonomous
ledger:
  sqlite_path: vigil.db
sources:
  - name: gw
    kind: litellm
    url: http://127.0.0.1:4000/metrics/
detectors:
  - name: token-spike
    kind: spike
    source: gw
pager:
  kind: log
";

#[test]
fn the_shipped_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse(&text, "examples/vigil.yaml", Path::new("examples")).unwrap();
    // The LiteLLM gateway and a self-hosted vLLM server.
    assert_eq!(config.sources.len(), 2);
    assert!(config.policies_dir.ends_with("policies"));
    let Some(provider_errors) = config
        .detectors
        .iter()
        .position(|detector| detector.name() == "provider-errors")
    else {
        panic!("no provider-errors detector: {:?}", config.detectors);
    };
    let vigil_core::detector::DetectorConfig::BurnRate(burn) = &config.detectors[provider_errors]
    else {
        panic!(
            "provider-errors is a burn-rate detector: {:?}",
            config.detectors
        );
    };
    assert_eq!(burn.rules.len(), 3, "the Workbook's rules");
    assert_eq!(burn.bucket_ms, 30_000, "a tenth of the 5 m window");
    assert_eq!(
        config.detectors[provider_errors].metrics(),
        [
            "litellm_deployment_failure_responses_total",
            "litellm_deployment_total_requests_total"
        ]
    );
}

#[test]
fn the_spikes_harness_measures_the_spike_detectors_the_example_ships() {
    // `vigil-eval spikes` reports on what users run: the example's two spike detectors, read
    // from the file, are the harness's, but for the labels that name people.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse(&text, "examples/vigil.yaml", Path::new("examples")).unwrap();
    let shipped = |name: &str| {
        config
            .detectors
            .iter()
            .find_map(|detector| match detector {
                vigil_core::detector::DetectorConfig::Spike(spike) if spike.name == name => {
                    let mut spike = spike.clone();
                    spike.alias_label = None;
                    spike.team_label = None;
                    Some(spike)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no spike detector {name} in the example"))
    };
    let tokens = vigil_eval::spikes::shipped_spike_detector()
        .config()
        .clone();
    let requests = vigil_eval::spikes::request_spike_detector()
        .config()
        .clone();
    assert_eq!(shipped("token-spike"), tokens);
    assert_eq!(shipped("key-request-spike"), requests);
}

#[test]
fn threshold_detectors_report_every_bad_field() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: latency
    kind: threshold
    source: gw
    quantile: 1.5
    rate: 'errors_total{'
    describe: p95
    above: 2
    below: 1
    clear: 3
    fire_after_samples: 0
pager:"#,
    );
    check(
        &text,
        expect![[r#"
            5 problems:
              vigil.yaml:16: `detectors[1].rate`: `errors_total{` is not a selector: at offset 13: expected a label name or `}`, found end of input
              vigil.yaml:15: `detectors[1].quantile`: must be between 0 and 1 exclusive (0.95 for p95), found `1.5`
              vigil.yaml:12: `detectors[1].buckets`: `quantile` needs `buckets`: the histogram's `_bucket` series
              vigil.yaml:12: `detectors[1]`: set exactly one of `above` and `below`
              vigil.yaml:21: `detectors[1].fire_after_samples`: must be at least 1
        "#]],
    );
}

#[test]
fn burn_rate_detectors_report_every_bad_field() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: errors
    kind: burn_rate
    source: gw
    bad: 'x{a="1"'
    total: '{a="1"}'
    objective: 99.9
    period_days: 0
    rules:
      - { severity: info, long_secs: 60, short_secs: 300, burn_rate: 0 }
pager:"#,
    );
    check(
        &text,
        expect![[r#"
            7 problems:
              vigil.yaml:15: `detectors[1].bad`: `x{a="1"` is not a selector: at offset 7: expected `,` or `}`, found end of input
              vigil.yaml:16: `detectors[1].total`: `{a="1"}` must start with a metric name
              vigil.yaml:17: `detectors[1].objective`: must be between 0 and 1 exclusive (0.999 for 99.9%), found `99.9`
              vigil.yaml:18: `detectors[1].period_days`: must be at least 1
              vigil.yaml:20: `detectors[1].rules[0]`: needs 0 < short_secs < long_secs: the short window resets the alert
              vigil.yaml:20: `detectors[1].rules[0].burn_rate`: must be above 0
              vigil.yaml:20: `detectors[1].rules[0].severity`: must be `page` or `ticket`
        "#]],
    );
}

#[test]
fn proportion_drop_and_version_change_detectors_report_every_bad_field() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: evals
    kind: proportion_drop
    source: gw
    good: 'passed{'
    total: all_total
    bad: failed_total
    describe: pass rate
    group_by: 'prompt-name'
    min_drop: 1.5
    alert_probability: 0
    clear_drop: 2
    min_cases: 0
  - name: versions
    kind: version_change
    source: gw
    selector: evals_total
    version_label: prompt_version
    group_by: prompt_version
    max_versions: 0
pager:"#,
    );
    check(
        &text,
        expect![[r#"
            9 problems:
              vigil.yaml:15: `detectors[1].good`: `passed{` is not a selector: at offset 7: expected a label name or `}`, found end of input
              vigil.yaml:12: `detectors[1]`: set exactly one of `total` (all events) and `bad` (the bad events only)
              vigil.yaml:19: `detectors[1].group_by`: `prompt-name` is not a label name
              vigil.yaml:23: `detectors[1].min_cases`: must be at least 1
              vigil.yaml:20: `detectors[1].min_drop`: must be between 0 and 1 exclusive (0.1 for ten points), found `1.5`
              vigil.yaml:21: `detectors[1].alert_probability`: must be above 0 and under 0.5 (0.001 is one false alarm in a thousand tests), found `0`
              vigil.yaml:22: `detectors[1].clear_drop`: must be at least 0 and under `min_drop` (1.5) so that clearing has hysteresis, found `2`
              vigil.yaml:29: `detectors[2].group_by`: must differ from `version_label`: each version would be a group of its own and never change
              vigil.yaml:30: `detectors[2].max_versions`: must be at least 1
        "#]],
    );
}

#[test]
fn the_new_detector_kinds_default_sensibly() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: evals
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
  - name: versions
    kind: version_change
    source: gw
    selector: evals_total
    version_label: prompt_version
pager:"#,
    );
    let config = parse(&text, "vigil.yaml", Path::new(".")).unwrap();
    let Some(vigil_core::detector::DetectorConfig::ProportionDrop(drop)) = config.detectors.get(1)
    else {
        panic!("{:?}", config.detectors);
    };
    assert_eq!(drop.baseline_half_life_secs, 7 * 86_400);
    assert_eq!(drop.clear_drop, drop.min_drop / 2.0);
    assert!(!drop.total_is_bad);
    assert_eq!(config.detectors[2].metrics(), ["evals_total"]);
}

#[test]
fn a_minimal_config_is_valid_with_defaults() {
    let config = parse(MINIMAL, "vigil.yaml", Path::new("/etc/vigil")).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(config.policies_dir, Path::new("/etc/vigil/policies"));
    assert!(
        matches!(config.ledger, LedgerSetting::Sqlite(ref path) if path == Path::new("/etc/vigil/vigil.db"))
    );
    assert_eq!(config.sources[0].interval.as_secs(), 15);
}

#[test]
fn a_spike_detector_says_what_its_metric_counts() {
    let spike_unit = |text: &str| {
        let config = parse(text, "vigil.yaml", Path::new(".")).unwrap();
        match config.detectors.first() {
            Some(vigil_core::detector::DetectorConfig::Spike(spike)) => spike.unit,
            other => panic!("{other:?}"),
        }
    };
    use vigil_core::detector::spike::RateUnit;
    assert_eq!(spike_unit(MINIMAL), RateUnit::Tokens);
    let requests = MINIMAL.replace(
        "    source: gw\npager",
        "    source: gw\n    unit: requests\npager",
    );
    assert_eq!(spike_unit(&requests), RateUnit::Requests);
    check(
        &MINIMAL.replace(
            "    source: gw\npager",
            "    source: gw\n    unit: calls\npager",
        ),
        expect![[r#"
            1 problem:
              vigil.yaml:12: `detectors[0].unit`: must be `tokens`, `requests` or `usd` (what the metric counts), found `calls`
        "#]],
    );
}

// Regression guard: an unknown key must be an error with its line, not silently ignored.
#[test]
fn an_unknown_key_is_reported_with_its_line() {
    let text = MINIMAL.replace("    url: http", "    urll: http");
    check(
        &text,
        expect![[r#"
            1 problem:
              vigil.yaml:7: unknown field `urll`, expected one of name, kind, url, scrape_interval_secs, scrape_timeout_secs, bearer_token, max_series, labels, tls, admin
        "#]],
    );
}

#[test]
fn every_semantic_problem_is_reported_at_once_with_path_and_line() {
    let text = "mode: autonomous
listen: nowhere
ledger:
  sqlite_path: vigil.db
  postgres_url: { env: DB }
sources:
  - name: gw
    kind: vllm
    url: ftp://example.com/metrics
    scrape_interval_secs: 5
    scrape_timeout_secs: 10
    admin:
      master_key: { env: KEY, file: key.txt }
  - name: gw
    kind: generic
    url: http://127.0.0.1:9000/metrics
detectors:
  - name: token-spike
    kind: spike
    source: nowhere
    fire_ratio: 1
    warmup_samples: 0
diagnosis:
  runaway_min_share: 2
api_keys:
  - tier: critical
pager:
  kind: webhook
  url: not a url
";
    check(
        text,
        expect![[r#"
            14 problems:
              vigil.yaml:2: `listen`: `nowhere` is not an address like 127.0.0.1:9464: invalid socket address syntax
              vigil.yaml:3: `ledger`: set either `sqlite_path` or `postgres_url`, not both
              vigil.yaml:9: `sources[0].url`: `ftp://example.com/metrics` must be an http or https URL with a host
              vigil.yaml:11: `sources[0].scrape_timeout_secs`: 10s is longer than the 5s scrape interval
              vigil.yaml:12: `sources[0].admin`: an admin API is only supported for `kind: litellm`
              vigil.yaml:13: `sources[0].admin.master_key`: set either `env` or `file`, not both
              vigil.yaml:14: `sources[1].name`: duplicate source name `gw`
              vigil.yaml:20: `detectors[0].source`: no source is named `nowhere` (pushed events are in `push:evals`, `push:agent_runs`, `push:alerts`, `push:spans`)
              vigil.yaml:21: `detectors[0].fire_ratio`: must be above 1: a spike is a multiple of normal
              vigil.yaml:18: `detectors[0].clear_ratio`: must be below `fire_ratio` (1) so that firing and clearing differ
              vigil.yaml:22: `detectors[0].warmup_samples`: must be at least 1
              vigil.yaml:24: `diagnosis.runaway_min_share`: must be above 0 and at most 1
              vigil.yaml:26: `api_keys[0]`: set `hashed_key` or `alias`
              vigil.yaml:29: `pager.url`: `not a url` is not a URL: relative URL without a base
        "#]],
    );
}

#[test]
fn a_yaml_syntax_error_is_located() {
    let text = MINIMAL.replace("  - name: gw", "  - name: [gw");
    let problems = parse(&text, "vigil.yaml", Path::new(".")).unwrap_err();
    assert_eq!(problems.0.len(), 1);
    assert!(problems.0[0].line.is_some(), "{problems}");
}

#[test]
fn extra_labels_and_tls_are_validated() {
    let text = MINIMAL.replace(
        "    url: http://127.0.0.1:4000/metrics/\n",
        "    url: http://127.0.0.1:4000/metrics/\n    labels: { cluster: eu-1, __bad: x, 1st: y }\n    tls: { cert_file: client.pem }\n",
    );
    check(
        &text,
        expect![[r#"
            4 problems:
              vigil.yaml:8: `sources[0].labels.1st`: `1st` is not a label name: use letters, digits and `_`, not starting with a digit or `__`
              vigil.yaml:8: `sources[0].labels.__bad`: `__bad` is not a label name: use letters, digits and `_`, not starting with a digit or `__`
              vigil.yaml:9: `sources[0].tls`: only applies to an `https` URL
              vigil.yaml:9: `sources[0].tls`: set both `cert_file` and `key_file`, or neither
        "#]],
    );
    let good = MINIMAL.replace(
        "    url: http://127.0.0.1:4000/metrics/\n",
        "    url: https://gateway.internal/metrics/\n    labels: { cluster: eu-1 }\n    tls: { ca_file: ca.pem, cert_file: c.pem, key_file: c.key }\n",
    );
    let config = parse(&good, "vigil.yaml", Path::new("/etc/vigil")).unwrap();
    let source = &config.sources[0];
    assert_eq!(
        source.labels.get("cluster").map(String::as_str),
        Some("eu-1")
    );
    assert_eq!(
        source.tls.ca_file.as_deref(),
        Some(Path::new("/etc/vigil/ca.pem"))
    );
    assert!(source.tls.client_cert.is_some());
}

#[test]
fn pagerduty_and_slack_pagers_are_validated() {
    let pagerduty = MINIMAL.replace(
        "  kind: log\n",
        "  kind: pagerduty\n  routing_key: { env: VIGIL_PAGERDUTY_ROUTING_KEY, file: key.txt }\n  events_url: ftp://events.pagerduty.com/v2/enqueue\n",
    );
    check(
        &pagerduty,
        expect![[r#"
            2 problems:
              vigil.yaml:14: `pager.routing_key`: set either `env` or `file`, not both
              vigil.yaml:15: `pager.events_url`: `ftp://events.pagerduty.com/v2/enqueue` must be an http or https URL with a host
        "#]],
    );
    let slack = MINIMAL.replace("  kind: log\n", "  kind: slack\n  webhook_url: {}\n");
    check(
        &slack,
        expect![[r#"
            1 problem:
              vigil.yaml:14: `pager.webhook_url`: set `env` (a variable name) or `file` (a path)
        "#]],
    );
    // The Slack webhook URL holds its token, so it is a secret and never written inline.
    let unknown = MINIMAL.replace(
        "  kind: log\n",
        "  kind: slack\n  url: https://hooks.slack.com/x\n",
    );
    check(
        &unknown,
        expect![[r#"
            1 problem:
              vigil.yaml:12: unknown field `url`, expected one of webhook_url
        "#]],
    );

    // The events URL and the routing key's source of a PagerDuty pager section.
    let pagerduty = |section: &str, base_dir: &str| {
        let text = MINIMAL.replace("  kind: log\n", section);
        let config = parse(&text, "vigil.yaml", Path::new(base_dir)).unwrap();
        let PagerConfig::PagerDuty {
            events_url,
            routing_key,
        } = config.pager
        else {
            panic!("{:?}", config.pager);
        };
        (events_url.as_str().to_owned(), routing_key)
    };
    assert_eq!(
        pagerduty(
            "  kind: pagerduty\n  routing_key: { env: VIGIL_PAGERDUTY_ROUTING_KEY }\n  events_url: https://events.eu.pagerduty.com/v2/enqueue\n",
            ".",
        ),
        (
            "https://events.eu.pagerduty.com/v2/enqueue".to_owned(),
            vigil_connectors::secret::SecretSource::Env("VIGIL_PAGERDUTY_ROUTING_KEY".to_owned())
        )
    );
    assert_eq!(
        pagerduty(
            "  kind: pagerduty\n  routing_key: { file: pagerduty.key }\n",
            "/etc/vigil",
        ),
        (
            "https://events.pagerduty.com/v2/enqueue".to_owned(),
            vigil_connectors::secret::SecretSource::File("/etc/vigil/pagerduty.key".into())
        )
    );
    let slack = MINIMAL.replace(
        "  kind: log\n",
        "  kind: slack\n  webhook_url: { env: VIGIL_SLACK_WEBHOOK_URL }\n",
    );
    let config = parse(&slack, "vigil.yaml", Path::new(".")).unwrap();
    assert!(
        matches!(&config.pager, PagerConfig::Slack { webhook_url: vigil_connectors::secret::SecretSource::Env(name) } if name == "VIGIL_SLACK_WEBHOOK_URL"),
        "{:?}",
        config.pager
    );
}

#[test]
fn ledger_checkpoints_are_checked_and_resolved_against_the_config_folder() {
    let text = MINIMAL.replace(
        "  sqlite_path: vigil.db\n",
        "  sqlite_path: vigil.db\n  checkpoint:\n    key_file: keys/ledger.key\n    publish_file: out/checkpoint.json\n",
    );
    let config = parse(&text, "vigil.yaml", Path::new("/etc/vigil")).unwrap();
    let checkpoint = config.checkpoint.unwrap();
    assert_eq!(checkpoint.key_file, Path::new("/etc/vigil/keys/ledger.key"));
    assert_eq!(checkpoint.interval, std::time::Duration::from_secs(600));
    assert_eq!(
        checkpoint.publish_file.as_deref(),
        Some(Path::new("/etc/vigil/out/checkpoint.json"))
    );
    assert!(checkpoint.webhook_url.is_none());
    check(
        &MINIMAL.replace(
            "  sqlite_path: vigil.db\n",
            "  sqlite_path: vigil.db\n  checkpoint:\n    key_file: \"\"\n    interval_secs: 5\n    webhook_url: ftp://example.com/x\n",
        ),
        expect![[r#"
            3 problems:
              vigil.yaml:6: `ledger.checkpoint.interval_secs`: must be between 10 and 86400 (a day)
              vigil.yaml:5: `ledger.checkpoint.key_file`: must not be empty
              vigil.yaml:7: `ledger.checkpoint.webhook_url`: `ftp://example.com/x` must be an http or https URL with a host
        "#]],
    );
}

#[test]
fn the_topology_block_reports_every_bad_node_and_edge() {
    let text = format!(
        "{MINIMAL}topology:
  max_hops: 9
  group_window_secs: 90000
  nodes:
    - {{ id: \"model_group:embed\", modality: embedding, context_window: 8191 }}
    - {{ id: \"model_group:embed\", modality: chat }}
    - {{ id: \"key:abc\", modality: chat }}
    - {{ id: gpt-4o }}
    - {{ id: \"model_group:gpt-4o\", context_window: 128000 }}
  edges:
    - {{ from: \"app:bot\", relation: reads, to: \"retrieval:pgvector\" }}
    - {{ from: \"app:bot\", relation: falls_back_to, to: \"model_group:gpt-4o\" }}
    - {{ from: \"app:bot\", relation: calls, to: \"app:bot\" }}
    - {{ from: \"modelgroup:x\", relation: calls, to: \"model_group:gpt-4o\" }}
    - {{ from: \"app:bot\", relation: reads, to: \"retrieval:pgvector\" }}
"
    );
    check(
        &text,
        expect![[r#"
            10 problems:
              vigil.yaml:15: `topology.max_hops`: must be between 1 and 6
              vigil.yaml:16: `topology.group_window_secs`: must be at most 86400 (a day)
              vigil.yaml:19: `topology.nodes[1].id`: `model_group:embed` is declared twice; declare each node once
              vigil.yaml:20: `topology.nodes[2].modality`: only a model_group or a model has a modality and a context window, not a key
              vigil.yaml:21: `topology.nodes[3].id`: `gpt-4o` is not a node; write it as kind:name, for example model_group:gpt-4o
              vigil.yaml:22: `topology.nodes[4].modality`: a context window needs the model's modality beside it
              vigil.yaml:25: `topology.edges[1].relation`: `falls_back_to` cannot go from a node of kind app to one of kind model_group
              vigil.yaml:26: `topology.edges[2].to`: an edge must join two different nodes
              vigil.yaml:27: `topology.edges[3].from`: unknown node kind `modelgroup`; expected one of app, prompt, agent, eval_suite, key, team, model_group, cache, deployment, provider, model, retrieval, infra
              vigil.yaml:28: `topology.edges[4]`: `app:bot reads retrieval:pgvector` is declared twice
        "#]],
    );
    let good = format!(
        "{MINIMAL}topology:
  nodes:
    - {{ id: \"model_group:embed\", modality: embedding, context_window: 8191, owner: team-search }}
  edges:
    - {{ from: \"model_group:gpt-4o\", relation: falls_back_to, to: \"model_group:gpt-4o-mini\" }}
"
    );
    check(
        &good,
        expect![[r#"
        ok
    "#]],
    );
}

#[test]
fn the_demand_settings_of_diagnosis_report_every_problem() {
    let text = format!(
        "{MINIMAL}diagnosis:
  requests_metric: '{{route=\"/chat\"}}'
  cache_hits_metric: 'hits_total{{'
  flat_requests_ratio: 1
  before_window_secs: 10
  rhythm_min_days: 9
  rhythm_lookback_days: 7
  rhythm_tolerance_secs: 0
  planned_work_alertnames: [LoadTest, '']
"
    );
    check(
        &text,
        expect![[r#"
            7 problems:
              vigil.yaml:15: `diagnosis.requests_metric`: `{route="/chat"}` must start with a metric name
              vigil.yaml:16: `diagnosis.cache_hits_metric`: `hits_total{` is not a selector: at offset 11: expected a label name or `}`, found end of input
              vigil.yaml:17: `diagnosis.flat_requests_ratio`: must be above 1 (a factor of the earlier request rate)
              vigil.yaml:18: `diagnosis.before_window_secs`: must be between 60 and 86400
              vigil.yaml:19: `diagnosis.rhythm_min_days`: must be at least 1 and at most rhythm_lookback_days
              vigil.yaml:21: `diagnosis.rhythm_tolerance_secs`: must be between 1 and 43200 (half a day)
              vigil.yaml:22: `diagnosis.planned_work_alertnames[1]`: must not be empty
        "#]],
    );
    let good = format!(
        "{MINIMAL}diagnosis:
  requests_metric: 'litellm_proxy_total_requests_metric_total{{route=\"/chat/completions\"}}'
  rhythm_min_days: 2
  planned_work_alertnames: [LoadTest, Maintenance]
"
    );
    check(
        &good,
        expect![[r#"
        ok
    "#]],
    );
}

#[test]
fn the_drift_block_of_a_proportion_drop_detector_reports_every_bad_field() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: evals
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
    drift:
      reference_cases: 0
      reference_share: 1.2
      min_drop: 0
      clear_drop: 0.1
      cases_between_false_alarms: 5
  - name: stated
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
    drift:
      reference_share: 0.08
pager:"#,
    );
    check(
        &text,
        expect![[r#"
            6 problems:
              vigil.yaml:19: `detectors[1].drift.reference_cases`: must be at least 1
              vigil.yaml:20: `detectors[1].drift.reference_share`: must be between 0 and 1 exclusive (0.95 for 95 %), found `1.2`
              vigil.yaml:21: `detectors[1].drift.min_drop`: must be between 0 and 1 exclusive (0.1 for ten points), found `0`
              vigil.yaml:22: `detectors[1].drift.clear_drop`: must be at least 0 and under `min_drop` (0) so that clearing has hysteresis, found `0.1`
              vigil.yaml:23: `detectors[1].drift.cases_between_false_alarms`: must be a number of cases of at least 10 (1000000 is one false alarm in a million cases), found `5`
              vigil.yaml:30: `detectors[2].drift.min_drop`: must be under `reference_share` (0.08): a share cannot drop below 0, found `0.1`
        "#]],
    );
    // A misspelt key is named, not ignored.
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: evals
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
    drift:
      reference: 0.9
pager:"#,
    );
    check(
        &text,
        expect![[r#"
            1 problem:
              vigil.yaml:12: unknown field `reference`, expected one of reference_cases, reference_share, min_drop, clear_drop, cases_between_false_alarms
        "#]],
    );
}

#[test]
fn a_drift_block_defaults_sensibly_and_is_absent_without_one() {
    let text = MINIMAL.replace(
        "pager:",
        r#"  - name: evals
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
    drift: {}
  - name: without
    kind: proportion_drop
    source: gw
    good: 'evals_total{outcome="passed"}'
    total: evals_total
    describe: pass rate
pager:"#,
    );
    let config = parse(&text, "vigil.yaml", Path::new(".")).unwrap();
    let Some(vigil_core::detector::DetectorConfig::ProportionDrop(with)) = config.detectors.get(1)
    else {
        panic!("{:?}", config.detectors);
    };
    assert_eq!(
        with.drift,
        Some(vigil_core::detector::proportion::DriftConfig {
            reference_cases: 500,
            reference_share: None,
            min_drop: 0.1,
            clear_drop: 0.05,
            cases_between_false_alarms: 1e6,
        })
    );
    let Some(vigil_core::detector::DetectorConfig::ProportionDrop(without)) =
        config.detectors.get(2)
    else {
        panic!("{:?}", config.detectors);
    };
    assert_eq!(without.drift, None);
}

#[test]
fn the_console_needs_the_admin_api_and_bounded_settings() {
    check(
        &format!(
            "{MINIMAL}console:\n  session_ttl_secs: 10\n  max_sessions: 0\n  max_live_clients: 5000\n"
        ),
        expect![[r#"
            4 problems:
              vigil.yaml:14: `console`: needs `admin:`: people sign in to the console with the admin API's tokens, OIDC tokens or client certificates, and hold its roles
              vigil.yaml:15: `console.session_ttl_secs`: must be 60 to 604800 (7 days)
              vigil.yaml:16: `console.max_sessions`: must be 1 to 100000
              vigil.yaml:17: `console.max_live_clients`: must be 1 to 1024
        "#]],
    );
    let good = format!("{MINIMAL}admin:\n  tokens_file: tokens.yaml\nconsole: {{}}\n");
    let config = parse(&good, "vigil.yaml", Path::new(".")).unwrap();
    assert_eq!(config.console, Some(console::ConsoleConfig::default()));
    let without = parse(MINIMAL, "vigil.yaml", Path::new(".")).unwrap();
    assert_eq!(without.console, None);
}
