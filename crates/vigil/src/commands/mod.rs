//! The CLI's commands, one module each. A command uses the layers below it (`journal`,
//! `daemon`, `config`, `bundle` and the leaf utilities), never another command: what two
//! commands share lives below them.

pub mod backtest;
pub mod demo;
pub mod human;
pub mod investigate;
pub mod ledger;
pub mod metrics;
pub mod policy;
pub mod replay;
pub mod report;
pub mod runbook;
pub mod serve;
pub mod simulate;
pub mod trust;
