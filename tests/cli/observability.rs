//! vigil watched: every metric the alert rules (`deploy/prometheus/vigil-rules.yaml`) and the
//! Grafana dashboard (`deploy/grafana/vigil.json`) read is one a real `vigil serve` exports;
//! every alert has `for:`, a severity, a summary, a description and a runbook section; the
//! rules pass `promtool check rules` and `promtool test rules` and the dashboard's queries
//! parse (skipped without promtool, failed under `CI`); and a real daemon's heartbeats reach
//! a loopback dead man's switch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigil_sim::PagerSink;

use crate::serve::Served;
use crate::support::{TempDir, repo_root};

#[path = "promql_names.rs"]
mod promql_names;

use promql_names::{exported_names, metric_names, unknown};

/// Bounded polling of the daemon: a hang guard, not a timing check.
const POLL_ROUNDS: u32 = 600;
const POLL_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn deploy(path: &str) -> PathBuf {
    repo_root().join("deploy").join(path)
}

fn rules() -> Vec<Rule> {
    let path = deploy("prometheus/vigil-rules.yaml");
    let text = std::fs::read_to_string(&path).expect("reading the rules");
    let file: RuleFile = serde_saphyr::from_str(&text).expect("the rules parse");
    file.groups
        .into_iter()
        .flat_map(|group| group.rules)
        .collect()
}

/// Every `expr` of the dashboard's panels, with the panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, title: &str, found: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(fields) => {
                let title = fields
                    .get("title")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(title);
                if let Some(expr) = fields.get("expr").and_then(serde_json::Value::as_str) {
                    found.push((title.to_owned(), expr.to_owned()));
                }
                for child in fields.values() {
                    walk(child, title, found);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, title, found);
                }
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(deploy("grafana/vigil.json")).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut found = Vec::new();
    walk(&dashboard, "", &mut found);
    found
}

/// Every metric name the rules and the dashboard read, with where.
fn used_names() -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let alerts = rules()
        .into_iter()
        .map(|rule| (format!("alert {}", rule.alert), rule.expr));
    let panels = dashboard_queries()
        .into_iter()
        .map(|(title, expr)| (format!("panel `{title}`"), expr));
    for (place, expr) in alerts.chain(panels) {
        for name in metric_names(&expr) {
            used.entry(name).or_default().insert(place.clone());
        }
    }
    used
}

#[test]
fn the_extractor_names_the_metrics_an_expression_reads() {
    let expr = r#"histogram_quantile(0.99, sum by (job, le) (rate(x_bucket{a="b}{(",d=~"e|f"}[$__rate_interval])))
        > 0.5 and on (instance) (y == 1) or absent(z:recorded) unless ignoring(k) w offset 5m # not_a_metric
        + count_values("label", v) * 1e3 / scalar(s) > bool 2"#;
    assert_eq!(
        metric_names(expr).into_iter().collect::<Vec<_>>(),
        ["s", "v", "w", "x_bucket", "y", "z:recorded"]
    );
    // A typo is a name nobody exports, and the check names it and where it is.
    let exported = exported_names(
        "# TYPE vigil_ledger_append_errors_total counter\nvigil_ledger_append_errors_total 0\n\
         # TYPE vigil_ledger_append_seconds histogram\n# TYPE vigil_leader gauge\n",
    );
    let mut used = BTreeMap::new();
    for name in metric_names(
        "increase(vigil_ledger_apend_errors_total[5m]) > 0 or vigil_leader == 0 or up == 0",
    ) {
        used.entry(name)
            .or_insert_with(BTreeSet::new)
            .insert("alert Typo".to_owned());
    }
    for name in metric_names("rate(vigil_ledger_append_seconds_bucket[5m])") {
        used.entry(name)
            .or_insert_with(BTreeSet::new)
            .insert("panel `Latency`".to_owned());
    }
    assert_eq!(
        unknown(&used, &exported),
        ["`vigil_ledger_apend_errors_total` (in alert Typo)"]
    );
}

#[test]
fn every_alert_has_a_pending_time_a_severity_words_and_a_runbook_section() {
    let runbook = std::fs::read_to_string(deploy("prometheus/README.md")).expect("the runbook");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.trim().to_ascii_lowercase())
        .collect();
    let rules = rules();
    assert!(rules.len() >= 15, "{} alerts", rules.len());
    let mut problems = Vec::new();
    for rule in &rules {
        let name = &rule.alert;
        if rule.pending_for.is_none() {
            problems.push(format!("{name}: no `for:`"));
        }
        let severity = rule.labels.get("severity").map(String::as_str);
        if !matches!(severity, Some("critical" | "warning" | "info")) {
            problems.push(format!("{name}: severity {severity:?}"));
        }
        for key in ["summary", "description"] {
            if rule
                .annotations
                .get(key)
                .is_none_or(|text| text.trim().is_empty())
            {
                problems.push(format!("{name}: no {key}"));
            }
        }
        let expected = format!("deploy/prometheus/README.md#{}", name.to_ascii_lowercase());
        if rule.annotations.get("runbook_url") != Some(&expected) {
            problems.push(format!("{name}: runbook_url is not `{expected}`"));
        }
        if !anchors.contains(&name.to_ascii_lowercase()) {
            problems.push(format!("{name}: no `### {name}` section in the runbook"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The promtool binary: `promtool` on `PATH`, else `/usr/bin/promtool`.
fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .chain([PathBuf::from("/usr/bin/promtool")])
        .find(|candidate| candidate.is_file())
}

fn run_promtool(promtool: &Path, args: &[&str], cwd: &Path) {
    let output = std::process::Command::new(promtool)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running promtool");
    assert!(
        output.status.success(),
        "promtool {}: {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_rules_pass_promtool_and_the_dashboards_queries_parse() {
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed, and CI needs this test"
        );
        eprintln!("skipping: promtool not installed (Debian package `prometheus`)");
        return;
    };
    let folder = deploy("prometheus");
    run_promtool(&promtool, &["check", "rules", "vigil-rules.yaml"], &folder);
    run_promtool(
        &promtool,
        &["test", "rules", "vigil-rules.test.yaml"],
        &folder,
    );
    // The dashboard's queries, with Grafana's variables as Prometheus would get them, as
    // recording rules: promtool parses each expression.
    let dir = TempDir::new("dashboard-queries");
    let mut text = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (idx, (title, expr)) in dashboard_queries().iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
            .replace("$__interval", "1m");
        assert!(
            !expr.contains('$'),
            "panel `{title}`: an unknown variable in {expr}"
        );
        text.push_str(&format!(
            "      - record: dashboard:query_{idx}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    std::fs::write(dir.join("dashboard.yaml"), text).unwrap();
    run_promtool(&promtool, &["check", "rules", "dashboard.yaml"], dir.path());
}

/// Writes a config whose one source is `scraped` (it answers 404: every scrape fails) and
/// whose heartbeat goes to `heartbeat_url` every second; returns its path.
fn write_config(dir: &TempDir, scraped: &str, heartbeat_url: &str) -> PathBuf {
    let root = repo_root();
    // No runbooks: this daemon only has to run, scrape and beat.
    let runbooks = dir.join("runbooks");
    std::fs::create_dir_all(&runbooks).expect("a runbooks folder");
    let config = format!(
        r#"mode: advisory
environment: test
ledger:
  sqlite_path: "{ledger}"
  checkpoint:
    key_file: "{key}"
    interval_secs: 10
    allow_key_in_git_tree: true
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
sources:
  - name: gateway
    kind: litellm
    url: "{scraped}/metrics"
    scrape_interval_secs: 1
    scrape_timeout_secs: 1
detectors:
  - name: token-spike
    kind: spike
    source: gateway
pager:
  kind: log
heartbeat:
  url: "{heartbeat_url}"
  interval_secs: 1
  timeout_secs: 1
"#,
        ledger = dir.join("ledger.db").display(),
        key = dir.join("checkpoint.key").display(),
        policies = root.join("policies").display(),
        runbooks = runbooks.display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).expect("writing the config");
    path
}

/// The value of `name{labels}` in an exposition, the labels given as they are rendered.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

/// A real daemon sending heartbeats to a loopback sink: the sink gets the replica's role and
/// ledger size, `/metrics` counts them, and every metric the rules and the dashboard read is
/// among the names this `/metrics` exports.
#[test]
fn a_real_daemon_exports_every_metric_the_rules_and_the_dashboard_read_and_beats() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let sink = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        PagerSink::start(listener, stop.child_token())
            .await
            .unwrap()
    });
    let sink_base = sink.url().trim_end_matches("/pages").to_owned();
    let dir = TempDir::new("observability");
    let config = write_config(&dir, &sink_base, &sink.url());
    let served = Served::start(&config, dir.path());

    let mut metrics = String::new();
    for _ in 0..POLL_ROUNDS {
        if let Ok(response) = crate::support::http_get(served.address, "/metrics") {
            metrics = response.body;
            let beats = value(&metrics, "vigil_heartbeats_total{outcome=\"ok\"}");
            let failed_scrapes = value(
                &metrics,
                "vigil_scrapes_total{source=\"gateway\",result=\"error\"}",
            );
            if beats.is_some_and(|n| n >= 1.0) && failed_scrapes.is_some_and(|n| n >= 1.0) {
                break;
            }
        }
        std::thread::sleep(POLL_PAUSE);
    }
    let beat =
        sink.pages().into_iter().next().unwrap_or_else(|| {
            panic!("no heartbeat arrived:\n{metrics}\n{}", served.stderr_text())
        });
    assert_eq!(beat["replica"], "standalone", "{beat}");
    assert_eq!(beat["leader"], true, "{beat}");
    assert!(
        beat["ledger_entries"].as_u64().is_some_and(|n| n >= 1),
        "{beat}"
    );
    for (series, at_least) in [
        ("vigil_leader{replica=\"standalone\"}", 1.0),
        ("vigil_source_consecutive_failures{source=\"gateway\"}", 1.0),
        ("vigil_ledger_append_seconds_count", 1.0),
        ("vigil_engine_queue_capacity{queue=\"events\"}", 1.0),
        ("vigil_checkpoints_total{outcome=\"ok\"}", 1.0),
    ] {
        assert!(
            value(&metrics, series).is_some_and(|found| found >= at_least),
            "{series} is not at least {at_least}:\n{metrics}"
        );
    }
    assert!(
        value(&metrics, "vigil_checkpoint_age_seconds").is_some(),
        "{metrics}"
    );

    let exported = exported_names(&metrics);
    let used = used_names();
    assert!(
        used.len() >= 25,
        "the rules and the dashboard read {used:?}"
    );
    let missing = unknown(&used, &exported);
    assert!(
        missing.is_empty(),
        "metrics the rules or the dashboard read that vigil does not export:\n  {}",
        missing.join("\n  ")
    );

    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    stop.cancel();
    runtime.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), sink.stopped()).await;
    });
}
