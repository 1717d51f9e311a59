//! The real `vigil` binary, end to end: the demo stories, the ledger's tamper evidence and
//! replay, `vigil check`, `vigil policy check|test`, `vigil runbook lint`, `vigil metrics parse`, `vigil backtest`, `vigil serve` answering on loopback and stopping on a signal, and its bounded edge (slow connections, maximum pushes, the connection limit) in `cli/edge.rs`.
//!
//! Every child process is killed if its test fails, every wait is bounded, and no assertion
//! depends on how fast the machine is: the bounds only guard against hangs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption, helper functions included"
)]
#![allow(
    clippy::disallowed_types,
    reason = "these tests drive vigil as a separate process, in real time: their deadlines are std wall-clock instants, which tokio's paused time could not move anyway"
)]

mod support;

#[path = "cli/approve.rs"]
mod approve;
#[path = "cli/archive.rs"]
mod archive;
#[path = "cli/assistant_daemon.rs"]
mod assistant_daemon;
#[path = "cli/backtest.rs"]
mod backtest;
#[path = "cli/check.rs"]
mod check;
#[path = "cli/check_online.rs"]
mod check_online;
#[path = "cli/checkpoints.rs"]
mod checkpoints;
#[path = "cli/conformance.rs"]
mod conformance;
#[path = "cli/crash.rs"]
mod crash;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/deploy/mod.rs"]
mod deploy;
#[path = "cli/durability.rs"]
mod durability;
#[path = "cli/edge.rs"]
mod edge;
#[path = "cli/exchanges.rs"]
mod exchanges;
#[path = "cli/failover.rs"]
mod failover;
#[path = "cli/golden.rs"]
mod golden;
#[path = "cli/ledger.rs"]
mod ledger;
#[path = "cli/ledgers.rs"]
mod ledgers;
#[path = "cli/metrics.rs"]
mod metrics;
#[path = "cli/observability.rs"]
mod observability;
#[path = "cli/people.rs"]
mod people;
#[path = "cli/policy.rs"]
mod policy;
#[path = "cli/postgres.rs"]
mod postgres;
#[path = "cli/redteam.rs"]
mod redteam;
#[path = "cli/reload.rs"]
mod reload;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/runbook.rs"]
mod runbook;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/show.rs"]
mod show;
#[path = "cli/simulate.rs"]
mod simulate;
#[path = "cli/simulate_abilities.rs"]
mod simulate_abilities;
#[path = "cli/simulate_assistant.rs"]
mod simulate_assistant;
#[path = "cli/tamper.rs"]
mod tamper;
#[path = "cli/tls.rs"]
mod tls;
#[path = "cli/warm_standby.rs"]
mod warm_standby;
