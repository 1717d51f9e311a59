//! Policy tests as a corpus: requests with the decision SREs expect, run against a policy set.
//!
//! A test file is a JSON list of cases, modelled on Cedar's `run-tests` format:
//!
//! ```json
//! [
//!   {
//!     "name": "a runaway standard key is blocked",
//!     "request": { "principal": ..., "action": "block", "resource": ..., "context": ... },
//!     "expect": { "effect": "allow", "determining_policies": ["block-single-runaway-key"] }
//!   }
//! ]
//! ```
//!
//! `request` is an [`AuthzRequest`] as serde JSON, or a [`HumanAuthzRequest`] when its
//! `action` is a person's instruction (`approve`, `reject`, `kill`, `unkill`, `silence`,
//! `unsilence`). `expect.errors` (default `false`) says whether the decision should carry
//! errors; a case that expects none fails when any occur, so a malformed request cannot pass
//! as a deny.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use vigil_core::authz::{AuthzDecision, AuthzRequest, Effect, HumanActionName, HumanAuthzRequest};

use crate::error::{PolicyError, Problem, SourceLocation};
use crate::load::{Authorizer, PolicyFile};

/// One test case as written in a test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    request: AnyRequest,
    expect: Expectation,
}

/// A step's request or a person's, told apart by the action it names.
#[derive(Debug)]
enum AnyRequest {
    Step(AuthzRequest),
    Human(HumanAuthzRequest),
}

impl<'de> Deserialize<'de> for AnyRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let action = value
            .get("action")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if HumanActionName::from_cedar_id(action).is_some() {
            serde_json::from_value(value)
                .map(AnyRequest::Human)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(AnyRequest::Step)
                .map_err(D::Error::custom)
        }
    }
}

/// The decision a test case expects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Allow or deny.
    pub effect: Effect,
    /// The `@id`s of the determining policies, in any order.
    pub determining_policies: Vec<String>,
    /// Whether the decision should carry evaluation errors.
    #[serde(default)]
    pub errors: bool,
}

/// The outcome of one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCaseResult {
    /// The case's name.
    pub name: String,
    /// What the case expected.
    pub expected: Expectation,
    /// What the policies decided.
    pub decision: AuthzDecision,
}

impl TestCaseResult {
    /// Whether the decision matched the expectation.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.mismatches().is_empty()
    }

    /// How the decision differs from the expectation, one line per difference; empty when
    /// the case passed.
    #[must_use]
    pub fn mismatches(&self) -> Vec<String> {
        let mut mismatches = Vec::new();
        let expected_effect = effect_name(self.expected.effect);
        let actual_effect = effect_name(self.decision.effect);
        if expected_effect != actual_effect {
            mismatches.push(format!(
                "effect: expected `{expected_effect}`, got `{actual_effect}`"
            ));
        }
        let expected_policies: BTreeSet<&String> =
            self.expected.determining_policies.iter().collect();
        let actual_policies: BTreeSet<&String> =
            self.decision.determining_policies.iter().collect();
        if expected_policies != actual_policies {
            mismatches.push(format!(
                "determining policies: expected {}, got {}",
                id_list(&expected_policies),
                id_list(&actual_policies)
            ));
        }
        let has_errors = !self.decision.errors.is_empty();
        if self.expected.errors != has_errors {
            let errors = if has_errors {
                self.decision.errors.join("; ")
            } else {
                "none".to_owned()
            };
            mismatches.push(format!(
                "errors: expected {}, got {errors}",
                if self.expected.errors { "some" } else { "none" }
            ));
        }
        mismatches
    }
}

/// The serde name of an effect, as test files spell it.
fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

/// A set of policy ids as `[`a`, `b`]`.
fn id_list(ids: &BTreeSet<&String>) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Runs every case of one test file against `authorizer`, in file order.
///
/// # Errors
///
/// [`PolicyError::InvalidTestCases`] when the file is not a JSON list of well-formed cases,
/// or when two cases share a name. A case whose decision differs from its expectation is not
/// an error: it is a result that did not pass.
pub fn run_policy_tests(
    authorizer: &Authorizer,
    cases_json: &PolicyFile,
) -> Result<Vec<TestCaseResult>, PolicyError> {
    let cases: Vec<TestCase> =
        serde_json::from_str(&cases_json.text).map_err(|error| PolicyError::InvalidTestCases {
            problem: Problem {
                path: cases_json.path.clone(),
                location: Some(SourceLocation {
                    line: error.line(),
                    column: error.column(),
                }),
                message: error.to_string(),
            },
        })?;
    let mut names = BTreeSet::new();
    for case in &cases {
        if !names.insert(case.name.as_str()) {
            return Err(PolicyError::InvalidTestCases {
                problem: Problem {
                    path: cases_json.path.clone(),
                    location: None,
                    message: format!("two cases are named `{}`", case.name),
                },
            });
        }
    }
    Ok(cases
        .into_iter()
        .map(|case| TestCaseResult {
            decision: match &case.request {
                AnyRequest::Step(request) => authorizer.authorize(request),
                AnyRequest::Human(request) => authorizer.authorize_human(request),
            },
            name: case.name,
            expected: case.expect,
        })
        .collect())
}
