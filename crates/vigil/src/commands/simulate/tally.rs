//! What a game day came to, and how it compares with the scenario's `expect`: the rule that
//! `--check` and `--score` both judge by.

use vigil_core::diagnosis::Diagnosis;

use super::scenario::{RawExpect, RawScenario};

/// What happened, for `--check`, `--score` and the summary.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) incidents: usize,
    pub(super) resolved: usize,
    pub(super) pages: usize,
    pub(super) proposals: usize,
    pub(super) actions: Vec<String>,
    pub(super) guardrails: Vec<String>,
    pub(super) denied_by: Vec<String>,
    /// The first incident opened: the one whose diagnosis is judged.
    first_incident: Option<String>,
    /// Its best hypothesis, as last diagnosed.
    hypothesis: Option<String>,
    /// That hypothesis' subject, `(label, value)`.
    subject: Option<(String, String)>,
}

/// How one judged part of the outcome came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// As expected.
    Right,
    /// Not as expected.
    Wrong,
    /// The scenario does not say.
    Unstated,
}

impl Verdict {
    fn of(expected: bool, right: bool) -> Verdict {
        match (expected, right) {
            (false, _) => Verdict::Unstated,
            (true, true) => Verdict::Right,
            (true, false) => Verdict::Wrong,
        }
    }

    /// `ok`, `wrong` or `-`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Verdict::Right => "ok",
            Verdict::Wrong => "wrong",
            Verdict::Unstated => "-",
        }
    }
}

impl Tally {
    /// An incident opened; the first one is the one judged.
    pub(super) fn opened(&mut self, incident_id: &str) {
        self.incidents += 1;
        if self.first_incident.is_none() {
            self.first_incident = Some(incident_id.to_owned());
        }
    }

    /// An incident was diagnosed; the first incident's latest diagnosis is kept.
    pub(super) fn diagnosed(&mut self, incident_id: &str, diagnosis: &Diagnosis) {
        if self.first_incident.as_deref() != Some(incident_id) {
            return;
        }
        let best = diagnosis.best();
        self.hypothesis = best.map(|best| best.kind.as_str().to_owned());
        self.subject = best
            .and_then(|best| best.subject.as_ref())
            .map(|subject| (subject.label.clone(), subject.value.clone()));
    }

    /// The best hypothesis' kind: the root cause's, else `hypothesis`.
    pub(super) fn cause(&self, expect: &RawExpect) -> Verdict {
        let expected = expect
            .root_cause
            .as_ref()
            .map(|root_cause| root_cause.kind.as_str())
            .or(expect.hypothesis.as_deref());
        Verdict::of(
            expected.is_some(),
            expected.is_some() && expected == self.hypothesis.as_deref(),
        )
    }

    /// The best hypothesis' subject: `value`, or `label=value`.
    pub(super) fn subject(&self, expect: &RawExpect) -> Verdict {
        let expected = expect
            .root_cause
            .as_ref()
            .and_then(|root_cause| root_cause.subject.as_deref());
        let right = match (expected, &self.subject) {
            (Some(expected), Some((label, value))) => match expected.split_once('=') {
                Some((expected_label, expected_value)) => {
                    expected_label == label && expected_value == value
                }
                None => expected == value,
            },
            (_, _) => false,
        };
        Verdict::of(expected.is_some(), right)
    }

    /// Every action, in order.
    pub(super) fn actions(&self, expect: &RawExpect) -> Verdict {
        Verdict::of(
            expect.actions.is_some(),
            expect.actions.as_deref() == Some(self.actions.as_slice()),
        )
    }

    /// The number of pages.
    pub(super) fn pages(&self, expect: &RawExpect) -> Verdict {
        Verdict::of(expect.pages.is_some(), expect.pages == Some(self.pages))
    }

    fn shown_subject(&self) -> String {
        self.subject.as_ref().map_or_else(
            || "none".to_owned(),
            |(label, value)| format!("{label}={value}"),
        )
    }

    /// Every difference from the scenario's `expect`, for people.
    pub(super) fn check(&self, scenario: &RawScenario) -> Vec<String> {
        let expect = &scenario.expect;
        let mut differences = Vec::new();
        let mut count = |what: &str, expected: Option<usize>, actual: usize| {
            if let Some(expected) = expected
                && expected != actual
            {
                differences.push(format!("{what}: expected {expected}, got {actual}"));
            }
        };
        count("incidents", expect.incidents, self.incidents);
        count("resolved", expect.resolved, self.resolved);
        count("pages", expect.pages, self.pages);
        count("proposals", expect.proposals, self.proposals);
        let mut list = |what: &str, expected: &Option<Vec<String>>, actual: &[String]| {
            if let Some(expected) = expected
                && expected.as_slice() != actual
            {
                differences.push(format!("{what}: expected {expected:?}, got {actual:?}"));
            }
        };
        list("actions", &expect.actions, &self.actions);
        list("guardrails", &expect.guardrails, &self.guardrails);
        list("denied_by", &expect.denied_by, &self.denied_by);
        let hypothesis = self.hypothesis.as_deref().unwrap_or("none");
        if let Some(expected) = &expect.hypothesis
            && Some(expected.as_str()) != self.hypothesis.as_deref()
        {
            differences.push(format!("hypothesis: expected {expected}, got {hypothesis}"));
        }
        if let Some(root_cause) = &expect.root_cause {
            if root_cause.kind.as_str() != hypothesis {
                differences.push(format!(
                    "root_cause.kind: expected {}, got {hypothesis}",
                    root_cause.kind
                ));
            }
            if let Some(subject) = &root_cause.subject
                && self.subject(expect) == Verdict::Wrong
            {
                differences.push(format!(
                    "root_cause.subject: expected {subject}, got {}",
                    self.shown_subject()
                ));
            }
        }
        differences
    }
}
