//! vigil's Cedar policy layer: load and validate SRE-written policies, and decide requests.
//!
//! SREs write the bounds of vigil's autonomy as Cedar policies (`policies/*.cedar`) over the
//! vocabulary of `policies/vigil.cedarschema`. This crate turns those texts into an
//! [`Authorizer`] that answers every [`AuthzRequest`](vigil_core::authz::AuthzRequest) the
//! engine asks with an [`AuthzDecision`](vigil_core::authz::AuthzDecision).
//!
//! INVARIANT: this crate is pure. It reads no files, environment or clock; it takes texts
//! ([`PolicyFile`]) and the binary does the reading.
//!
//! INVARIANT: decisions fail closed. A request Cedar cannot evaluate cleanly is denied, and a
//! policy set with any problem is rejected whole, so the caller keeps the previous one.

mod authorize;
mod context;
mod corpus;
mod error;
mod load;
mod report;

pub use context::ContextVersion;
pub use corpus::{Expectation, TestCaseResult, run_policy_tests};
pub use error::{PolicyError, Problem, SourceLocation};
pub use load::{Authorizer, PolicyFile};

/// The Cedar namespace that holds vigil's entity types and actions.
pub(crate) const NAMESPACE: &str = "Vigil";

/// The annotation that names a policy; its value is the id decisions report.
pub(crate) const ID_ANNOTATION: &str = "id";
