//! vigil's binary crate as a library: config loading, daemon wiring, the HTTP endpoints, what
//! the ledger means to vigil, and the CLI commands. `main.rs` only calls [`cli::main`].
//!
//! Boundary: this is the only crate that reads config files and environment variables and
//! decides which connectors run; the engine (`vigil-core`) never sees any of it.
//!
//! Layers, each using only the ones below it: `cli` (the clap parser) dispatches to
//! `commands::*`, one module per command, none using another; they build on `daemon`,
//! `journal` (the ledger's records, the reader, the one step function, replay, recovery,
//! the trust tally and the period report), `bundle`, `config` and `render` (documents for
//! people), and on leaf utilities (`assets`, `checkpoints`,
//! `duration`, `identity`, `logsafe`, `private_file`, `schedule`).

pub mod assets;
pub mod bundle;
pub mod checkpoints;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod identity;
pub mod investigator;
pub mod journal;
pub mod logsafe;
pub mod private_file;
pub mod render;
pub mod schedule;

pub use commands::demo::Scenario;
