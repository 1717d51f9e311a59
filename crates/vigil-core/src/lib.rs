//! vigil's pure domain: signals, detectors, diagnosis, runbook plans and the engine.
//!
//! INVARIANT: nothing in this crate performs I/O or reads a clock, the environment, files or
//! sockets. Time arrives as a parameter; the outside world arrives as events.

pub mod action;
pub mod authz;
pub mod chart;
pub mod datetime;
pub mod detector;
pub mod diagnosis;
pub mod engine;
pub mod exposition;
pub mod human;
pub mod incidents;
pub mod intake;
pub mod investigation;
pub mod numeric;
pub mod people;
pub mod problem;
pub mod report;
pub mod runbook;
pub mod scrape_codec;
pub mod signal;
pub mod store;
pub mod template;
pub mod time;
pub mod topology;

pub use time::Timestamp;
