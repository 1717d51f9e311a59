//! Grouping findings into incidents by the topology: scenario tests.
//!
//! Two threshold detectors read one gateway source: a provider's error rate (grouped by
//! `api_provider`) and a model group's p95-like latency gauge (grouped by `model_group`).
//! The series that carry both labels, or the config, tell the topology that the model group
//! is hosted by the provider.

use super::tests::{config, render};
use super::*;
use crate::authz::Mode;
use crate::detector::Severity;
use crate::detector::threshold::{Bound, Reading, ThresholdConfig};
use crate::store::Selector;
use crate::topology::{NodeId, TopologyConfig};

const SOURCE: &str = "gateway";

fn threshold(name: &str, metric: &str, group_by: &str) -> DetectorConfig {
    DetectorConfig::Threshold(ThresholdConfig {
        name: name.to_owned(),
        source: SOURCE.to_owned(),
        reading: Reading::Value {
            selector: Selector::parse(metric).unwrap(),
        },
        describe: format!("{name} reading"),
        group_by: Some(group_by.to_owned()),
        bound: Bound::Above,
        fire: 10.0,
        clear: 5.0,
        fire_after_samples: 1,
        clear_after_samples: 1,
        severity: Severity::Page,
        max_groups: 100,
    })
}

fn grouping_config(topology: Option<TopologyConfig>) -> EngineConfig {
    let mut config = config(Mode::Autonomous);
    config.runbooks = Vec::new();
    config.detectors = vec![
        threshold("provider-errors", "provider_errors", "api_provider"),
        threshold("group-latency", "group_latency", "model_group"),
    ];
    config.topology = topology;
    config
}

/// The gateway's series at one scrape: errors per provider, latency per model group. Every
/// latency series also names its group's provider, as LiteLLM's do.
struct World {
    engine: Engine,
    now: Timestamp,
    log: Vec<String>,
    commands: Vec<Command>,
}

impl World {
    fn new(topology: Option<TopologyConfig>) -> Self {
        World {
            engine: Engine::new(grouping_config(topology)),
            now: Timestamp(1_800_000_000_000),
            log: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// One scrape `secs` after the last: `(provider, errors)` and `(group, provider, latency)`.
    fn scrape(&mut self, secs: i64, errors: &[(&str, f64)], latency: &[(&str, &str, f64)]) {
        self.now = self.now.plus_millis(secs * 1000);
        let mut samples: Vec<Sample> = errors
            .iter()
            .map(|(provider, value)| Sample {
                name: "provider_errors".to_owned(),
                labels: [("api_provider", *provider)].into_iter().collect(),
                value: *value,
                timestamp_ms: None,
            })
            .collect();
        samples.extend(latency.iter().map(|(group, provider, value)| {
            Sample {
                name: "group_latency".to_owned(),
                labels: [("model_group", *group), ("api_provider", *provider)]
                    .into_iter()
                    .collect(),
                value: *value,
                timestamp_ms: None,
            }
        }));
        let commands = self.engine.handle(
            &Event::Scraped {
                source: SOURCE.to_owned(),
                scraped_at: self.now,
                samples,
            },
            self.now,
        );
        self.log.extend(commands.iter().map(render));
        self.commands.extend(commands);
    }

    fn count(&self, prefix: &str) -> usize {
        self.log
            .iter()
            .filter(|line| line.starts_with(prefix))
            .count()
    }

    /// Answers every page sent so far as delivered.
    fn deliver_pages(&mut self) {
        let pages: Vec<(String, String)> = self
            .commands
            .drain(..)
            .filter_map(|command| match command {
                Command::Page {
                    page_id,
                    incident_id,
                    ..
                } => Some((page_id, incident_id)),
                _ => None,
            })
            .collect();
        for (page_id, incident_id) in pages {
            let commands = self.engine.handle(
                &Event::PageFinished {
                    page_id,
                    incident_id,
                    delivered: true,
                    detail: String::new(),
                },
                self.now,
            );
            self.log.extend(commands.iter().map(render));
        }
    }
}

const CALM: [(&str, f64); 2] = [("openai", 0.0), ("anthropic", 0.0)];

fn calm_latency() -> Vec<(&'static str, &'static str, f64)> {
    vec![("gpt-4o", "openai", 1.0), ("claude", "anthropic", 1.0)]
}

#[test]
fn a_provider_and_a_model_group_it_hosts_make_one_incident_and_one_page() {
    let mut world = World::new(Some(TopologyConfig::default()));
    world.scrape(15, &CALM, &calm_latency());
    // openai fails, and 15 s later the model group it hosts is slow.
    world.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
    world.scrape(
        15,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    assert_eq!(world.count("incident opened"), 1, "{:#?}", world.log);
    assert_eq!(world.count("page:"), 1, "{:#?}", world.log);
    let joined: Vec<&String> = world
        .log
        .iter()
        .filter(|line| line.contains("joined incident"))
        .collect();
    let [line] = joined.as_slice() else {
        panic!("{:#?}", world.log);
    };
    assert!(
        line.starts_with("group-latency/model_group=gpt-4o joined incident inc-")
            && line.ends_with(": model_group:gpt-4o depends on provider:openai (1 hops), which the incident is about"),
        "{line}"
    );
    // The topology it used was recorded, learnt from the gateway's own labels.
    assert!(
        world
            .log
            .iter()
            .any(|line| line.starts_with("topology: gateway showed")),
        "{:#?}",
        world.log
    );
    let topology = world.engine.topology().unwrap();
    assert!(topology.depends_on(
        &"model_group:gpt-4o".parse::<NodeId>().unwrap(),
        &"provider:openai".parse::<NodeId>().unwrap(),
        1
    ));
}

#[test]
fn findings_that_share_nothing_open_incidents_of_their_own() {
    let mut world = World::new(Some(TopologyConfig::default()));
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
    // claude is hosted by anthropic, which shares nothing with openai.
    world.scrape(
        15,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 1.0), ("claude", "anthropic", 30.0)],
    );
    assert_eq!(world.count("incident opened"), 2, "{:#?}", world.log);
    assert_eq!(world.count("page:"), 2);
}

#[test]
fn a_late_symptom_joins_while_its_cause_fires_and_opens_its_own_incident_once_all_cleared() {
    let mut world = World::new(Some(TopologyConfig {
        group_window_ms: 60_000,
        ..TopologyConfig::default()
    }));
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
    // Two minutes on, past the window, openai still fails: gpt-4o's latency is its symptom.
    world.scrape(
        120,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    assert_eq!(world.count("incident opened"), 1, "{:#?}", world.log);
    // Both recover; two minutes later another openai model is slow, openai healthy: the
    // incident's findings are all clear and its window has passed.
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(
        120,
        &CALM,
        &[
            ("gpt-4o", "openai", 1.0),
            ("gpt-4o-mini", "openai", 30.0),
            ("claude", "anthropic", 1.0),
        ],
    );
    assert_eq!(world.count("incident opened"), 2, "{:#?}", world.log);
}

#[test]
fn sessions_without_a_topology_open_one_incident_per_finding_and_learn_nothing() {
    let mut world = World::new(None);
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
    world.scrape(
        15,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    assert_eq!(world.count("incident opened"), 2, "{:#?}", world.log);
    assert_eq!(world.count("topology:"), 0);
    assert!(world.engine.topology().is_none());
}

#[test]
fn a_flapping_cause_pages_once_and_notes_the_flapping_on_that_incident() {
    let mut world = World::new(Some(TopologyConfig::default()));
    world.scrape(15, &CALM, &calm_latency());
    // openai fails and recovers five times, a minute apart.
    for _ in 0..5 {
        world.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
        world.deliver_pages();
        world.scrape(45, &CALM, &calm_latency());
    }
    assert_eq!(world.count("incident opened"), 1, "{:#?}", world.log);
    assert_eq!(world.count("page:"), 1, "{:#?}", world.log);
    assert_eq!(world.count("finding raised"), 5);
    let flapping: Vec<&String> = world
        .log
        .iter()
        .filter(|line| line.contains("flapping"))
        .collect();
    assert_eq!(flapping.len(), 1, "{:#?}", world.log);
}

#[test]
fn an_incident_is_clear_only_when_all_its_findings_are() {
    let mut world = World::new(Some(TopologyConfig::default()));
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(
        15,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    assert_eq!(world.count("incident opened"), 1, "{:#?}", world.log);
    let incident = world.engine.incidents.values().next().unwrap();
    assert_eq!(incident.members.len(), 2);
    // The provider recovers; the model group is still slow: not clear.
    world.scrape(
        15,
        &CALM,
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    let incident = world.engine.incidents.values().next().unwrap();
    assert!(!incident.cleared, "{:#?}", world.log);
    world.scrape(15, &CALM, &calm_latency());
    let cleared = world
        .engine
        .incidents
        .values()
        .next()
        .is_none_or(|incident| incident.cleared);
    assert!(cleared, "{:#?}", world.log);
}

#[test]
fn a_page_is_resolved_when_every_finding_of_its_incident_has_cleared() {
    let mut world = World::new(Some(TopologyConfig::default()));
    world.scrape(15, &CALM, &calm_latency());
    world.scrape(
        15,
        &[("openai", 50.0), ("anthropic", 0.0)],
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    world.deliver_pages();
    // The provider recovers, the model group is still slow: the page stays.
    world.scrape(
        15,
        &CALM,
        &[("gpt-4o", "openai", 30.0), ("claude", "anthropic", 1.0)],
    );
    assert_eq!(world.count("resolve page:"), 0, "{:#?}", world.log);
    world.scrape(15, &CALM, &calm_latency());
    // Clear, but not yet for the grouping window: a flapping cause would come back.
    world.scrape(15 * 60, &CALM, &calm_latency());
    assert_eq!(world.count("resolve page:"), 0, "{:#?}", world.log);
    world.scrape(15 * 60, &CALM, &calm_latency());
    let resolved: Vec<&String> = world
        .log
        .iter()
        .filter(|line| line.starts_with("resolve page:") || line.contains("ended after its page"))
        .collect();
    assert_eq!(resolved.len(), 2, "{:#?}", world.log);
    assert!(
        resolved[0].ends_with(
            "every finding of the incident cleared 30 s after it opened and stayed clear for 30 min; the page is resolved"
        ),
        "{}",
        resolved[0]
    );
    assert!(
        resolved[1].starts_with("resolve page: vigil needs a human:"),
        "{}",
        resolved[1]
    );
    // Sessions without a topology never resolve pages: they replay as they ran.
    let mut old = World::new(None);
    old.scrape(15, &CALM, &calm_latency());
    old.scrape(15, &[("openai", 50.0), ("anthropic", 0.0)], &calm_latency());
    old.deliver_pages();
    old.scrape(15, &CALM, &calm_latency());
    assert_eq!(old.count("resolve page:"), 0);
}
