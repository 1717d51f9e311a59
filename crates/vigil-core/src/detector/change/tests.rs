//! The version-change detector: the starting versions are not changes, a new version is one
//! (with the version before it), alternating known versions are not, stale series report
//! nothing, and groups are independent.

use super::*;
use crate::signal::{Labels, Sample};
use crate::store::Selector;
use crate::store::StoreConfig;

const SOURCE: &str = "push:evals";

fn config(max_versions: usize) -> VersionChangeConfig {
    VersionChangeConfig {
        name: "prompt-versions".to_owned(),
        source: SOURCE.to_owned(),
        selector: Selector::parse("evals_total").unwrap(),
        version_label: "prompt_version".to_owned(),
        group_by: Some("prompt".to_owned()),
        max_versions,
        max_groups: 10,
    }
}

struct Feed {
    store: SeriesStore,
    detector: VersionChangeDetector,
    at_ms: i64,
    totals: BTreeMap<(String, String), f64>,
}

impl Feed {
    fn new(config: VersionChangeConfig) -> Feed {
        Feed {
            store: SeriesStore::new(StoreConfig::default()),
            detector: VersionChangeDetector::new(config),
            at_ms: 1_800_000_000_000,
            totals: BTreeMap::new(),
        }
    }

    /// One push a minute after the last, of results for `(prompt, version)` pairs; returns
    /// the changes as `prompt:from->to`.
    fn push(&mut self, results: &[(&str, &str)]) -> Vec<String> {
        self.at_ms += 60_000;
        let at = Timestamp(self.at_ms);
        let samples: Vec<Sample> = results
            .iter()
            .map(|(prompt, version)| {
                let total = self
                    .totals
                    .entry(((*prompt).to_owned(), (*version).to_owned()))
                    .or_default();
                *total += 1.0;
                Sample {
                    name: "evals_total".to_owned(),
                    labels: [("prompt", *prompt), ("prompt_version", *version)]
                        .into_iter()
                        .collect::<Labels>(),
                    value: *total,
                    timestamp_ms: None,
                }
            })
            .collect();
        self.store.ingest_partial(SOURCE, at, &samples);
        self.detector
            .observe(at, &self.store)
            .into_iter()
            .map(|change| {
                assert_eq!(change.at, at);
                assert_eq!(change.version_label, "prompt_version");
                format!("{}:{}->{}", change.subject.value, change.from, change.to)
            })
            .collect()
    }
}

#[test]
fn the_starting_versions_are_not_changes_and_a_new_version_is_one() {
    let mut feed = Feed::new(config(8));
    assert!(feed.push(&[("support", "3"), ("triage", "7")]).is_empty());
    assert!(feed.push(&[("support", "3")]).is_empty());
    assert_eq!(feed.push(&[("support", "4")]), vec!["support:3->4"]);
    assert_eq!(feed.detector.current("support"), Some("4"));
    // The other prompt is untouched.
    assert_eq!(feed.detector.current("triage"), Some("7"));
    assert!(feed.push(&[("support", "4"), ("triage", "7")]).is_empty());
}

#[test]
fn alternating_known_versions_mark_nothing_and_a_rollback_to_a_forgotten_one_marks() {
    let mut feed = Feed::new(config(2));
    assert!(feed.push(&[("support", "3")]).is_empty());
    assert_eq!(feed.push(&[("support", "4")]), vec!["support:3->4"]);
    // An A/B split between 3 and 4 is not news.
    for _ in 0..5 {
        assert!(feed.push(&[("support", "3"), ("support", "4")]).is_empty());
    }
    assert_eq!(feed.push(&[("support", "5")]), vec!["support:4->5"]);
    // Only two versions are remembered: 3 is forgotten, so going back to it is a change.
    assert_eq!(feed.push(&[("support", "3")]), vec!["support:5->3"]);
}

#[test]
fn only_the_versions_of_the_observation_itself_are_reported() {
    let mut feed = Feed::new(config(8));
    assert!(feed.push(&[("support", "3")]).is_empty());
    // A push without the prompt reports no version for it; the next push of 3 is not a
    // change either.
    assert!(feed.push(&[("triage", "1")]).is_empty());
    assert!(feed.push(&[("support", "3")]).is_empty());
    feed.store.mark_stale(SOURCE, Timestamp(feed.at_ms + 1));
    feed.at_ms += 1;
    assert!(
        feed.detector
            .observe(Timestamp(feed.at_ms), &feed.store)
            .is_empty()
    );
}

#[test]
fn groups_beyond_the_limit_are_refused() {
    let mut config = config(8);
    config.max_groups = 1;
    let mut feed = Feed::new(config);
    assert!(feed.push(&[("support", "3"), ("triage", "1")]).is_empty());
    assert_eq!(feed.detector.n_groups_refused(), 1);
    assert_eq!(feed.detector.current("triage"), None);
}
