//! The version-change detector: a marker, not an alarm. It notices when a group (a prompt,
//! a deployment, a service) starts reporting a version it has not reported before (a new
//! `prompt_version`, a new `model`, a new build), and tells the diagnoser, which blames the
//! change when a regression of the same group follows soon after.
//!
//! A version is *reported* at an observation when a series that the selector matches, with
//! that value of `version_label`, has a point of that very observation (a scrape writes
//! every series it carries; a push only the ones in its batch). The
//! first versions a group reports after vigil starts are its starting point, not changes. A
//! group remembers its last `max_versions` versions, so traffic that alternates between two
//! known versions (an A/B split, a canary) marks nothing; only a version new to the group
//! does. The marker names the group's current version before it (`from`) and the new one
//! (`to`): what a rollback would go back to.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Subject;
use super::groups::Groups;
use crate::store::{Matcher, SOURCE_LABEL, Selector, SeriesStore};
use crate::time::Timestamp;

/// Configuration of one version-change detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionChangeConfig {
    /// The detector's name, unique in a config.
    pub name: String,
    /// The source whose observations it reads.
    pub source: String,
    /// The series that carry the version, as a selector (`vigil_eval_cases_total`).
    pub selector: Selector,
    /// The label holding the version (`prompt_version`, `model`).
    pub version_label: String,
    /// The label to group by (`prompt`); `None` for one group.
    pub group_by: Option<String>,
    /// How many versions each group remembers.
    pub max_versions: usize,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
}

/// A group started reporting a new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The detector's name.
    pub detector: String,
    /// The source.
    pub source: String,
    /// The group that changed.
    pub subject: Subject,
    /// The label holding the version.
    pub version_label: String,
    /// The group's current version before the change.
    pub from: String,
    /// The new version.
    pub to: String,
    /// When it was first seen.
    pub at: Timestamp,
}

impl Change {
    /// One line for people: `prompt_version of prompt support-bot changed from 3 to 4`.
    #[must_use]
    pub fn describe(&self) -> String {
        let whose = if self.subject.value.is_empty() {
            String::new()
        } else {
            format!(" of {} {}", self.subject.label, self.subject.value)
        };
        format!(
            "{}{whose} changed from {} to {}",
            self.version_label, self.from, self.to
        )
    }
}

#[derive(Clone, Debug)]
struct GroupState {
    /// Versions seen, oldest first.
    known: VecDeque<String>,
    current: String,
}

/// A version-change detector and the versions of all its groups.
#[derive(Clone, Debug)]
pub struct VersionChangeDetector {
    config: VersionChangeConfig,
    matchers: Vec<Matcher>,
    groups: Groups<GroupState>,
}

impl VersionChangeDetector {
    /// A detector that has seen nothing.
    #[must_use]
    pub fn new(config: VersionChangeConfig) -> Self {
        let mut matchers = config.selector.matchers().to_vec();
        matchers.push(Matcher::equal(SOURCE_LABEL, config.source.as_str()));
        VersionChangeDetector {
            groups: Groups::new(config.max_groups),
            config,
            matchers,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &VersionChangeConfig {
        &self.config
    }

    /// How many groups were refused because `max_groups` was reached.
    #[must_use]
    pub fn n_groups_refused(&self) -> u64 {
        self.groups.n_refused()
    }

    /// The current version of a group, once it has reported one.
    #[must_use]
    pub fn current(&self, group_value: &str) -> Option<&str> {
        self.groups
            .get(group_value)
            .map(|state| state.current.as_str())
    }

    /// Observes the source right after new points were stored; returns the changes, in
    /// group then version order.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Change> {
        let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for series in store.select(&self.matchers) {
            let fresh = store.latest(series).is_some_and(|point| point.at == at);
            let Some(version) = store
                .label_value(series, &self.config.version_label)
                .filter(|version| fresh && !version.is_empty())
            else {
                continue;
            };
            let group = self
                .config
                .group_by
                .as_deref()
                .and_then(|label| store.label_value(series, label))
                .unwrap_or("");
            reported
                .entry(group.to_owned())
                .or_default()
                .insert(version.to_owned());
        }
        let mut changes = Vec::new();
        let keep = self.config.max_versions.max(1);
        for (group, versions) in reported {
            let Some(state) = self.groups.get_mut(&group) else {
                // The starting point: every version it reports now, the greatest current.
                let known: VecDeque<String> = versions.into_iter().collect();
                let current = known.back().cloned().unwrap_or_default();
                self.groups.admit(&group, || GroupState { known, current });
                continue;
            };
            for version in versions {
                if state.known.contains(&version) {
                    continue;
                }
                changes.push(Change {
                    detector: self.config.name.clone(),
                    source: self.config.source.clone(),
                    subject: Subject::group(self.config.group_by.as_deref(), &group),
                    version_label: self.config.version_label.clone(),
                    from: state.current.clone(),
                    to: version.clone(),
                    at,
                });
                state.current.clone_from(&version);
                state.known.push_back(version);
                while state.known.len() > keep {
                    state.known.pop_front();
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests;
