//! What the detectors that group by a label share: a bounded map of per-group state that
//! refuses (and counts) new groups past its limit, and the fingerprint of a group's finding.

use std::collections::BTreeMap;

use super::Subject;

/// Per-group state, at most `max` groups.
#[derive(Clone, Debug)]
pub struct Groups<S> {
    states: BTreeMap<String, S>,
    max: usize,
    n_refused: u64,
}

impl<S> Groups<S> {
    /// No groups yet; at most `max`.
    #[must_use]
    pub fn new(max: usize) -> Self {
        Groups {
            states: BTreeMap::new(),
            max,
            n_refused: 0,
        }
    }

    /// The state of `group`, made by `make` when the group is new; `None` (and counted) when
    /// it is new and the limit is reached.
    pub fn admit(&mut self, group: &str, make: impl FnOnce() -> S) -> Option<&mut S> {
        if !self.states.contains_key(group) {
            if self.states.len() >= self.max {
                self.n_refused += 1;
                return None;
            }
            self.states.insert(group.to_owned(), make());
        }
        self.states.get_mut(group)
    }

    /// The state of a known group.
    #[must_use]
    pub fn get(&self, group: &str) -> Option<&S> {
        self.states.get(group)
    }

    /// The state of a known group, to change.
    pub fn get_mut(&mut self, group: &str) -> Option<&mut S> {
        self.states.get_mut(group)
    }

    /// Every group's state, in group order.
    pub fn values(&self) -> impl Iterator<Item = &S> {
        self.states.values()
    }

    /// How many new groups were refused because the limit was reached.
    #[must_use]
    pub fn n_refused(&self) -> u64 {
        self.n_refused
    }
}

/// The fingerprint of detector `name`'s finding about the value `group` of the label
/// `group_by` (`name/label=value`), or `name` for an ungrouped detector.
#[must_use]
pub fn fingerprint(name: &str, group_by: Option<&str>, group: &str) -> String {
    match group_by {
        Some(label) => format!("{name}/{label}={group}"),
        None => name.to_owned(),
    }
}

impl Subject {
    /// The subject of a group: the label grouped by (empty without one) and its value.
    #[must_use]
    pub fn group(group_by: Option<&str>, value: &str) -> Subject {
        Subject {
            label: group_by.unwrap_or_default().to_owned(),
            value: value.to_owned(),
            alias: None,
            team: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_past_the_limit_are_refused_and_counted_and_known_ones_still_admitted() {
        let mut groups: Groups<u32> = Groups::new(2);
        *groups.admit("a", || 0).unwrap() += 1;
        assert!(groups.admit("b", || 10).is_some());
        assert!(groups.admit("c", || 20).is_none());
        assert!(groups.admit("c", || 20).is_none());
        assert_eq!(groups.n_refused(), 2);
        assert_eq!(groups.admit("a", || 99).copied(), Some(1));
        assert_eq!(groups.values().copied().collect::<Vec<_>>(), [1, 10]);
        assert_eq!(fingerprint("d", Some("key"), "k1"), "d/key=k1");
        assert_eq!(fingerprint("d", None, ""), "d");
    }
}
