//! vigil's binary crate as a library: config loading, daemon wiring, the HTTP endpoints, the
//! demo and the CLI. `main.rs` only calls [`cli::main`].
//!
//! Boundary: this is the only crate that reads config files and environment variables and
//! decides which connectors run; the engine (`vigil-core`) never sees any of it.

pub mod assets;
pub mod backtest;
pub mod bundle;
pub mod checkpoints;
pub mod cli;
pub mod config;
pub mod daemon;
#[expect(
    clippy::disallowed_types,
    reason = "reads the wall clock with std's SystemTime in one place (its random keys); it is being edited in parallel, and moves to crate::daemon::since_epoch after that lands"
)]
pub mod demo;
pub mod human_cmd;
pub mod identity;
#[expect(
    clippy::disallowed_types,
    reason = "reads the wall clock with std's SystemTime in one place (`--since`); it is being edited in parallel, and moves to crate::daemon::since_epoch after that lands"
)]
pub mod ledger_cmd;
pub mod logsafe;
pub mod metrics_cmd;
pub mod policy_cmd;
pub mod private_file;
pub mod recovery;
pub mod replay;
pub mod runbook_cmd;
pub mod schedule;
pub mod serve;
pub mod session;
pub mod simulate;
pub mod trust_cmd;

pub use cli::Scenario;
